//! The adapter's one error type, and where it becomes a gRPC status (by the table in
//! `onedoor_grpc::status`, shared with the tracker).

use onedoor_bus::BusError;
use onedoor_case::Refusal;
use onedoor_grpc::status;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The request's shape is wrong before any rule is consulted (a malformed id, a missing key).
    #[error("{field}: {why}")]
    InvalidArgument { field: &'static str, why: String },

    /// Names the agency served, never whether the token is valid at another adapter.
    #[error(
        "this adapter serves {agency}; the token is missing or not one of {agency}'s: send metadata `authorization: Bearer <{agency}'s token>` or {agency}'s TLS client certificate"
    )]
    Unauthenticated { agency: String },

    #[error("token {label:?} has been revoked; ask the operator for a new one")]
    RevokedToken { label: String },

    #[error(
        "this TLS client certificate (sha256 {fingerprint}) is not one of {agency}'s: an agency acts only through its own adapter"
    )]
    ForeignCertificate { agency: String, fingerprint: String },

    /// The case rules refused the command; nothing was written.
    #[error(transparent)]
    Refused(#[from] Refusal),

    /// The same idempotency key was used for a different request on this case.
    #[error(
        "idempotency_key {key:?} was already used on case {case_id} for a different request ({existing})"
    )]
    KeyReused {
        key: String,
        case_id: String,
        existing: String,
    },

    #[error("your agency {agency} has no part in case {case_id}")]
    NotParty { agency: String, case_id: String },

    #[error("case {case_id} does not exist")]
    CaseNotFound { case_id: String },

    #[error("{agency} has no stuck inbox item at stream sequence {sequence}; ListStuck lists them")]
    NoStuckItem { agency: String, sequence: u64 },

    #[error("the stuck item at stream sequence {sequence} cannot be delivered again: {why}")]
    NotRedeliverable { sequence: u64, why: String },

    #[error(transparent)]
    Bus(#[from] BusError),

    #[error("adapter configuration: {0}")]
    Config(String),

    /// NATS refused the agency's identity or TLS, or did not answer before the start-up
    /// deadline.
    #[error("connecting to NATS: {0}")]
    Connect(#[source] Box<onedoor_natsauth::NatsAuthError>),

    #[error("serving gRPC: {0}")]
    Serve(String),
}

impl AdapterError {
    /// The status code of each error, from the one table in [`onedoor_grpc::status`].
    pub fn code(&self) -> Code {
        match self {
            AdapterError::InvalidArgument { .. } => Code::InvalidArgument,
            AdapterError::Unauthenticated { .. } | AdapterError::RevokedToken { .. } => {
                Code::Unauthenticated
            }
            AdapterError::ForeignCertificate { .. } | AdapterError::NotParty { .. } => {
                Code::PermissionDenied
            }
            AdapterError::Refused(refusal) => status::refusal_code(refusal.class()),
            AdapterError::KeyReused { .. } => Code::AlreadyExists,
            AdapterError::CaseNotFound { .. } | AdapterError::NoStuckItem { .. } => Code::NotFound,
            AdapterError::NotRedeliverable { .. } => Code::FailedPrecondition,
            AdapterError::Bus(bus) => status::bus_code(bus),
            AdapterError::Config(_) | AdapterError::Serve(_) => Code::Internal,
            // Only at start, before any call is served.
            AdapterError::Connect(_) => Code::Unavailable,
        }
    }
}

impl From<AdapterError> for Status {
    fn from(err: AdapterError) -> Self {
        // Bus refusals come back wrapped; unwrap them so the message names the rule broken.
        let err = match err {
            AdapterError::Bus(BusError::Refused(refusal)) => AdapterError::Refused(refusal),
            other => other,
        };
        let code = err.code();
        if matches!(code, Code::Internal | Code::Unavailable) {
            tracing::warn!(error = %err, ?code, "request failed");
        }
        // Say what to do, not only what failed: a write may or may not have landed.
        let message = match status::advice(code) {
            Some(advice) => format!("{err}; {advice}"),
            None => err.to_string(),
        };
        Status::new(code, message)
    }
}
