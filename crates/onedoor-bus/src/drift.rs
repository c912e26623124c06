//! What a JetStream object on the server looks like against what onedoor wants, field by field,
//! and whether each difference can be closed: in place, in place at a cost in data, or not at
//! all (the object would have to be made again by hand).
//!
//! `onedoor provision` applies these, `onedoor provision --check` prints them; the stream's
//! own fields are in [`crate::stream`] (`stream_drift`), the consumers' and the stuck bucket's
//! here.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::consumer::{self, pull};
use async_nats::jetstream::{kv, stream};

use crate::stream::fmt_duration;

/// A JetStream object onedoor provisions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Object {
    Stream(String),
    /// A durable consumer of the ONEDOOR stream.
    Consumer(String),
    /// A key-value bucket.
    Bucket(String),
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Stream(name) => write!(f, "stream {name}"),
            Object::Consumer(name) => write!(f, "consumer {name}"),
            Object::Bucket(name) => write!(f, "bucket {name}"),
        }
    }
}

/// How a difference can be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// An update changes it and keeps every message.
    InPlace,
    /// An update can change it, but at a cost in data or fault tolerance that someone must
    /// accept (`why` says which).
    LosesData { why: String },
    /// JetStream refuses to change it on an existing object.
    NotInPlace,
}

/// One field whose value on the server differs from the wanted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDrift {
    /// As the server and the `nats` CLI name it.
    pub field: &'static str,
    pub actual: String,
    pub wanted: String,
    pub fix: Fix,
}

impl FieldDrift {
    /// `field: existing X, wanted Y`, the wording of conflict errors.
    pub fn existing_wanted(&self) -> String {
        format!(
            "{}: existing {}, wanted {}",
            self.field, self.actual, self.wanted
        )
    }
}

/// `field: old → new`.
impl fmt::Display for FieldDrift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} → {}", self.field, self.actual, self.wanted)
    }
}

/// One object against what is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// Not on the server.
    Missing,
    /// On the server, these fields differing (never empty).
    Differs(Vec<FieldDrift>),
    InSync,
}

impl Drift {
    /// [`Drift::InSync`] for no differences.
    pub fn from_fields(fields: Vec<FieldDrift>) -> Drift {
        if fields.is_empty() {
            Drift::InSync
        } else {
            Drift::Differs(fields)
        }
    }

    pub fn fields(&self) -> &[FieldDrift] {
        match self {
            Drift::Differs(fields) => fields,
            Drift::Missing | Drift::InSync => &[],
        }
    }
}

/// What applying a [`Drift`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated(Vec<FieldDrift>),
    Unchanged,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Created => f.write_str("created"),
            Change::Unchanged => f.write_str("unchanged"),
            Change::Updated(fields) => write!(f, "updated ({})", join(fields)),
        }
    }
}

/// The fields, `; `-separated, as [`FieldDrift`]'s display writes them.
pub fn join(fields: &[FieldDrift]) -> String {
    fields
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A drift of `field` when `actual` and `wanted` read differently.
pub(crate) fn field(
    field: &'static str,
    actual: String,
    wanted: String,
    fix: Fix,
) -> Option<FieldDrift> {
    (actual != wanted).then_some(FieldDrift {
        field,
        actual,
        wanted,
        fix,
    })
}

/// Fewer replicas with messages stored lose copies; more, or an empty stream, lose nothing.
pub(crate) fn replicas_fix(actual: usize, wanted: usize, messages: u64) -> Fix {
    if wanted < actual && messages > 0 {
        Fix::LosesData {
            why: format!(
                "{messages} messages would be kept on {wanted} of {actual} nodes: fewer copies \
                 tolerate fewer node failures, and the removed replicas' data is dropped"
            ),
        }
    } else {
        Fix::InPlace
    }
}

/// Whether a consumer's start position is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The wanted deliver policy must hold (an inbox delivers from the stream's start).
    Checked,
    /// Its owner moves it (the tracker's rebuild makes its consumer again, starting after the
    /// last event it stored): any start is in sync.
    SetByOwner,
}

/// The fields of a durable pull consumer that differ from `wanted`. Its kind, filter and
/// policies cannot change in place; timings and limits can, and keep the consumer's state
/// (nothing acknowledged comes again, nothing pending is dropped).
pub fn consumer_drift(
    actual: &consumer::Config,
    wanted: &pull::Config,
    start: Start,
) -> Vec<FieldDrift> {
    let mut drift = Vec::new();
    if let Some(subject) = actual.deliver_subject.as_deref().filter(|s| !s.is_empty()) {
        drift.push(FieldDrift {
            field: "kind",
            actual: format!("push (deliver subject {subject})"),
            wanted: "pull".to_owned(),
            fix: Fix::NotInPlace,
        });
    }
    let policies = [
        (
            "filter",
            filters(actual),
            format!("[{}]", wanted.filter_subject),
        ),
        (
            "deliver_policy",
            format!("{:?}", actual.deliver_policy),
            match start {
                Start::Checked => format!("{:?}", wanted.deliver_policy),
                Start::SetByOwner => format!("{:?}", actual.deliver_policy),
            },
        ),
        (
            "ack_policy",
            format!("{:?}", actual.ack_policy),
            format!("{:?}", wanted.ack_policy),
        ),
        (
            "replay_policy",
            format!("{:?}", actual.replay_policy),
            format!("{:?}", wanted.replay_policy),
        ),
    ];
    drift.extend(
        policies
            .into_iter()
            .filter_map(|(name, actual, wanted)| field(name, actual, wanted, Fix::NotInPlace)),
    );
    drift.extend(
        tunables(actual, wanted)
            .into_iter()
            .filter_map(|(name, actual, wanted)| field(name, actual, wanted, Fix::InPlace)),
    );
    drift
}

/// The server may report the one filter as `filter_subjects`; what counts is the set.
fn filters(actual: &consumer::Config) -> String {
    let mut filters: Vec<&str> = actual.filter_subjects.iter().map(String::as_str).collect();
    if !actual.filter_subject.is_empty() {
        filters.push(&actual.filter_subject);
    }
    filters.sort_unstable();
    filters.dedup();
    format!("[{}]", filters.join(", "))
}

/// Timings and limits: `(field, actual, wanted)`. A wanted `max_ack_pending` of 0 leaves the
/// server's default, which is then never drift.
fn tunables(
    actual: &consumer::Config,
    wanted: &pull::Config,
) -> [(&'static str, String, String); 6] {
    let steps = |backoff: &[Duration]| {
        let steps: Vec<String> = backoff.iter().map(|d| fmt_duration(*d)).collect();
        format!("[{}]", steps.join(", "))
    };
    // The server reports "no limit" as -1 where a client may have asked with 0.
    let deliveries = |n: i64| {
        if n <= 0 {
            "unlimited".to_owned()
        } else {
            n.to_string()
        }
    };
    let pending = if wanted.max_ack_pending == 0 {
        actual.max_ack_pending
    } else {
        wanted.max_ack_pending
    };
    [
        (
            "ack_wait",
            fmt_duration(actual.ack_wait),
            fmt_duration(wanted.ack_wait),
        ),
        ("backoff", steps(&actual.backoff), steps(&wanted.backoff)),
        (
            "max_deliver",
            deliveries(actual.max_deliver),
            deliveries(wanted.max_deliver),
        ),
        (
            "max_ack_pending",
            actual.max_ack_pending.to_string(),
            pending.to_string(),
        ),
        (
            "inactive_threshold",
            fmt_duration(actual.inactive_threshold),
            fmt_duration(wanted.inactive_threshold),
        ),
        (
            "headers_only",
            actual.headers_only.to_string(),
            wanted.headers_only.to_string(),
        ),
    ]
}

/// `actual` with the wanted timings and limits: what an update sends, so that everything
/// else (its start position, a description someone wrote) stays as it is.
pub fn consumer_update(actual: &consumer::Config, wanted: &pull::Config) -> consumer::Config {
    let mut update = actual.clone();
    update.ack_wait = wanted.ack_wait;
    update.backoff = wanted.backoff.clone();
    update.max_deliver = wanted.max_deliver;
    if wanted.max_ack_pending != 0 {
        update.max_ack_pending = wanted.max_ack_pending;
    }
    update.inactive_threshold = wanted.inactive_threshold;
    update.headers_only = wanted.headers_only;
    update
}

/// The fields of a key-value bucket (its stream `actual`, holding `messages`) that differ from
/// `wanted`.
pub fn bucket_drift(
    actual: &stream::Config,
    wanted: &kv::Config,
    messages: u64,
) -> Vec<FieldDrift> {
    let age = |age: Duration| {
        if age.is_zero() {
            "unlimited".to_owned()
        } else {
            fmt_duration(age)
        }
    };
    [
        field(
            "storage",
            format!("{:?}", actual.storage),
            format!("{:?}", wanted.storage),
            Fix::NotInPlace,
        ),
        field(
            "replicas",
            actual.num_replicas.to_string(),
            wanted.num_replicas.to_string(),
            replicas_fix(actual.num_replicas, wanted.num_replicas, messages),
        ),
        field(
            "history",
            actual.max_messages_per_subject.to_string(),
            wanted.history.to_string(),
            Fix::InPlace,
        ),
        field(
            "max_age",
            age(actual.max_age),
            age(wanted.max_age),
            Fix::InPlace,
        ),
        field(
            "allow_rollup",
            actual.allow_rollup.to_string(),
            crate::stuck::STUCK_ALLOW_ROLLUP.to_string(),
            Fix::InPlace,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `actual` with the bucket's wanted replicas, history, age and rollup refusal.
pub fn bucket_update(actual: &stream::Config, wanted: &kv::Config) -> stream::Config {
    let mut update = actual.clone();
    update.num_replicas = wanted.num_replicas;
    update.max_messages_per_subject = wanted.history;
    update.max_age = wanted.max_age;
    update.allow_rollup = crate::stuck::STUCK_ALLOW_ROLLUP;
    update
}

#[cfg(test)]
mod tests {
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy};
    use async_nats::jetstream::stream::StorageType;

    use super::*;

    fn wanted() -> pull::Config {
        pull::Config {
            durable_name: Some("tracker".into()),
            filter_subject: "onedoor.v1.case.>".into(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            ..Default::default()
        }
    }

    /// What the server reports for `wanted()`: -1 for no delivery limit, its default of 1000
    /// pending acks.
    fn as_reported(wanted: &pull::Config) -> consumer::Config {
        consumer::Config {
            durable_name: wanted.durable_name.clone(),
            filter_subject: wanted.filter_subject.clone(),
            deliver_policy: wanted.deliver_policy,
            ack_policy: wanted.ack_policy,
            ack_wait: wanted.ack_wait,
            max_deliver: -1,
            max_ack_pending: 1000,
            ..Default::default()
        }
    }

    #[test]
    fn server_defaults_for_limits_left_unset_are_not_drift() {
        assert_eq!(
            consumer_drift(&as_reported(&wanted()), &wanted(), Start::Checked),
            []
        );
    }

    #[test]
    fn a_start_set_by_the_owner_is_not_drift_but_a_checked_one_is() {
        let mut actual = as_reported(&wanted());
        actual.deliver_policy = DeliverPolicy::ByStartSequence { start_sequence: 42 };
        assert_eq!(consumer_drift(&actual, &wanted(), Start::SetByOwner), []);
        let drift = consumer_drift(&actual, &wanted(), Start::Checked);
        assert_eq!(drift.len(), 1);
        assert_eq!(drift[0].field, "deliver_policy");
        assert_eq!(drift[0].fix, Fix::NotInPlace);
    }

    #[test]
    fn timings_change_in_place_and_the_update_keeps_the_start() {
        let mut actual = as_reported(&wanted());
        actual.deliver_policy = DeliverPolicy::ByStartSequence { start_sequence: 42 };
        actual.ack_wait = Duration::from_secs(5);
        actual.max_deliver = 3;
        let drift = consumer_drift(&actual, &wanted(), Start::SetByOwner);
        assert_eq!(
            drift.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["ack_wait: 5s → 30s", "max_deliver: 3 → unlimited"]
        );
        assert!(drift.iter().all(|d| d.fix == Fix::InPlace));
        let update = consumer_update(&actual, &wanted());
        assert_eq!(consumer_drift(&update, &wanted(), Start::SetByOwner), []);
        assert_eq!(update.deliver_policy, actual.deliver_policy);
    }

    #[test]
    fn a_push_consumer_cannot_become_pull() {
        let mut actual = as_reported(&wanted());
        actual.deliver_subject = Some("deliver.here".into());
        let drift = consumer_drift(&actual, &wanted(), Start::Checked);
        assert_eq!(
            drift[0].existing_wanted(),
            "kind: existing push (deliver subject deliver.here), wanted pull"
        );
        assert_eq!(drift[0].fix, Fix::NotInPlace);
    }

    #[test]
    fn fewer_replicas_lose_data_only_when_there_is_data() {
        assert_eq!(replicas_fix(3, 1, 0), Fix::InPlace);
        assert_eq!(replicas_fix(1, 3, 10), Fix::InPlace);
        let Fix::LosesData { why } = replicas_fix(3, 1, 10) else {
            panic!("R3 → R1 with 10 messages must lose data");
        };
        assert!(why.contains("fewer copies"), "{why}");
    }

    #[test]
    fn a_bucket_in_memory_cannot_move_to_file_and_its_replicas_follow_the_stream() {
        let wanted = kv::Config {
            bucket: "B".into(),
            history: 1,
            storage: StorageType::File,
            num_replicas: 3,
            ..Default::default()
        };
        let actual = stream::Config {
            name: "KV_B".into(),
            storage: StorageType::Memory,
            num_replicas: 1,
            max_messages_per_subject: 1,
            ..Default::default()
        };
        let drift = bucket_drift(&actual, &wanted, 0);
        assert_eq!(
            drift
                .iter()
                .map(|d| (d.field, d.fix.clone()))
                .collect::<Vec<_>>(),
            [("storage", Fix::NotInPlace), ("replicas", Fix::InPlace)]
        );
        let update = bucket_update(&actual, &wanted);
        assert_eq!(update.num_replicas, 3);
        assert_eq!(
            update.storage,
            StorageType::Memory,
            "storage is never sent as changed"
        );
    }

    #[test]
    fn a_bucket_that_takes_rollups_is_drift_fixed_in_place() {
        let wanted = kv::Config {
            bucket: "B".into(),
            history: 1,
            ..Default::default()
        };
        // As a NATS client creates a KV bucket: rollups on.
        let actual = stream::Config {
            name: "KV_B".into(),
            max_messages_per_subject: 1,
            allow_rollup: true,
            ..Default::default()
        };
        let drift = bucket_drift(&actual, &wanted, 0);
        let fields: Vec<_> = drift.iter().map(|d| (d.field, d.fix.clone())).collect();
        assert_eq!(fields, [("allow_rollup", Fix::InPlace)]);
        assert!(!bucket_update(&actual, &wanted).allow_rollup);
    }
}
