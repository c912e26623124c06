//! The `ONEDOOR` stream: its configuration, and [`ensure_stream`], which creates it or checks
//! that the existing one is what onedoor needs, never overwriting it.
//!
//! # Which fields are compared
//!
//! Every field [`StreamSettings::stream_config`] sets on purpose, because each one carries a
//! promise of the design:
//!
//! | field | wanted | why |
//! | --- | --- | --- |
//! | `subjects` | `onedoor.v1.case.>` | contract (order-insensitive) |
//! | `storage` | file | contract: events survive a restart |
//! | `num_replicas` | settings (1 dev, 3 prod) | fault tolerance promised to operators |
//! | `duplicate_window` | settings, ≥ 24 h | contract: a retried write within a day is not a second event |
//! | `retention` | limits | events are kept after consumers read them (the tracker replays) |
//! | `discard` | new | if a limit is ever added, refuse new writes rather than delete old records |
//! | `max_age`, `max_messages`, `max_bytes`, `max_messages_per_subject` | none | the legal record never expires |
//! | `deny_delete`, `deny_purge` | true | nobody erases history through the API |
//! | `allow_rollup` | false | a roll-up would purge a case's earlier events |
//! | `allow_direct` | true | any replica can answer reads of a case's events (direct get) |
//! | `sealed` | false | a sealed stream takes no more events |
//!
//! Not compared, so operators may tune them without onedoor objecting: description, metadata,
//! compression, placement, `max_consumers`, `max_message_size` (the server's `max_payload`
//! bounds messages), and everything else.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::time::Duration;

use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind};
use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, ErrorCode};

use crate::drift::{FieldDrift, Fix, field, replicas_fix};
use crate::error::BusError;
use crate::subjects::{STREAM_NAME, STREAM_SUBJECTS};

/// The contract's floor for the de-duplication window.
pub const MIN_DUPLICATE_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// JetStream's own ceiling for replicas.
pub const MAX_REPLICAS: usize = 5;

/// What may differ between deployments; everything else about the stream is fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// Copies of every event: 1 on a single development node, 3 on the production cluster
    /// (survives one node down with a quorum left). 1..=5.
    pub replicas: usize,
    /// How long the server remembers `Nats-Msg-Id`s to drop re-sent events. At least
    /// [`MIN_DUPLICATE_WINDOW`]; longer costs memory per event id.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self::development()
    }
}

impl StreamSettings {
    /// One replica, 24 h window: a single local node.
    pub fn development() -> Self {
        Self {
            replicas: 1,
            duplicate_window: MIN_DUPLICATE_WINDOW,
        }
    }

    /// Three replicas, 24 h window: the production cluster.
    pub fn production() -> Self {
        Self {
            replicas: 3,
            ..Self::development()
        }
    }

    pub fn validate(&self) -> Result<(), BusError> {
        if self.duplicate_window < MIN_DUPLICATE_WINDOW {
            return Err(BusError::InvalidSettings {
                field: "duplicate_window",
                reason: format!(
                    "is {}, but must be at least {} (retried writes within a day must not become second events)",
                    fmt_duration(self.duplicate_window),
                    fmt_duration(MIN_DUPLICATE_WINDOW)
                ),
            });
        }
        if !(1..=MAX_REPLICAS).contains(&self.replicas) {
            return Err(BusError::InvalidSettings {
                field: "replicas",
                reason: format!(
                    "is {}, but must be between 1 and {MAX_REPLICAS}",
                    self.replicas
                ),
            });
        }
        Ok(())
    }

    /// The full stream configuration onedoor wants (see the module table).
    pub fn stream_config(&self) -> Config {
        Config {
            name: STREAM_NAME.to_owned(),
            description: Some("onedoor case events: the legal record of every case".to_owned()),
            subjects: vec![STREAM_SUBJECTS.to_owned()],
            storage: StorageType::File,
            num_replicas: self.replicas,
            duplicate_window: self.duplicate_window,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::New,
            // Zero age and -1 counts mean "no limit"; -1 is spelled out because the server
            // reports it that way, which keeps the comparison exact.
            max_age: Duration::ZERO,
            max_messages: -1,
            max_bytes: -1,
            max_messages_per_subject: -1,
            deny_delete: true,
            deny_purge: true,
            allow_rollup: false,
            allow_direct: true,
            sealed: false,
            ..Default::default()
        }
    }
}

/// What [`ensure_stream`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnsureOutcome {
    Created,
    /// The stream already existed with the wanted configuration.
    Unchanged,
}

/// Creates the `ONEDOOR` stream, or checks that the existing one matches `settings`.
///
/// Running it again changes nothing. An existing stream that differs in a compared field (see
/// the module docs) is reported as [`BusError::StreamConflict`] and left as it is.
#[tracing::instrument(skip_all, fields(stream = STREAM_NAME, replicas = settings.replicas))]
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<EnsureOutcome, BusError> {
    settings.validate()?;
    let wanted = settings.stream_config();

    match js.get_stream(STREAM_NAME).await {
        Ok(stream) => return check_existing(&stream.cached_info().config, &wanted),
        Err(err) if is_stream_not_found(&err.kind()) => {}
        Err(source) => {
            return Err(BusError::GetStream {
                stream: STREAM_NAME.to_owned(),
                source,
            });
        }
    }

    match js.create_stream(wanted.clone()).await {
        Ok(_) => {
            tracing::info!(
                duplicate_window = %fmt_duration(wanted.duplicate_window),
                "created stream"
            );
            Ok(EnsureOutcome::Created)
        }
        // Someone created it between our lookup and our create (another adapter starting at
        // the same moment) with a different configuration: compare against theirs.
        Err(err) if is_name_in_use(&err.kind()) => {
            let stream =
                js.get_stream(STREAM_NAME)
                    .await
                    .map_err(|source| BusError::GetStream {
                        stream: STREAM_NAME.to_owned(),
                        source,
                    })?;
            check_existing(&stream.cached_info().config, &wanted)
        }
        Err(source) => Err(BusError::CreateStream {
            stream: STREAM_NAME.to_owned(),
            source,
        }),
    }
}

fn is_stream_not_found(kind: &GetStreamErrorKind) -> bool {
    matches!(kind, GetStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

fn is_name_in_use(kind: &CreateStreamErrorKind) -> bool {
    matches!(kind, CreateStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NAME_EXIST)
}

fn check_existing(existing: &Config, wanted: &Config) -> Result<EnsureOutcome, BusError> {
    let differences = differences(existing, wanted);
    if differences.is_empty() {
        tracing::debug!("stream already as wanted");
        return Ok(EnsureOutcome::Unchanged);
    }
    tracing::warn!(
        ?differences,
        "stream exists with a conflicting configuration; leaving it unchanged"
    );
    Err(BusError::StreamConflict {
        stream: existing.name.clone(),
        differences,
    })
}

/// How one compared field of a stream configuration is written in a difference.
type Describe = fn(&Config) -> String;
/// Copies the wanted value of one field into the configuration an update sends.
type SetWanted = fn(&mut Config, &Config);

/// How a difference in one field can be closed (see [`Fix`]).
#[derive(Clone, Copy)]
enum Rule {
    InPlace,
    /// The server refuses to change it: storage, retention, and unsealing.
    NotInPlace,
    /// In place, but fewer replicas of a stream with messages lose copies.
    Replicas,
}

/// The fields onedoor sets: how each is written (as the server and the `nats` CLI name them,
/// so an operator can match them up), how a difference is closed, and how an update sets it.
/// Moving a limit to "unlimited" or a deny flag to true loses nothing, so they change in place.
const COMPARED: &[(&str, Describe, Rule, SetWanted)] = &[
    (
        "subjects",
        |c| {
            let set: BTreeSet<&str> = c.subjects.iter().map(String::as_str).collect();
            format!("[{}]", set.into_iter().collect::<Vec<_>>().join(", "))
        },
        Rule::InPlace,
        |u, w| u.subjects.clone_from(&w.subjects),
    ),
    (
        "storage",
        |c| storage_name(c.storage).into(),
        Rule::NotInPlace,
        |u, w| u.storage = w.storage,
    ),
    (
        "replicas",
        |c| c.num_replicas.to_string(),
        Rule::Replicas,
        |u, w| {
            u.num_replicas = w.num_replicas;
        },
    ),
    (
        "duplicate_window",
        |c| fmt_duration(c.duplicate_window),
        Rule::InPlace,
        |u, w| {
            u.duplicate_window = w.duplicate_window;
        },
    ),
    (
        "retention",
        |c| retention_name(c.retention).into(),
        Rule::NotInPlace,
        |u, w| {
            u.retention = w.retention;
        },
    ),
    (
        "discard",
        |c| discard_name(c.discard).into(),
        Rule::InPlace,
        |u, w| u.discard = w.discard,
    ),
    (
        "max_age",
        |c| fmt_age(c.max_age),
        Rule::InPlace,
        |u, w| u.max_age = w.max_age,
    ),
    (
        "max_msgs",
        |c| fmt_limit(c.max_messages),
        Rule::InPlace,
        |u, w| {
            u.max_messages = w.max_messages;
        },
    ),
    (
        "max_bytes",
        |c| fmt_limit(c.max_bytes),
        Rule::InPlace,
        |u, w| u.max_bytes = w.max_bytes,
    ),
    (
        "max_msgs_per_subject",
        |c| fmt_limit(c.max_messages_per_subject),
        Rule::InPlace,
        |u, w| {
            u.max_messages_per_subject = w.max_messages_per_subject;
        },
    ),
    (
        "deny_delete",
        |c| c.deny_delete.to_string(),
        Rule::InPlace,
        |u, w| {
            u.deny_delete = w.deny_delete;
        },
    ),
    (
        "deny_purge",
        |c| c.deny_purge.to_string(),
        Rule::InPlace,
        |u, w| u.deny_purge = w.deny_purge,
    ),
    (
        "allow_rollup_hdrs",
        |c| c.allow_rollup.to_string(),
        Rule::InPlace,
        |u, w| {
            u.allow_rollup = w.allow_rollup;
        },
    ),
    (
        "allow_direct",
        |c| c.allow_direct.to_string(),
        Rule::InPlace,
        |u, w| {
            u.allow_direct = w.allow_direct;
        },
    ),
    (
        "sealed",
        |c| c.sealed.to_string(),
        Rule::NotInPlace,
        |u, w| u.sealed = w.sealed,
    ),
];

/// The compared fields that differ, each as `field: existing X, wanted Y`.
pub fn differences(existing: &Config, wanted: &Config) -> Vec<String> {
    stream_drift(existing, wanted, 0)
        .iter()
        .map(FieldDrift::existing_wanted)
        .collect()
}

/// The compared fields of `actual` (a stream holding `messages`) that differ from `wanted`,
/// each with how it can be closed.
pub fn stream_drift(actual: &Config, wanted: &Config, messages: u64) -> Vec<FieldDrift> {
    COMPARED
        .iter()
        .filter_map(|(name, describe, rule, _)| {
            let fix = match rule {
                Rule::InPlace => Fix::InPlace,
                Rule::NotInPlace => Fix::NotInPlace,
                Rule::Replicas => replicas_fix(actual.num_replicas, wanted.num_replicas, messages),
            };
            field(name, describe(actual), describe(wanted), fix)
        })
        .collect()
}

/// `actual` with every compared field set as wanted: what an update sends, so the fields
/// operators may tune (description, compression, placement…) stay as they are.
pub fn stream_update(actual: &Config, wanted: &Config) -> Config {
    let mut update = actual.clone();
    for (_, _, _, copy) in COMPARED {
        copy(&mut update, wanted);
    }
    update
}

// Names as the server and the `nats` CLI spell them, so an operator can match them up.
fn storage_name(storage: StorageType) -> &'static str {
    match storage {
        StorageType::File => "file",
        StorageType::Memory => "memory",
    }
}

fn retention_name(retention: RetentionPolicy) -> &'static str {
    match retention {
        RetentionPolicy::Limits => "limits",
        RetentionPolicy::Interest => "interest",
        RetentionPolicy::WorkQueue => "workqueue",
    }
}

fn discard_name(discard: DiscardPolicy) -> &'static str {
    match discard {
        DiscardPolicy::Old => "old",
        DiscardPolicy::New => "new",
    }
}

fn fmt_limit(value: impl Into<i64> + Display + Copy) -> String {
    if value.into() < 0 {
        "unlimited".to_owned()
    } else {
        value.to_string()
    }
}

fn fmt_age(age: Duration) -> String {
    if age.is_zero() {
        "unlimited".to_owned()
    } else {
        fmt_duration(age)
    }
}

/// `24h`, `2m`, `1h30m`, `90ms`: short, exact, and the way the `nats` CLI writes durations.
pub fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() != 0 {
        return format!("{d:?}");
    }
    let secs = d.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if value != 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_nats_cli() {
        assert_eq!(fmt_duration(Duration::from_secs(120)), "2m");
        assert_eq!(fmt_duration(MIN_DUPLICATE_WINDOW), "24h");
        assert_eq!(fmt_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(fmt_duration(Duration::from_secs(61)), "1m1s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn a_duplicate_window_under_a_day_is_refused() {
        let settings = StreamSettings {
            duplicate_window: Duration::from_secs(120),
            ..StreamSettings::development()
        };
        let err = settings.validate().expect_err("2m < 24h");
        assert!(err.to_string().contains("duplicate_window is 2m"), "{err}");
    }

    #[test]
    fn a_longer_duplicate_window_is_allowed() {
        let settings = StreamSettings {
            duplicate_window: Duration::from_secs(7 * 24 * 3600),
            ..StreamSettings::production()
        };
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn replicas_outside_one_to_five_are_refused() {
        for replicas in [0, 6] {
            let settings = StreamSettings {
                replicas,
                ..StreamSettings::development()
            };
            assert!(settings.validate().is_err(), "{replicas}");
        }
    }

    #[test]
    fn identical_configs_have_no_differences() {
        let wanted = StreamSettings::production().stream_config();
        assert!(differences(&wanted, &wanted).is_empty());
    }

    #[test]
    fn subject_order_does_not_matter_but_extra_subjects_do() {
        let wanted = StreamSettings::development().stream_config();
        let mut existing = wanted.clone();
        existing.subjects = vec!["other.>".into(), STREAM_SUBJECTS.into()];
        assert_eq!(
            differences(&existing, &wanted),
            vec!["subjects: existing [onedoor.v1.case.>, other.>], wanted [onedoor.v1.case.>]"]
        );
    }

    #[test]
    fn each_difference_names_the_field_and_both_values() {
        let wanted = StreamSettings::development().stream_config();
        let mut existing = wanted.clone();
        existing.duplicate_window = Duration::from_secs(120);
        existing.storage = StorageType::Memory;
        existing.max_age = Duration::from_secs(30 * 24 * 3600);
        existing.deny_purge = false;
        assert_eq!(
            differences(&existing, &wanted),
            vec![
                "storage: existing memory, wanted file",
                "duplicate_window: existing 2m, wanted 24h",
                "max_age: existing 720h, wanted unlimited",
                "deny_purge: existing false, wanted true",
            ]
        );
    }

    #[test]
    fn storage_and_retention_cannot_change_and_fewer_replicas_with_data_lose_copies() {
        let wanted = StreamSettings::development().stream_config();
        let mut actual = StreamSettings::production().stream_config();
        actual.storage = StorageType::Memory;
        actual.retention = RetentionPolicy::Interest;
        let fixes = |messages| {
            stream_drift(&actual, &wanted, messages)
                .into_iter()
                .map(|drift| (drift.field, matches!(drift.fix, Fix::InPlace)))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            fixes(0),
            [("storage", false), ("replicas", true), ("retention", false)]
        );
        let with_data = stream_drift(&actual, &wanted, 5);
        assert!(
            matches!(with_data[1].fix, Fix::LosesData { .. }),
            "{with_data:?}"
        );
    }

    #[test]
    fn an_update_sets_the_compared_fields_and_keeps_the_rest() {
        let wanted = StreamSettings::production().stream_config();
        let mut actual = StreamSettings::development().stream_config();
        actual.description = Some("tuned by the operator".into());
        actual.max_age = Duration::from_secs(3600);
        let update = stream_update(&actual, &wanted);
        assert!(stream_drift(&update, &wanted, 1).is_empty());
        assert_eq!(update.description, actual.description);
    }
}
