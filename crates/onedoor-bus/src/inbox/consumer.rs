//! [`ensure_inbox`]: the durable pull consumer `inbox-<AGENCY>`, created if missing, brought up
//! to date when that is safe, and reported (never overwritten) when it is not.
//!
//! | field | wanted | on a difference |
//! | --- | --- | --- |
//! | pull (no `deliver_subject`) | pull | conflict: a push consumer cannot become pull |
//! | filter | `onedoor.v1.case.*.*.<AGENCY>` | conflict: it decides which events the agency sees |
//! | `deliver_policy` | all | conflict: the server cannot change it in place |
//! | `ack_policy` | explicit | conflict: likewise |
//! | `replay_policy` | instant | conflict: likewise |
//! | `ack_wait`, `backoff`, `max_deliver`, `max_ack_pending` | settings | updated in place |
//! | `inactive_threshold` | none | updated: a durable inbox must survive a long outage |
//! | `headers_only` | false | updated: the agency needs the payload |
//!
//! Updating is safe for the last group because the server applies them to the consumer's
//! existing state: nothing acknowledged is delivered again, nothing pending is dropped.

use async_nats::jetstream;
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, PullConsumer, ReplayPolicy};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::{ConsumerCreateStrictErrorKind, Stream};
use onedoor_case::AgencyCode;

use super::settings::InboxSettings;
use crate::drift::{FieldDrift, Fix, Start, consumer_drift};
use crate::error::BusError;
use crate::subjects::{self, STREAM_NAME};

/// What [`ensure_inbox_outcome`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxEnsured {
    Created,
    /// Already as wanted; nothing was sent to the server but a lookup.
    Unchanged,
    /// Existed with other values for fields that are safe to change; each entry reads
    /// `field: existing X, wanted Y`.
    Updated {
        changes: Vec<String>,
    },
}

/// The full consumer configuration of `agency`'s inbox (see the module table).
pub fn inbox_consumer_config(
    agency: &AgencyCode,
    settings: &InboxSettings,
) -> Result<consumer::pull::Config, BusError> {
    let name = subjects::inbox_consumer(agency.as_str())?;
    Ok(consumer::pull::Config {
        durable_name: Some(name),
        description: Some(format!("onedoor inbox of {agency}")),
        filter_subject: subjects::inbox_filter(agency.as_str())?,
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        replay_policy: ReplayPolicy::Instant,
        // The server replaces ack_wait with backoff[0]; asking for that value keeps what we
        // ask for and what it reports identical.
        ack_wait: settings.ack_wait(),
        backoff: settings.backoff.clone(),
        max_deliver: i64::from(settings.max_deliver),
        max_ack_pending: i64::try_from(settings.max_in_flight).unwrap_or(i64::MAX),
        // Zero: never delete the durable for being idle (docs/jetstream.md §8).
        inactive_threshold: std::time::Duration::ZERO,
        headers_only: false,
        ..Default::default()
    })
}

/// The durable pull consumer `inbox-<AGENCY>` on the ONEDOOR stream, created if missing.
///
/// Running it again is a no-op. An existing consumer that differs only in fields that are safe
/// to change (ack wait, backoff, max deliver, in-flight bound, inactivity, headers-only) is
/// updated; one that differs in anything else is reported as [`BusError::InboxConflict`] and
/// left as it is, like [`crate::ensure_stream`].
pub async fn ensure_inbox(
    js: &jetstream::Context,
    agency: &AgencyCode,
    settings: &InboxSettings,
) -> Result<PullConsumer, BusError> {
    ensure_inbox_outcome(js, agency, settings)
        .await
        .map(|(consumer, _)| consumer)
}

/// [`ensure_inbox`], also saying what it did.
#[tracing::instrument(skip_all, fields(agency = %agency))]
pub async fn ensure_inbox_outcome(
    js: &jetstream::Context,
    agency: &AgencyCode,
    settings: &InboxSettings,
) -> Result<(PullConsumer, InboxEnsured), BusError> {
    settings.validate()?;
    let wanted = inbox_consumer_config(agency, settings)?;
    let name = subjects::inbox_consumer(agency.as_str())?;
    // No stream info: an agency's NATS user may not ask for it (it names every case's
    // subject); the consumer calls below need only the stream's name.
    let stream =
        js.get_stream_no_info(STREAM_NAME)
            .await
            .map_err(|source| BusError::GetStream {
                stream: STREAM_NAME.to_owned(),
                source,
            })?;

    match stream.consumer_info(&name).await {
        Ok(info) => return reconcile(&stream, &name, &info.config, wanted).await,
        Err(err) if err.kind() == ConsumerInfoErrorKind::NotFound => {}
        Err(err) => {
            return Err(BusError::nats_on(
                "looking up an inbox consumer",
                &name,
                &err,
            ));
        }
    }

    match stream.create_consumer_strict(wanted.clone()).await {
        Ok(consumer) => {
            tracing::debug!(consumer = %name, "created inbox consumer");
            Ok((consumer, InboxEnsured::Created))
        }
        // Another adapter of the same agency created it between our lookup and our create.
        Err(err) if err.kind() == ConsumerCreateStrictErrorKind::AlreadyExists => {
            let info = stream
                .consumer_info(&name)
                .await
                .map_err(|err| BusError::nats_on("looking up an inbox consumer", &name, &err))?;
            reconcile(&stream, &name, &info.config, wanted).await
        }
        Err(err) => Err(BusError::nats_on("creating an inbox consumer", &name, &err)),
    }
}

async fn reconcile<I>(
    stream: &Stream<I>,
    name: &str,
    existing: &consumer::Config,
    wanted: consumer::pull::Config,
) -> Result<(PullConsumer, InboxEnsured), BusError> {
    let (conflicts, changes) = differences(existing, &wanted);
    if !conflicts.is_empty() {
        tracing::warn!(
            consumer = name,
            ?conflicts,
            "inbox consumer exists with a conflicting configuration; leaving it unchanged"
        );
        return Err(BusError::InboxConflict {
            consumer: name.to_owned(),
            differences: conflicts,
        });
    }
    if changes.is_empty() {
        let consumer = stream
            .get_consumer(name)
            .await
            .map_err(|err| BusError::nats_on("binding to an inbox consumer", &name, &*err))?;
        tracing::debug!(consumer = name, "inbox consumer already as wanted");
        return Ok((consumer, InboxEnsured::Unchanged));
    }
    let consumer = stream
        .update_consumer(wanted)
        .await
        .map_err(|err| BusError::nats_on("updating an inbox consumer", &name, &err))?;
    tracing::info!(consumer = name, ?changes, "updated inbox consumer");
    Ok((consumer, InboxEnsured::Updated { changes }))
}

/// `(conflicts, safe changes)`, each as `field: existing X, wanted Y`.
pub fn differences(
    existing: &consumer::Config,
    wanted: &consumer::pull::Config,
) -> (Vec<String>, Vec<String>) {
    let (changes, conflicts): (Vec<_>, Vec<_>) = consumer_drift(existing, wanted, Start::Checked)
        .into_iter()
        .partition(|drift| drift.fix == Fix::InPlace);
    let words = |drift: Vec<FieldDrift>| drift.iter().map(FieldDrift::existing_wanted).collect();
    (words(conflicts), words(changes))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn agency() -> AgencyCode {
        AgencyCode::parse("MOIC").expect("valid code")
    }

    fn as_existing(wanted: &consumer::pull::Config) -> consumer::Config {
        consumer::Config {
            durable_name: wanted.durable_name.clone(),
            filter_subject: wanted.filter_subject.clone(),
            deliver_policy: wanted.deliver_policy,
            ack_policy: wanted.ack_policy,
            replay_policy: wanted.replay_policy,
            ack_wait: wanted.ack_wait,
            backoff: wanted.backoff.clone(),
            max_deliver: wanted.max_deliver,
            max_ack_pending: wanted.max_ack_pending,
            ..Default::default()
        }
    }

    #[test]
    fn the_wanted_config_uses_the_contract_names_and_the_first_step_as_ack_wait() {
        let settings = InboxSettings::default();
        let config = inbox_consumer_config(&agency(), &settings).expect("config");
        assert_eq!(config.durable_name.as_deref(), Some("inbox-MOIC"));
        assert_eq!(config.filter_subject, "onedoor.v1.case.*.*.MOIC");
        assert_eq!(config.ack_wait, Duration::from_secs(30));
        assert_eq!(config.max_ack_pending, 32);
        assert_eq!(config.inactive_threshold, Duration::ZERO);
    }

    #[test]
    fn a_filter_reported_as_a_list_is_the_same_filter() {
        let wanted = inbox_consumer_config(&agency(), &InboxSettings::default()).expect("config");
        let mut existing = as_existing(&wanted);
        existing.filter_subjects = vec![existing.filter_subject.clone()];
        existing.filter_subject.clear();
        assert_eq!(differences(&existing, &wanted), (vec![], vec![]));
    }

    #[test]
    fn tuning_fields_are_changes_and_policy_fields_are_conflicts() {
        let wanted = inbox_consumer_config(&agency(), &InboxSettings::default()).expect("config");
        let mut existing = as_existing(&wanted);
        existing.max_ack_pending = 1000;
        existing.inactive_threshold = Duration::from_secs(300);
        let (conflicts, changes) = differences(&existing, &wanted);
        assert!(conflicts.is_empty());
        assert_eq!(
            changes,
            [
                "max_ack_pending: existing 1000, wanted 32",
                "inactive_threshold: existing 5m, wanted 0s"
            ]
        );

        existing.filter_subject = "onedoor.v1.case.>".into();
        existing.deliver_policy = DeliverPolicy::New;
        let (conflicts, _) = differences(&existing, &wanted);
        assert_eq!(
            conflicts,
            [
                "filter: existing [onedoor.v1.case.>], wanted [onedoor.v1.case.*.*.MOIC]",
                "deliver_policy: existing New, wanted All"
            ]
        );
    }
}
