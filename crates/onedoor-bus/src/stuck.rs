//! Stuck deliveries: events an agency's inbox gave up on, recorded where staff will see them.
//!
//! An event is *stuck* when its inbox delivered it `max_deliver` times without an
//! acknowledgement, or when it could not be decoded and was terminated. Either way it will not
//! be delivered again, so it must never only be logged: it is written to the JetStream KV bucket
//! [`STUCK_BUCKET`] (`ONEDOOR_STUCK`), key `<AGENCY>.<stream_seq>`, as a JSON [`StuckRecord`].
//! The tracker reads exactly this bucket and format.
//!
//! Two writers, one record: [`StuckRecorder`] listens to the server's max-deliveries advisory
//! (`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ONEDOOR.inbox-<AGENCY>`), and the inbox itself
//! records a final delivery that was not acknowledged and every malformed message it
//! terminates. Records are written with KV `create`, so whoever is first wins and the other
//! finds the key taken; nothing is recorded twice or overwritten.
//!
//! Why both: advisories are core NATS messages, lost while the recorder is disconnected; and
//! measured on nats-server 2.15.1, the server only notices an exhausted delivery (and sends the
//! advisory) when some client next pulls from the consumer, so with no session open the
//! advisory may come much later than the last ack wait.

use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind};
use async_nats::jetstream::{self, stream::StorageType};
use futures::StreamExt as _;
use onedoor_case::AgencyCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use crate::case_log::{CaseLog, decode_stored};
use crate::error::BusError;
use crate::replica_read::Freshness;
use crate::subjects::{self, STREAM_NAME};

/// The KV bucket of stuck deliveries (contract with the tracker).
pub const STUCK_BUCKET: &str = "ONEDOOR_STUCK";

/// Prefix of the server's max-deliveries advisories for consumers of the ONEDOOR stream.
pub const MAX_DELIVERIES_ADVISORY_PREFIX: &str = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES";

/// One stuck delivery, as stored in [`STUCK_BUCKET`]. Field names are a contract with the
/// tracker; do not rename them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StuckRecord {
    pub agency: String,
    /// Empty when the message was too malformed to say (no case subject token).
    pub case_id: String,
    /// Empty when the message was too malformed to say (no payload id, no `Nats-Msg-Id`).
    pub event_id: String,
    pub stream_sequence: u64,
    /// Deliveries made before giving up (for a malformed message: the one that was refused).
    pub deliveries: u64,
    /// RFC 3339, UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// Why it is stuck, for staff: exhausted deliveries, or the decode error.
    pub reason: String,
}

impl StuckRecord {
    /// `<AGENCY>.<stream_seq>`: one record per event per inbox.
    pub fn key(&self) -> String {
        stuck_key(&self.agency, self.stream_sequence)
    }

    /// Why this record, read under `key`, is not the alarm it claims to be. The broker lets an
    /// agency write only keys that start with its own code, so the key is what vouches for the
    /// agency; a record naming another agency (or sequence) than its key is refused, not shown.
    pub fn key_mismatch(&self, key: &str) -> Option<String> {
        let claimed = self.key();
        (claimed != key).then(|| format!("stored under key {key} but claims to be {claimed}"))
    }
}

/// `<AGENCY>.<stream_seq>`.
pub fn stuck_key(agency: &str, stream_sequence: u64) -> String {
    format!("{agency}.{stream_sequence}")
}

/// The reason written for an event that used up its deliveries, the same whichever side
/// records it.
pub fn exhausted_reason(deliveries: u64) -> String {
    format!("not acknowledged after {deliveries} deliveries (max_deliver reached)")
}

/// `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ONEDOOR.inbox-<AGENCY>`.
pub fn max_deliveries_advisory_subject(agency: &AgencyCode) -> Result<String, BusError> {
    let consumer = subjects::inbox_consumer(agency.as_str())?;
    Ok(format!(
        "{MAX_DELIVERIES_ADVISORY_PREFIX}.{STREAM_NAME}.{consumer}"
    ))
}

/// The fields of `io.nats.jetstream.advisory.v1.max_deliver` that matter here (checked against
/// nats-server 2.15.1: `{"type", "id", "timestamp", "stream", "consumer", "stream_seq",
/// "deliveries"}`).
#[derive(Debug, Deserialize)]
struct MaxDeliveriesAdvisory {
    stream: String,
    consumer: String,
    stream_seq: u64,
    deliveries: u64,
}

/// The [`STUCK_BUCKET`] as onedoor makes it: file storage, history 1, no TTL, `replicas`
/// copies.
pub fn stuck_bucket_config(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: STUCK_BUCKET.to_owned(),
        description: "onedoor: inbox deliveries given up on, for staff to act on".to_owned(),
        history: 1,
        max_age: Duration::ZERO,
        storage: StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    }
}

/// Whether the bucket's stream takes `Nats-Rollup` headers. KV buckets are made with rollups
/// allowed, and an agency allowed to write its own keys could then send `Nats-Rollup: all` on
/// one of them and purge every agency's records: the header is not something subject
/// permissions can filter. Nothing in onedoor purges a record (staff delete them, which needs no
/// rollup), so the bucket refuses rollups outright.
pub const STUCK_ALLOW_ROLLUP: bool = false;

/// Creates the [`STUCK_BUCKET`] with `config`, then turns rollups off (see
/// [`STUCK_ALLOW_ROLLUP`]); the client creates KV buckets with them on.
pub async fn create_stuck_bucket(
    js: &jetstream::Context,
    config: kv::Config,
) -> Result<kv::Store, BusError> {
    let store = js.create_key_value(config).await.map_err(|e| {
        BusError::nats_on("creating the stuck-deliveries bucket", &STUCK_BUCKET, &e)
    })?;
    refuse_rollups(js).await?;
    Ok(store)
}

/// Turns rollups off on the bucket's stream, if they are on.
pub async fn refuse_rollups(js: &jetstream::Context) -> Result<(), BusError> {
    let stream_name = format!("KV_{STUCK_BUCKET}");
    let nats = |e: &(dyn std::error::Error + 'static)| {
        BusError::nats_on(
            "refusing rollups on the stuck-deliveries bucket",
            &stream_name,
            e,
        )
    };
    let mut stream = js.get_stream(&stream_name).await.map_err(|e| nats(&e))?;
    let mut config = stream.info().await.map_err(|e| nats(&e))?.config.clone();
    if config.allow_rollup != STUCK_ALLOW_ROLLUP {
        config.allow_rollup = STUCK_ALLOW_ROLLUP;
        js.update_stream(&config).await.map_err(|e| nats(&e))?;
    }
    Ok(())
}

/// Opens the [`STUCK_BUCKET`], creating it if missing: file storage, history 1, no TTL, and as
/// many replicas as the ONEDOOR stream (a stuck record is as precious as the event it names).
/// A bucket someone else created with other settings is used as it is.
pub async fn ensure_stuck_bucket(js: &jetstream::Context) -> Result<kv::Store, BusError> {
    // Look it up first: agencies' NATS users may not create buckets (the operator does), and a
    // refused create only shows as a request timeout, which would stall every adapter start.
    if let Ok(store) = js.get_key_value(STUCK_BUCKET).await {
        return Ok(store);
    }
    let replicas = match js.get_stream(STREAM_NAME).await {
        Ok(stream) => stream.cached_info().config.num_replicas.max(1),
        Err(_) => 1,
    };
    match create_stuck_bucket(js, stuck_bucket_config(replicas)).await {
        Ok(store) => Ok(store),
        // Exists with a different configuration (or a create race): use what is there.
        Err(create_err) => js.get_key_value(STUCK_BUCKET).await.map_err(|get_err| {
            let about = format!("{STUCK_BUCKET}: creating failed ({create_err}), opening");
            BusError::nats_on("opening the stuck-deliveries bucket", &about, &get_err)
        }),
    }
}

/// What [`record_stuck`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    /// The key was already there (the other writer was first); it was left as it is.
    AlreadyRecorded,
}

/// Writes `record` unless its key exists.
pub async fn record_stuck(store: &kv::Store, record: &StuckRecord) -> Result<Recorded, BusError> {
    let key = record.key();
    let value = serde_json::to_vec(record).map_err(|e| BusError::Encode {
        why: format!("stuck record {key}: {e}"),
    })?;
    match store.create(&key, value.into()).await {
        Ok(_) => {
            tracing::warn!(
                key,
                agency = record.agency,
                case_id = record.case_id,
                event_id = record.event_id,
                deliveries = record.deliveries,
                reason = record.reason,
                "recorded a stuck delivery"
            );
            Ok(Recorded::New)
        }
        Err(err) if err.kind() == CreateErrorKind::AlreadyExists => Ok(Recorded::AlreadyRecorded),
        Err(err) => Err(BusError::nats_on(
            "recording a stuck delivery",
            &format!("{STUCK_BUCKET} {key}"),
            &err,
        )),
    }
}

/// [`record_stuck`], retried for about half a minute: the record is the only trace of an event
/// that will not be delivered again, so a short outage must not lose it. Returns the last error
/// when every try failed (and logs it loudly).
pub(crate) async fn record_stuck_with_retries(
    store: &kv::Store,
    record: &StuckRecord,
) -> Result<Recorded, BusError> {
    const ATTEMPTS: u32 = 8;
    let mut delay = Duration::from_millis(250);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match record_stuck(store, record).await {
            Ok(recorded) => return Ok(recorded),
            Err(err) if attempt < ATTEMPTS => {
                tracing::warn!(error = %err, attempt, "recording a stuck delivery failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
            }
            Err(err) => {
                tracing::error!(
                    error = %err,
                    key = record.key(),
                    case_id = record.case_id,
                    event_id = record.event_id,
                    "could not record a stuck delivery; it is in the stream but staff will not see it as stuck"
                );
                return Err(err);
            }
        }
    }
}

/// Every stuck record, ordered by agency then stream sequence. An empty list when the bucket
/// does not exist yet. Values that are not [`StuckRecord`] JSON are skipped with a warning
/// (someone else wrote them; they must not hide the rest).
pub async fn list_stuck(js: &jetstream::Context) -> Result<Vec<StuckRecord>, BusError> {
    let store = match js.get_key_value(STUCK_BUCKET).await {
        Ok(store) => store,
        Err(err) => {
            // Distinguish "no bucket yet" from a failing server by asking for the stream.
            return match js.get_stream(format!("KV_{STUCK_BUCKET}")).await {
                Err(e) if is_stream_not_found(&e) => Ok(Vec::new()),
                _ => Err(BusError::nats_on(
                    "opening the stuck-deliveries bucket",
                    &STUCK_BUCKET,
                    &err,
                )),
            };
        }
    };
    let nats_err = |e: &(dyn std::error::Error + 'static)| {
        BusError::nats_on("listing stuck deliveries", &STUCK_BUCKET, e)
    };
    let mut keys = store.keys().await.map_err(|e| nats_err(&e))?;
    let mut records = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| nats_err(&e))?;
        let Some(value) = store.get(&key).await.map_err(|e| nats_err(&e))? else {
            continue; // deleted between listing and reading
        };
        match serde_json::from_slice::<StuckRecord>(&value) {
            Ok(record) => match record.key_mismatch(&key) {
                None => records.push(record),
                Some(why) => tracing::warn!(key, why, "skipping a stuck record under a wrong key"),
            },
            Err(e) => {
                tracing::warn!(key, error = %e, "skipping a stuck entry that is not a record")
            }
        }
    }
    records.sort_by(|a, b| {
        (a.agency.as_str(), a.stream_sequence).cmp(&(b.agency.as_str(), b.stream_sequence))
    });
    Ok(records)
}

fn is_stream_not_found(err: &async_nats::jetstream::context::GetStreamError) -> bool {
    use async_nats::jetstream::context::GetStreamErrorKind;
    matches!(err.kind(), GetStreamErrorKind::JetStream(e) if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// Listens to max-deliveries advisories and records each as a [`StuckRecord`].
///
/// The subscription is in place when `spawn` returns, so nothing exhausted afterwards is
/// missed while this process stays connected. Dropping it stops the task.
#[derive(Debug)]
pub struct StuckRecorder {
    task: JoinHandle<()>,
}

impl StuckRecorder {
    /// Records exhausted deliveries of `agency`'s inbox.
    ///
    /// `log` reads the stuck event (its case and event ids); an agency's confined log may,
    /// since the event was addressed to it.
    pub async fn spawn(
        js: jetstream::Context,
        agency: &AgencyCode,
        log: CaseLog,
    ) -> Result<Self, BusError> {
        let subject = max_deliveries_advisory_subject(agency)?;
        Self::spawn_on(js, subject, log).await
    }

    /// Records exhausted deliveries of every agency's inbox (one process running all adapters,
    /// or an operator tool). Advisories of other consumers (e.g. `tracker`) are ignored.
    pub async fn spawn_for_all_inboxes(
        js: jetstream::Context,
        log: CaseLog,
    ) -> Result<Self, BusError> {
        Self::spawn_on(
            js,
            format!("{MAX_DELIVERIES_ADVISORY_PREFIX}.{STREAM_NAME}.*"),
            log,
        )
        .await
    }

    async fn spawn_on(
        js: jetstream::Context,
        subject: String,
        log: CaseLog,
    ) -> Result<Self, BusError> {
        let store = ensure_stuck_bucket(&js).await?;
        let client = js.client();
        let subscription = client.subscribe(subject.clone()).await.map_err(|e| {
            BusError::nats_on("subscribing to max-deliveries advisories", &subject, &e)
        })?;
        // The server must know of the interest before we say we are listening.
        client.flush().await.map_err(|e| {
            BusError::nats_on("subscribing to max-deliveries advisories", &subject, &e)
        })?;
        tracing::debug!(subject, "listening for max-deliveries advisories");
        let task = tokio::spawn(async move {
            let mut subscription = subscription;
            while let Some(message) = subscription.next().await {
                match serde_json::from_slice::<MaxDeliveriesAdvisory>(&message.payload) {
                    Ok(advisory) => record_advisory(&log, &store, advisory).await,
                    Err(e) => tracing::warn!(
                        subject = %message.subject,
                        error = %e,
                        "ignoring a max-deliveries advisory that does not parse"
                    ),
                }
            }
            tracing::debug!(subject, "advisory subscription ended");
        });
        Ok(StuckRecorder { task })
    }

    /// Stops listening.
    pub async fn shutdown(self) {
        self.task.abort();
    }
}

impl Drop for StuckRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record_advisory(log: &CaseLog, store: &kv::Store, advisory: MaxDeliveriesAdvisory) {
    let Some(agency) = advisory.consumer.strip_prefix("inbox-") else {
        return; // not an inbox (e.g. the tracker's consumer)
    };
    if advisory.stream != STREAM_NAME || AgencyCode::parse(agency).is_err() {
        return;
    }
    let (case_id, event_id) = identify(log, advisory.stream_seq).await;
    let record = StuckRecord {
        agency: agency.to_owned(),
        case_id,
        event_id,
        stream_sequence: advisory.stream_seq,
        deliveries: advisory.deliveries,
        recorded_at: OffsetDateTime::now_utc(),
        reason: exhausted_reason(advisory.deliveries),
    };
    // Failures are logged loudly inside; the advisory cannot be asked for again.
    let _ = record_stuck_with_retries(store, &record).await;
}

/// The case and event ids of the message at `sequence`: decoded from the payload, or, for a
/// message that does not decode, from its subject and `Nats-Msg-Id` header. Empty strings for
/// what cannot be found (the record is still written: staff must see it).
async fn identify(log: &CaseLog, sequence: u64) -> (String, String) {
    let mut attempt = 0;
    let message = loop {
        attempt += 1;
        match log.raw_at(sequence, Freshness::Replica(sequence)).await {
            Ok(Some(message)) => break message,
            Ok(None) => {
                tracing::warn!(
                    sequence,
                    "the stuck event cannot be read; recording it without ids"
                );
                return (String::new(), String::new());
            }
            Err(err) if attempt < 3 => {
                tracing::debug!(sequence, error = %err, "direct get of a stuck event failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => {
                tracing::warn!(sequence, error = %err, "cannot read the stuck event; recording it without ids");
                return (String::new(), String::new());
            }
        }
    };
    if let Ok(stored) = decode_stored(sequence, message.payload.clone()) {
        return (
            stored.event.case_id.to_string(),
            stored.event.event_id.to_string(),
        );
    }
    // Reads (through the case reader, too) carry no headers: the event id of a message that
    // does not decode stays unknown; its case comes from the subject.
    ids_from_envelope(message.subject.as_str(), None)
}

/// Best-effort ids of a message whose payload does not decode: the case token of its subject
/// (`onedoor.v1.case.<case_id>.<from>.<to>`) and its `Nats-Msg-Id`.
pub(crate) fn ids_from_envelope(subject: &str, msg_id: Option<&str>) -> (String, String) {
    let case_id = subject
        .strip_prefix(subjects::CASE_SUBJECT_PREFIX)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_default()
        .to_owned();
    (case_id, msg_id.unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_agency_then_stream_sequence() {
        assert_eq!(stuck_key("ODSC-VTE-SAYSETTHA", 42), "ODSC-VTE-SAYSETTHA.42");
    }

    #[test]
    fn the_advisory_subject_names_the_stream_and_the_inbox_consumer() {
        let agency = AgencyCode::parse("MOIC").expect("valid");
        assert_eq!(
            max_deliveries_advisory_subject(&agency).expect("subject"),
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ONEDOOR.inbox-MOIC"
        );
    }

    #[test]
    fn a_record_serialises_with_the_contract_field_names_and_rfc3339_utc() {
        let record = StuckRecord {
            agency: "MOIC".into(),
            case_id: "01JDQ3Z6Y8K9M2N4P5R7S9T1V3".into(),
            event_id: "01JDQ3Z6Y8K9M2N4P5R7S9T1V4".into(),
            stream_sequence: 7,
            deliveries: 8,
            recorded_at: time::macros::datetime!(2026-11-27 10:00:00 UTC),
            reason: exhausted_reason(8),
        };
        let json: serde_json::Value = serde_json::to_value(&record).expect("json");
        assert_eq!(json["recorded_at"], "2026-11-27T10:00:00Z");
        let mut fields: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "agency",
                "case_id",
                "deliveries",
                "event_id",
                "reason",
                "recorded_at",
                "stream_sequence"
            ]
        );
        let back: StuckRecord = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, record);
    }

    #[test]
    fn a_malformed_message_is_identified_by_its_subject_and_msg_id() {
        assert_eq!(
            ids_from_envelope("onedoor.v1.case.CASE1.MOF.MOIC", Some("EV1")),
            ("CASE1".to_owned(), "EV1".to_owned())
        );
        assert_eq!(
            ids_from_envelope("elsewhere", None),
            (String::new(), String::new())
        );
    }
}
