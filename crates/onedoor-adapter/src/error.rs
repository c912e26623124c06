//! The adapter's one error type, and the one place where errors become gRPC statuses.

use onedoor_bus::BusError;
use onedoor_case::{Refusal, RefusalClass};
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The request's shape is wrong before any rule is consulted (a malformed id, a missing key).
    #[error("{field}: {why}")]
    InvalidArgument { field: &'static str, why: String },

    #[error(
        "missing or invalid credential: send metadata `authorization: Bearer <your agency's token>` or your agency's TLS client certificate"
    )]
    Unauthenticated,

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

    #[error(transparent)]
    Bus(#[from] BusError),

    #[error("adapter configuration: {0}")]
    Config(String),

    #[error("serving gRPC: {0}")]
    Serve(String),
}

impl AdapterError {
    pub fn code(&self) -> Code {
        match self {
            AdapterError::InvalidArgument { .. } => Code::InvalidArgument,
            AdapterError::Unauthenticated | AdapterError::RevokedToken { .. } => {
                Code::Unauthenticated
            }
            AdapterError::ForeignCertificate { .. } => Code::PermissionDenied,
            AdapterError::Refused(refusal) => match refusal.class() {
                RefusalClass::InvalidArgument => Code::InvalidArgument,
                RefusalClass::NotFound => Code::NotFound,
                RefusalClass::AlreadyExists => Code::AlreadyExists,
                RefusalClass::PermissionDenied => Code::PermissionDenied,
                RefusalClass::FailedPrecondition => Code::FailedPrecondition,
            },
            AdapterError::KeyReused { .. } => Code::AlreadyExists,
            AdapterError::NotParty { .. } => Code::PermissionDenied,
            AdapterError::CaseNotFound { .. } => Code::NotFound,
            AdapterError::Bus(bus) => match bus {
                BusError::Refused(_) => Code::FailedPrecondition,
                BusError::TooManyConflicts { .. } | BusError::Conflict { .. } => Code::Aborted,
                // A history that does not fold or decode is our fault, not the caller's.
                BusError::Corrupt { .. } | BusError::Decode { .. } | BusError::Encode { .. } => {
                    Code::Internal
                }
                BusError::InvalidSubjectToken { .. } => Code::InvalidArgument,
                _ => Code::Unavailable,
            },
            AdapterError::Config(_) | AdapterError::Serve(_) => Code::Internal,
        }
    }
}

impl From<AdapterError> for Status {
    fn from(err: AdapterError) -> Self {
        // Bus refusals come back wrapped; unwrap them so the code follows the rule broken.
        let err = match err {
            AdapterError::Bus(BusError::Refused(refusal)) => AdapterError::Refused(refusal),
            other => other,
        };
        let code = err.code();
        if matches!(code, Code::Internal | Code::Unavailable) {
            tracing::warn!(error = %err, ?code, "request failed");
        }
        let message = match code {
            // Say what to do, not only what failed: a write may or may not have landed.
            Code::Unavailable => format!(
                "the bus (NATS JetStream) is unreachable or did not confirm in time ({err}); \
                 retry with the same idempotency_key: a write that landed is not written twice"
            ),
            Code::Aborted => format!("{err}; retry with the same idempotency_key"),
            _ => err.to_string(),
        };
        Status::new(code, message)
    }
}
