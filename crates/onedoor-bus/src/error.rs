//! The one error type of the bus crate.

use async_nats::jetstream::context::{CreateStreamError, GetStreamError};

use crate::nats_error::{NatsErrorKind, classify};
use crate::subjects::TokenProblem;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A [`crate::StreamSettings`] value breaks the contract (e.g. a duplicate window under 24 h).
    #[error("invalid stream settings: {field} {reason}")]
    InvalidSettings { field: &'static str, reason: String },

    /// The stream exists with a configuration onedoor did not ask for. Nothing was changed:
    /// an operator decides (each difference reads `field: existing X, wanted Y`).
    #[error(
        "stream {stream} exists with a conflicting configuration ({}); it was left unchanged",
        differences.join("; ")
    )]
    StreamConflict {
        stream: String,
        differences: Vec<String>,
    },

    #[error("looking up stream {stream}: {source}")]
    GetStream {
        stream: String,
        #[source]
        source: GetStreamError,
    },

    #[error("creating stream {stream}: {source}")]
    CreateStream {
        stream: String,
        #[source]
        source: CreateStreamError,
    },

    #[error("{field} {value:?} cannot be a subject token: it {problem}")]
    InvalidSubjectToken {
        field: &'static str,
        value: String,
        problem: TokenProblem,
    },

    /// A NATS or JetStream call failed; `kind` says how, for callers that act on it (a
    /// conflict is retried, an outage is reported as one), `code` is JetStream's, if any.
    #[error("{action}: {message}")]
    Nats {
        action: &'static str,
        kind: NatsErrorKind,
        code: Option<u64>,
        message: String,
    },

    /// An event could not be made into a message (a bug upstream: events are validated first).
    #[error("cannot encode event: {why}")]
    Encode { why: String },

    /// The case exists but the asking agency is not a party to it (it neither opened it nor
    /// was sent a task on it), so the case reader will not show it.
    #[error(
        "case {case_id} is not open to {agency}: an agency reads a case only once it opened it or was sent a task on it"
    )]
    NotParty { case_id: String, agency: String },

    /// The case reader answered something this client cannot use (a version mismatch or a
    /// bug), not an outage.
    #[error("{why}")]
    ReadRefused { why: String },

    /// A stored message is not a valid onedoor event.
    #[error("stream message {sequence} is not a valid case event: {why}")]
    Decode { sequence: u64, why: String },

    /// Another write reached the case first (the append's expected last sequence is stale).
    #[error("case {case_id} changed since it was read (expected last sequence {expected_last})")]
    Conflict { case_id: String, expected_last: u64 },

    /// A district office whose link to the capital is down cannot take this step safely on
    /// what it last knew of the case (`docs/district-offices.md`); retry when the link is back.
    #[error("case {case_id} needs the link to the capital: {why}")]
    NeedsLink { case_id: String, why: String },

    /// The case kept changing under us; the caller may retry later.
    #[error("case {case_id} changed during each of {attempts} attempts; try again")]
    TooManyConflicts { case_id: String, attempts: u32 },

    /// The case rules refused the command; nothing was written.
    #[error(transparent)]
    Refused(#[from] onedoor_case::Refusal),

    /// The event id a write would use is already stored, but not as this writer's event for
    /// this request (another writer took the id, or the key was used for something else).
    /// Nothing was written and no receipt is due.
    #[error(
        "idempotency_key {key:?} maps to event {event_id}, already stored at stream sequence {sequence} as something this request did not write ({why}); use a new idempotency_key"
    )]
    IdTaken {
        key: String,
        event_id: String,
        sequence: u64,
        why: String,
    },

    /// A case's stored history does not fold: written by something else, or tampered with.
    #[error("case {case_id}'s history is inconsistent: {why}")]
    Corrupt { case_id: String, why: String },

    /// An [`crate::InboxSettings`] value is out of range (or one the server would refuse).
    #[error("invalid inbox settings: {field} {reason}")]
    InvalidInboxSettings { field: &'static str, reason: String },

    /// An agency's inbox consumer exists with a configuration that cannot be changed in place
    /// (filter, delivery or ack policy, push instead of pull). Nothing was changed: an operator
    /// decides (each difference reads `field: existing X, wanted Y`).
    #[error(
        "consumer {consumer} exists with a conflicting configuration ({}); it was left unchanged",
        differences.join("; ")
    )]
    InboxConflict {
        consumer: String,
        differences: Vec<String>,
    },
}

impl BusError {
    /// A failed NATS call, classified by [`classify`].
    pub fn nats(action: &'static str, error: &(dyn std::error::Error + 'static)) -> BusError {
        let (kind, code) = classify(error);
        BusError::Nats {
            action,
            kind,
            code,
            message: error.to_string(),
        }
    }

    /// [`BusError::nats`] about one thing (a consumer, a key) named in the message.
    pub fn nats_on(
        action: &'static str,
        about: &dyn std::fmt::Display,
        error: &(dyn std::error::Error + 'static),
    ) -> BusError {
        let (kind, code) = classify(error);
        BusError::Nats {
            action,
            kind,
            code,
            message: format!("{about}: {error}"),
        }
    }

    /// The kind of a NATS failure; `None` for every other error.
    pub fn nats_kind(&self) -> Option<NatsErrorKind> {
        match self {
            BusError::Nats { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}
