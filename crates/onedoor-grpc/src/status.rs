//! The one table from domain errors to gRPC status codes. Every server of the bus answers the
//! same failure with the same code: the adapter's and the tracker's error types ask here. The
//! matches name every variant, so a new error cannot slip into a default. `docs/errors.md`
//! lists the table with its reasons for integrators.

use onedoor_bus::nats_error::classify;
use onedoor_bus::{BusError, NatsErrorKind};
use onedoor_case::RefusalClass;
use tonic::Code;

use crate::auth::AuthError;

/// A case rule refused the command: the refusal's class says which code.
pub fn refusal_code(class: RefusalClass) -> Code {
    match class {
        RefusalClass::InvalidArgument => Code::InvalidArgument,
        RefusalClass::NotFound => Code::NotFound,
        RefusalClass::AlreadyExists => Code::AlreadyExists,
        RefusalClass::PermissionDenied => Code::PermissionDenied,
        RefusalClass::FailedPrecondition => Code::FailedPrecondition,
    }
}

/// How a NATS failure reaches a caller.
pub fn nats_code(kind: NatsErrorKind) -> Code {
    match kind {
        // Another write reached the case first: the caller retries with the same
        // idempotency key, and the write is re-decided against the new state.
        NatsErrorKind::WrongLastSequence | NatsErrorKind::ClusterWriteConflict => Code::Aborted,
        // The cluster is electing, catching up or unreachable: retry later; a write that
        // landed is not written twice.
        NatsErrorKind::SequenceNotReady
        | NatsErrorKind::ReplicaBehind
        | NatsErrorKind::NoResponders
        | NatsErrorKind::TimedOut
        | NatsErrorKind::Connection => Code::Unavailable,
        // The stream or consumer is missing, or NATS refuses this server a subject: the
        // deployment is wrong (provisioning, credentials). Not FAILED_PRECONDITION, which
        // tells a caller to re-read the case and decide again: it would loop on a fault only
        // an operator can fix.
        NatsErrorKind::StreamNotFound
        | NatsErrorKind::ConsumerNotFound
        | NatsErrorKind::PermissionViolation => Code::Internal,
        NatsErrorKind::Other => Code::Unavailable,
    }
}

/// How a bus failure reaches a caller.
pub fn bus_code(error: &BusError) -> Code {
    match error {
        BusError::Refused(refusal) => refusal_code(refusal.class()),
        BusError::Conflict { .. } | BusError::TooManyConflicts { .. } => Code::Aborted,
        BusError::Nats { kind, .. } => nats_code(*kind),
        BusError::InvalidSubjectToken { .. } => Code::InvalidArgument,
        // Not ABORTED: a retry with the same key would meet the same stored event for ever.
        BusError::IdTaken { .. } => Code::AlreadyExists,
        // Not PERMISSION_DENIED: the agency may read its own cases; to it, this one is not
        // there (yet: it becomes readable once the agency is sent a task on it).
        BusError::NotParty { .. } => Code::NotFound,
        BusError::NeedsLink { .. } => Code::Unavailable,
        // A history that does not fold or decode, or a configuration the bus refuses to
        // change, is the operator's or our fault, not the caller's.
        BusError::Corrupt { .. }
        | BusError::ReadRefused { .. }
        | BusError::Decode { .. }
        | BusError::Encode { .. }
        | BusError::InvalidSettings { .. }
        | BusError::InvalidInboxSettings { .. }
        | BusError::StreamConflict { .. }
        | BusError::InboxConflict { .. } => Code::Internal,
        // Looking the stream up or creating it: what the server said decides (missing,
        // unreachable, refused).
        BusError::GetStream { source, .. } => nats_code(classify(source).0),
        BusError::CreateStream { source, .. } => nats_code(classify(source).0),
    }
}

/// A credential the caller presented (or failed to).
pub fn auth_code(error: &AuthError) -> Code {
    match error {
        AuthError::Unauthenticated | AuthError::Revoked { .. } => Code::Unauthenticated,
        AuthError::UnknownCertificate { .. } | AuthError::Mismatch => Code::PermissionDenied,
    }
}

impl From<AuthError> for tonic::Status {
    fn from(error: AuthError) -> Self {
        tonic::Status::new(auth_code(&error), error.to_string())
    }
}

/// The advice a code's message carries, so a developer knows what to do next.
pub fn advice(code: Code) -> Option<&'static str> {
    match code {
        Code::Unavailable => Some(
            "the bus (NATS JetStream) is unreachable or did not confirm in time; retry with the \
             same idempotency_key: a write that landed is not written twice",
        ),
        Code::Aborted => Some("retry with the same idempotency_key"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nats(kind: NatsErrorKind) -> BusError {
        BusError::Nats {
            action: "test",
            kind,
            code: None,
            message: String::new(),
        }
    }

    #[test]
    fn write_conflicts_are_aborted_and_outages_unavailable() {
        assert_eq!(
            bus_code(&nats(NatsErrorKind::WrongLastSequence)),
            Code::Aborted
        );
        assert_eq!(
            bus_code(&nats(NatsErrorKind::ClusterWriteConflict)),
            Code::Aborted
        );
        assert_eq!(bus_code(&nats(NatsErrorKind::TimedOut)), Code::Unavailable);
        assert_eq!(
            bus_code(&nats(NatsErrorKind::ReplicaBehind)),
            Code::Unavailable
        );
        assert_eq!(
            bus_code(&nats(NatsErrorKind::StreamNotFound)),
            Code::Internal
        );
    }
}
