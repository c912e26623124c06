//! NATS JetStream plumbing for onedoor.
//!
//! # Layout
//!
//! - [`subjects`]: the contract names (stream `ONEDOOR`, `onedoor.v1.case.<case>.<from>.<to>`,
//!   inbox filters and consumer names), defined once.
//! - [`stream`]: [`StreamSettings`] and [`ensure_stream`], which creates the stream or reports
//!   how an existing one differs, never overwriting it.
//! - [`drift`]: desired against actual JetStream objects ([`drift::Drift`], field by field,
//!   each with how it can be fixed), for `onedoor provision` and its `--check`.
//! - [`case_log`]: [`CaseLog`]: load one case's events in order (direct get on the per-subject
//!   index) and append with per-case optimistic concurrency, re-deciding on a lost race.
//! - `replica_read` (private): reads that include what this process wrote or was delivered,
//!   asking the stream leader when a replica answers from behind.
//! - [`read`]: read confinement: [`read::CaseReader`] answers an agency only about cases it is
//!   a party to; a confined [`CaseLog`] reads through it.
//! - [`audit`]: Ed25519 signatures and the per-case hash chain; `verify_case`.
//! - [`cloudevents`]: CloudEvents binary-mode `ce-*` headers, percent-encoded as the NATS
//!   binding says.
//! - [`snapshot`]: compact per-case snapshots (folded state, last sequence and hash, trace tip,
//!   event ids) that let a write decide and append without reading the case first.
//! - [`write`]: the write path: fold, decide with the case rules, build the hash-linked wire
//!   event; [`CaseLog::execute`] appends it.
//! - [`trace`]: W3C Trace Context (`traceparent`) parsing, formatting and new spans.
//! - [`inbox`]: an agency's inbox: [`ensure_inbox`] (the durable consumer `inbox-<AGENCY>`),
//!   [`Inbox`] sessions with a bounded in-flight window, and [`InFlight`], acks by event id.
//! - [`stuck`]: deliveries given up on, recorded in the `ONEDOOR_STUCK` KV bucket
//!   ([`StuckRecorder`] listens to the max-deliveries advisory; [`list_stuck`] reads them).
//! - [`outbox`]: store and forward for a district office on a weak link: the leaf's
//!   [`outbox::Outbox`] and the [`outbox::Forwarder`] that delivers it to the national stream.
//! - [`registry_feed`]: the operator's signed registry in the `ONEDOOR_REGISTRY` bucket, and
//!   [`registry_feed::follow`], which moves a running process's registry to it.
//! - [`own_stuck`]: one agency's own stuck records, listed and cleared within its NATS rights.
//! - [`nats_error`]: [`NatsErrorKind`], NATS and JetStream failures by what a caller does
//!   next (a conflict is retried, an outage reported), classified from async-nats errors.
//! - [`error`]: [`BusError`], the crate's one error type.

pub mod audit;
pub mod case_log;
mod case_turns;
pub mod cloudevents;
pub mod drift;
pub mod error;
pub mod inbox;
pub mod nats_error;
pub mod office_status;
pub mod outbox;
pub mod own_stuck;
pub mod read;
pub mod registry_feed;
mod replica_read;
pub mod snapshot;
pub mod stream;
pub mod stuck;
pub mod subjects;
pub mod trace;
pub mod transfer;
pub mod verify;
pub mod write;

pub use audit::{AuditFailure, AuditProblem, Signer, verify_case};
pub use case_log::{Appended, CaseLog, Prepared, StoredEvent};
pub use error::BusError;
pub use inbox::{
    AckOutcome, InFlight, Inbox, InboxDelivery, InboxSettings, InboxStats, ensure_inbox,
};
pub use nats_error::NatsErrorKind;
pub use snapshot::CaseTip;
pub use stream::{EnsureOutcome, StreamSettings, ensure_stream};
pub use stuck::{STUCK_BUCKET, StuckRecord, StuckRecorder, list_stuck};
pub use subjects::STREAM_NAME;
pub use trace::TraceContext;
pub use verify::{
    QuarantineReason, Quarantined, RawMessage, Verified, subject_case_id, verify_history,
};
pub use write::{WriteRequest, Written, prepare};
