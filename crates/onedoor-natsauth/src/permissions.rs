//! The subject permissions of every identity: exactly the NATS and JetStream API subjects the
//! code that identity runs actually uses, and nothing else.
//!
//! Where each subject comes from (async-nats 0.51 and onedoor-bus, read, then checked against
//! nats-server 2.15.1 by `tests/permissions.rs`):
//!
//! | subject | used by |
//! | --- | --- |
//! | `onedoor.v1.case.*.<SELF>.*` | `CaseLog::append`: the agency's own events |
//! | operator: `onedoor.v1.case.*.<OLD>.<SUCCESSOR>` | `registry apply --execute`: the `task_transferred` events of agencies the registry ends ([`Permissions::for_identity_in`]) |
//! | `onedoor.v1.read.<SELF>` | every read of a case, through the case reader (`onedoor_bus::read`) |
//! | `$JS.API.CONSUMER.INFO.ONEDOOR.inbox-<SELF>` | `ensure_inbox` checks the consumer the operator made; the liveness probe |
//! | `$JS.API.CONSUMER.MSG.NEXT.ONEDOOR.inbox-<SELF>` | pulling the inbox |
//! | `$JS.ACK.ONEDOOR.inbox-<SELF>.>` | ack, double ack, NAK with delay, term of inbox deliveries |
//! | `$JS.API.STREAM.INFO.KV_ONEDOOR_STUCK` | `get_key_value("ONEDOOR_STUCK")` |
//! | `$KV.ONEDOOR_STUCK.<SELF>.>` | KV `create` of the agency's own stuck records (`<AGENCY>.<seq>`) |
//! | `$JS.API.DIRECT.GET.KV_ONEDOOR_STUCK.$KV.ONEDOOR_STUCK.<SELF>.>` | KV `create` reads its own key back when the key is taken |
//! | subscribe `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ONEDOOR.inbox-<SELF>` | the stuck recorder |
//! | subscribe `_INBOX_<SELF>.>` | every reply: publish acks, API answers, pulled messages |
//! | tracker, auditor, reader: `$JS.API.STREAM.INFO.ONEDOOR`, `$JS.API.DIRECT.GET.ONEDOOR[.>]`, `$JS.API.STREAM.MSG.GET.ONEDOOR` | reading any case (`CaseLog::open`, `CaseLog::load`, the leader's answer on a replicated stream) |
//! | reader: subscribe `onedoor.v1.read.*` (queue group), `allow_responses` | answering agencies' reads |
//! | front offices (`for_identity_in`): `onedoor.v1.office.<SELF>.status` | the office adapter's heartbeat (`onedoor_bus::office_status`) |
//! | tracker: subscribe `onedoor.v1.office.*.status` | which district offices are connected |
//! | agencies, tracker, reader: `$JS.API.STREAM.INFO.KV_ONEDOOR_REGISTRY`, `$JS.API.CONSUMER.CREATE.KV_ONEDOOR_REGISTRY[.>]`, `$JS.FC.KV_ONEDOOR_REGISTRY.>` | following the operator's published registry (`onedoor_bus::registry_feed::follow`: an ordered consumer on the bucket's stream) |
//! | agencies, tracker, reader: `onedoor.v1.registry.ack.<SELF>` (`tracker`, `reader`) | answering a published registry |
//! | operator: `$KV.ONEDOOR_REGISTRY.>`, subscribe `onedoor.v1.registry.ack.>` | `registry apply --execute` publishes the registry and hears the answers |
//! | tracker: `$JS.API.CONSUMER.{CREATE,DELETE}.ONEDOOR.tracker[.>]` | making its durable consumer again when found deleted; `tracker rebuild` deletes and remakes it |
//! | tracker: `$JS.API.CONSUMER.{CREATE,DELETE,INFO,MSG.NEXT}.ONEDOOR.tracker-rebuild[.>]` | `tracker rebuild`'s replay consumer |
//!
//! Reads are confined: an agency's user reads no stream at all (no direct get, no
//! `STREAM.MSG.GET`, no stream info, which would name every case's subject, no consumer but its
//! inbox). It asks the case reader on `onedoor.v1.read.<SELF>`, which only it may publish on,
//! and the reader answers only about cases the agency is a party to. NATS subject permissions
//! are static, so "the cases this agency touched" cannot be a permission: the reader holds
//! the broad right and checks the verified history instead. Allow lists only: deny lists on
//! direct-get subjects can be bypassed with wildcards in the requested subject.
//!
//! Only the reader gets `allow_responses`: it is the one service that answers requests. Every
//! reply another identity sends (acks, flow control) is to a subject listed here, so granting
//! "answer whatever you received" would only widen what a stolen credential can do.

use onedoor_bus::office_status::{OFFICE_STATUS_SUBJECTS, office_status_subject};
use onedoor_bus::registry_feed::{ACK_SUBJECT_PREFIX, REGISTRY_BUCKET, ack_subject};
use onedoor_bus::subjects::{
    CASE_SUBJECT_PREFIX, STREAM_SUBJECTS, TRACKER_CONSUMER, TRACKER_REBUILD_CONSUMER,
};
use onedoor_bus::{STREAM_NAME, STUCK_BUCKET};
use onedoor_case::{AgencyCode, AgencyKind, Ending, Registry};

use crate::identity::Identity;

/// Publish and subscribe allow/deny lists of one NATS user. Empty lists are left out of the
/// configuration (an empty allow list would mean "nothing", which no identity wants).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    pub publish_allow: Vec<String>,
    pub publish_deny: Vec<String>,
    pub subscribe_allow: Vec<String>,
    pub subscribe_deny: Vec<String>,
    /// May publish a reply to the requests it received (the case reader).
    pub allow_responses: bool,
}

/// The JetStream API prefix (no JetStream domain is used).
const API: &str = "$JS.API";

impl Permissions {
    /// The permissions of `identity`; `None` for [`Identity::System`], which is unrestricted
    /// inside the system account (it holds no onedoor data).
    pub fn for_identity(identity: &Identity) -> Option<Permissions> {
        match identity {
            Identity::Agency(code) => Some(agency(code)),
            Identity::Operator => Some(operator()),
            Identity::Tracker => Some(tracker()),
            Identity::Auditor => Some(auditor()),
            Identity::Reader => Some(reader()),
            Identity::System => None,
        }
    }

    /// [`Permissions::for_identity`] on a bus running `registry`: a front office may also
    /// publish its heartbeat for the national tracker (`onedoor.v1.office.<SELF>.status`,
    /// `onedoor_bus::office_status`); the operator may also
    /// publish each `task_transferred` event the registry calls for, on the subject
    /// `onedoor.v1.case.*.<OLD>.<SUCCESSOR>` of every agency it ends with a successor, and on
    /// no other case subject. The blanket deny on case subjects is then left out for the
    /// operator (NATS lets a deny win over any allow); its allow list stays exact.
    pub fn for_identity_in(identity: &Identity, registry: &Registry) -> Option<Permissions> {
        let mut permissions = Self::for_identity(identity)?;
        if let Identity::Agency(code) = identity
            && registry
                .agency(code)
                .is_some_and(|a| a.kind == AgencyKind::FrontOffice)
        {
            permissions
                .publish_allow
                .push(office_status_subject(code.as_str()));
        }
        if *identity == Identity::Operator {
            let transfers = transfer_subjects(registry);
            if !transfers.is_empty() {
                permissions.publish_deny.retain(|s| s != STREAM_SUBJECTS);
                permissions.publish_allow.extend(transfers);
            }
        }
        Some(permissions)
    }
}

/// The case subjects of the transfers `registry` calls for: from each agency it merged or
/// renamed away to that agency's successor.
pub fn transfer_subjects(registry: &Registry) -> Vec<String> {
    registry
        .agencies
        .values()
        .filter(|agency| matches!(agency.ending, Some(Ending::Merged | Ending::Renamed)))
        .filter_map(|agency| {
            let successor = registry.successor_of(&agency.code)?;
            (*successor != agency.code)
                .then(|| format!("{CASE_SUBJECT_PREFIX}.*.{}.{successor}", agency.code))
        })
        .collect()
}

fn inbox_consumer(code: &AgencyCode) -> String {
    // Same spelling as `onedoor_bus::subjects::inbox_consumer`, which only fails for tokens an
    // `AgencyCode` cannot hold.
    format!("inbox-{code}")
}

/// Reading the stream: what `CaseLog::open` and `CaseLog::load` need. Never an agency's.
fn stream_reads() -> Vec<String> {
    vec![
        format!("{API}.STREAM.INFO.{STREAM_NAME}"),
        format!("{API}.DIRECT.GET.{STREAM_NAME}"),
        format!("{API}.DIRECT.GET.{STREAM_NAME}.>"),
        format!("{API}.STREAM.MSG.GET.{STREAM_NAME}"),
    ]
}

/// Following the registry bucket (read only: only the operator writes it) and answering as
/// `who`. The server takes the stream from a consumer-create subject and refuses a body naming
/// another (checked on 2.15.1 for the stuck bucket), so these rights stay on this bucket.
fn registry_follow(who: &str) -> Vec<String> {
    let kv_stream = format!("KV_{REGISTRY_BUCKET}");
    vec![
        format!("{API}.STREAM.INFO.{kv_stream}"),
        format!("{API}.CONSUMER.CREATE.{kv_stream}"),
        format!("{API}.CONSUMER.CREATE.{kv_stream}.>"),
        format!("$JS.FC.{kv_stream}.>"),
        ack_subject(who),
    ]
}

/// Only agencies publish events; every other identity is denied the case subjects outright, so
/// a later widening of its allow list cannot let it write history by accident.
fn no_events() -> Vec<String> {
    vec![STREAM_SUBJECTS.to_owned()]
}

fn agency(code: &AgencyCode) -> Permissions {
    let consumer = inbox_consumer(code);
    let kv_stream = format!("KV_{STUCK_BUCKET}");
    let mut publish_allow = vec![
        format!("{CASE_SUBJECT_PREFIX}.*.{code}.*"),
        onedoor_bus::read::read_subject(code.as_str()),
    ];
    publish_allow.extend([
        format!("{API}.CONSUMER.INFO.{STREAM_NAME}.{consumer}"),
        format!("{API}.CONSUMER.MSG.NEXT.{STREAM_NAME}.{consumer}"),
        format!("$JS.ACK.{STREAM_NAME}.{consumer}.>"),
        format!("{API}.STREAM.INFO.{kv_stream}"),
        format!("$KV.{STUCK_BUCKET}.{code}.>"),
        format!("{API}.DIRECT.GET.{kv_stream}.$KV.{STUCK_BUCKET}.{code}.>"),
    ]);
    publish_allow.extend(registry_follow(code.as_str()));
    Permissions {
        publish_allow,
        publish_deny: Vec::new(),
        subscribe_allow: vec![
            format!("{}.>", Identity::Agency(code.clone()).inbox_prefix()),
            format!(
                "{}.{STREAM_NAME}.{consumer}",
                onedoor_bus::stuck::MAX_DELIVERIES_ADVISORY_PREFIX
            ),
        ],
        subscribe_deny: Vec::new(),
        allow_responses: false,
    }
}

fn operator() -> Permissions {
    Permissions {
        publish_allow: vec![
            // Streams, consumers, KV buckets: everything the JetStream API offers, minus the
            // denials below.
            format!("{API}.>"),
            // Staff tooling may write or clear stuck records for any agency.
            format!("$KV.{STUCK_BUCKET}.>"),
            // The published registry: the operator alone writes it.
            format!("$KV.{REGISTRY_BUCKET}.>"),
            // Flow-control replies of ordered consumers (listing KV keys).
            "$JS.FC.>".to_owned(),
        ],
        publish_deny: [
            no_events(),
            vec![
                // The stream is the legal record: nobody erases it through the API, the
                // operator included. Updating it stays allowed, because `onedoor provision`
                // changes its replicas (R1 to R3 when a cluster grows): the server itself
                // refuses an update that lifts `deny_delete` or `deny_purge` (checked by
                // `tests/permissions.rs`), and provision only ever removes limits. What an
                // update could still do, set a limit that expires history, is the residual
                // risk of a stolen operator seed; keep it off the hosts that run
                // adapters (docs/configuration.md, "Provision").
                format!("{API}.STREAM.DELETE.{STREAM_NAME}"),
                format!("{API}.STREAM.PURGE.{STREAM_NAME}"),
                format!("{API}.STREAM.MSG.DELETE.{STREAM_NAME}"),
                // Pulling from an agency's inbox (or the tracker's consumer) would use up
                // deliveries meant for them; the operator creates consumers, never reads them.
                format!("{API}.CONSUMER.MSG.NEXT.{STREAM_NAME}.>"),
            ],
        ]
        .concat(),
        subscribe_allow: vec![
            format!("{}.>", Identity::Operator.inbox_prefix()),
            // Advisories (max deliveries, consumer and stream actions) for operator tools.
            "$JS.EVENT.>".to_owned(),
            // What each process answered to a published registry.
            format!("{ACK_SUBJECT_PREFIX}.>"),
        ],
        subscribe_deny: Vec::new(),
        allow_responses: false,
    }
}

fn tracker() -> Permissions {
    let kv_stream = format!("KV_{STUCK_BUCKET}");
    let mut publish_allow = stream_reads();
    publish_allow.extend([
        format!("{API}.CONSUMER.INFO.{STREAM_NAME}.{TRACKER_CONSUMER}"),
        format!("{API}.CONSUMER.MSG.NEXT.{STREAM_NAME}.{TRACKER_CONSUMER}"),
        format!("$JS.ACK.{STREAM_NAME}.{TRACKER_CONSUMER}.>"),
    ]);
    // Its own consumers, by name only: the durable one (made again when found deleted, and by
    // `tracker rebuild`, which deletes it first) and the rebuild's replay. The subject names
    // the consumer and the server refuses a body naming another, so these cannot touch an
    // agency's inbox (the bare, unnamed create could).
    for consumer in [TRACKER_CONSUMER, TRACKER_REBUILD_CONSUMER] {
        publish_allow.extend([
            format!("{API}.CONSUMER.CREATE.{STREAM_NAME}.{consumer}"),
            format!("{API}.CONSUMER.CREATE.{STREAM_NAME}.{consumer}.>"),
            format!("{API}.CONSUMER.DELETE.{STREAM_NAME}.{consumer}"),
        ]);
    }
    publish_allow.extend([
        format!("{API}.CONSUMER.INFO.{STREAM_NAME}.{TRACKER_REBUILD_CONSUMER}"),
        format!("{API}.CONSUMER.MSG.NEXT.{STREAM_NAME}.{TRACKER_REBUILD_CONSUMER}"),
        // The stuck bucket, read-only: bucket info, values by direct get, and the key listing,
        // which async-nats does with an ordered (ephemeral, flow-controlled) consumer on the
        // bucket's stream: created without a name, so on the bare `CONSUMER.CREATE.<stream>`
        // (`.>` is kept for clients that name theirs). The server takes the stream from the
        // subject and refuses a body naming another one (checked on 2.15.1), so this right
        // stays on the bucket's stream, where onedoor keeps no consumer of its own.
        format!("{API}.STREAM.INFO.{kv_stream}"),
        format!("{API}.DIRECT.GET.{kv_stream}"),
        format!("{API}.DIRECT.GET.{kv_stream}.>"),
        format!("{API}.CONSUMER.CREATE.{kv_stream}"),
        format!("{API}.CONSUMER.CREATE.{kv_stream}.>"),
        format!("$JS.FC.{kv_stream}.>"),
    ]);
    publish_allow.extend(registry_follow("tracker"));
    Permissions {
        publish_allow,
        publish_deny: no_events(),
        subscribe_allow: vec![
            format!("{}.>", Identity::Tracker.inbox_prefix()),
            OFFICE_STATUS_SUBJECTS.to_owned(),
        ],
        subscribe_deny: Vec::new(),
        allow_responses: false,
    }
}

fn auditor() -> Permissions {
    Permissions {
        // Direct get only, no consumer of its own. Creating one, even an ordered/ephemeral
        // one, needs `$JS.API.CONSUMER.CREATE.ONEDOOR[.<name>…]`, and no subject pattern keeps
        // that from reaching the agencies' consumers: names cannot be matched by prefix, and
        // the bare ephemeral subject accepts a body naming an existing consumer with action
        // "update" (checked on nats-server 2.15.1: it rewrote `inbox-MOF`'s filter to
        // `onedoor.v1.case.>`). Reading the stream with "next message from sequence N"
        // direct gets costs one request per event, which is fine for audits and exports.
        publish_allow: stream_reads(),
        publish_deny: no_events(),
        subscribe_allow: vec![format!("{}.>", Identity::Auditor.inbox_prefix())],
        subscribe_deny: Vec::new(),
        allow_responses: false,
    }
}

fn reader() -> Permissions {
    Permissions {
        publish_allow: [stream_reads(), registry_follow("reader")].concat(),
        publish_deny: no_events(),
        subscribe_allow: vec![
            format!("{}.>", Identity::Reader.inbox_prefix()),
            format!("{}.*", onedoor_bus::read::READ_SUBJECT_PREFIX),
        ],
        subscribe_deny: Vec::new(),
        allow_responses: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped_registry() -> Registry {
        Registry::load(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../deploy/registry/lao-2025.toml"),
        )
        .expect("shipped registry")
    }

    fn mof() -> Identity {
        Identity::Agency(AgencyCode::parse("MOF").expect("code"))
    }

    #[test]
    fn an_agency_may_publish_only_its_own_events_and_use_only_its_own_inbox() {
        let permissions = Permissions::for_identity(&mof()).expect("restricted");
        assert_eq!(
            permissions.publish_allow,
            [
                "onedoor.v1.case.*.MOF.*",
                "onedoor.v1.read.MOF",
                "$JS.API.CONSUMER.INFO.ONEDOOR.inbox-MOF",
                "$JS.API.CONSUMER.MSG.NEXT.ONEDOOR.inbox-MOF",
                "$JS.ACK.ONEDOOR.inbox-MOF.>",
                "$JS.API.STREAM.INFO.KV_ONEDOOR_STUCK",
                "$KV.ONEDOOR_STUCK.MOF.>",
                "$JS.API.DIRECT.GET.KV_ONEDOOR_STUCK.$KV.ONEDOOR_STUCK.MOF.>",
                "$JS.API.STREAM.INFO.KV_ONEDOOR_REGISTRY",
                "$JS.API.CONSUMER.CREATE.KV_ONEDOOR_REGISTRY",
                "$JS.API.CONSUMER.CREATE.KV_ONEDOOR_REGISTRY.>",
                "$JS.FC.KV_ONEDOOR_REGISTRY.>",
                "onedoor.v1.registry.ack.MOF",
            ]
        );
        assert_eq!(
            permissions.subscribe_allow,
            [
                "_INBOX_MOF.>",
                "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ONEDOOR.inbox-MOF",
            ]
        );
        assert!(permissions.publish_deny.is_empty());
        assert!(!permissions.allow_responses);
    }

    #[test]
    fn the_inbox_consumer_name_matches_the_bus_spelling() {
        let code = AgencyCode::parse("ODSC-VTE-SAYSETTHA").expect("code");
        assert_eq!(
            inbox_consumer(&code),
            onedoor_bus::subjects::inbox_consumer(code.as_str()).expect("valid")
        );
        assert_eq!(
            format!(
                "{}.{STREAM_NAME}.{}",
                onedoor_bus::stuck::MAX_DELIVERIES_ADVISORY_PREFIX,
                inbox_consumer(&code)
            ),
            onedoor_bus::stuck::max_deliveries_advisory_subject(&code).expect("valid")
        );
    }

    #[test]
    fn only_agencies_may_publish_events() {
        for identity in [
            Identity::Operator,
            Identity::Tracker,
            Identity::Auditor,
            Identity::Reader,
        ] {
            let permissions = Permissions::for_identity(&identity).expect("restricted");
            assert!(
                permissions
                    .publish_deny
                    .contains(&"onedoor.v1.case.>".to_owned()),
                "{identity}"
            );
            assert!(
                !permissions
                    .publish_allow
                    .iter()
                    .any(|s| s.starts_with("onedoor.v1.case.")),
                "{identity}"
            );
        }
        assert_eq!(Permissions::for_identity(&Identity::System), None);
    }

    #[test]
    fn the_operator_may_publish_exactly_the_transfers_a_registry_calls_for() {
        let registry = shipped_registry();
        let permissions =
            Permissions::for_identity_in(&Identity::Operator, &registry).expect("restricted");
        let cases: Vec<&String> = permissions
            .publish_allow
            .iter()
            .filter(|s| s.starts_with("onedoor."))
            .collect();
        assert!(
            cases.contains(&&"onedoor.v1.case.*.MPI.MOF".to_owned()),
            "{cases:?}"
        );
        assert!(
            cases.contains(&&"onedoor.v1.case.*.MICT.MCT".to_owned()),
            "{cases:?}"
        );
        assert_eq!(
            cases,
            transfer_subjects(&registry).iter().collect::<Vec<_>>()
        );
        assert!(
            !permissions
                .publish_deny
                .contains(&STREAM_SUBJECTS.to_owned())
        );
        // Any other identity is unchanged by the registry.
        assert_eq!(
            Permissions::for_identity_in(&Identity::Tracker, &registry),
            Permissions::for_identity(&Identity::Tracker)
        );
    }

    #[test]
    fn only_a_front_office_may_publish_its_status_and_only_the_tracker_reads_it() {
        let registry = shipped_registry();
        let office = Identity::Agency(AgencyCode::parse("ODSC-VTE-SAYSETTHA").expect("code"));
        let statuses = |identity: &Identity| -> Vec<String> {
            Permissions::for_identity_in(identity, &registry)
                .expect("restricted")
                .publish_allow
                .into_iter()
                .filter(|s| s.starts_with("onedoor.v1.office."))
                .collect()
        };
        assert_eq!(
            statuses(&office),
            ["onedoor.v1.office.ODSC-VTE-SAYSETTHA.status"]
        );
        assert!(statuses(&mof()).is_empty());
        let tracker = Permissions::for_identity(&Identity::Tracker).expect("restricted");
        assert!(
            tracker
                .subscribe_allow
                .contains(&"onedoor.v1.office.*.status".to_owned())
        );
    }

    #[test]
    fn the_auditor_only_reads_the_stream() {
        let permissions = Permissions::for_identity(&Identity::Auditor).expect("restricted");
        assert_eq!(
            permissions.publish_allow,
            [
                "$JS.API.STREAM.INFO.ONEDOOR",
                "$JS.API.DIRECT.GET.ONEDOOR",
                "$JS.API.DIRECT.GET.ONEDOOR.>",
                "$JS.API.STREAM.MSG.GET.ONEDOOR",
            ]
        );
        assert_eq!(permissions.subscribe_allow, ["_INBOX_auditor.>"]);
    }
}
