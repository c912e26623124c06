//! The one error type of the tracker, and the one place it becomes a gRPC status.

use onedoor_bus::NatsErrorKind;
use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// A caller sent something malformed: an id that is not a ULID, an unknown status, a page
    /// token that is not ours or belongs to other filters.
    #[error("{field}: {why}")]
    InvalidArgument { field: &'static str, why: String },

    /// The tracker has no view of this case (unknown, or opened a moment ago and not yet
    /// projected).
    #[error(
        "no case {case_id} is known to the tracker (a case opened a moment ago may not be projected yet)"
    )]
    CaseNotFound { case_id: String },

    /// The caller is known but may not make this call (an agency asking for what only
    /// supervisors see).
    #[error("{why}")]
    PermissionDenied { why: String },

    /// The database refused or could not be reached.
    #[error("database, {action}: {source}")]
    Database {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },

    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// A NATS or JetStream call failed; `kind` says how (see [`NatsErrorKind`]).
    #[error("nats, {action}: {message}")]
    Nats {
        action: &'static str,
        kind: NatsErrorKind,
        message: String,
    },

    /// Something the tracker itself stored cannot be read back (a bug, or a hand-edited
    /// database).
    #[error("stored {what} cannot be read: {why}")]
    Corrupt { what: String, why: String },

    /// A configuration value is unusable; `key` names it as the CLI and the TOML do.
    #[error("configuration {key}: {why}")]
    Config { key: &'static str, why: String },

    /// NATS refused the tracker's identity or TLS, or did not answer before the start-up
    /// deadline.
    #[error("connecting to NATS: {0}")]
    Connect(#[source] Box<onedoor_natsauth::NatsAuthError>),

    /// A file beside the database could not be written, moved or removed (a SQLite rebuild's
    /// new file, the old one's log).
    #[error("{action} {}: {source}", path.display())]
    File {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The SQLite database's directory, the file or one of its logs cannot be written: found
    /// at start, rather than at the first event to store.
    #[error("{} {problem}: {fix}", path.display())]
    StoreNotWritable {
        path: std::path::PathBuf,
        problem: String,
        fix: &'static str,
    },

    /// Another process has the SQLite database open while a rebuild would replace it.
    #[error(
        "{} is open in process {pids:?}: stop the tracker (or `onedoor up`) before rebuilding; \
         it would go on with the old file and lose what it writes",
        path.display()
    )]
    DatabaseInUse {
        path: std::path::PathBuf,
        pids: Vec<u32>,
    },

    /// The gRPC server failed (e.g. the listener broke).
    #[error("serving gRPC: {0}")]
    Serve(String),
}

impl TrackerError {
    pub(crate) fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> TrackerError {
        move |source| TrackerError::Database { action, source }
    }

    /// A failed NATS call, known by its text (async-nats reports through many error types).
    pub(crate) fn nats(action: &'static str, error: impl std::fmt::Display) -> TrackerError {
        let message = error.to_string();
        TrackerError::Nats {
            action,
            kind: NatsErrorKind::from_text(&message),
            message,
        }
    }

    pub(crate) fn invalid(field: &'static str, why: impl ToString) -> TrackerError {
        TrackerError::InvalidArgument {
            field,
            why: why.to_string(),
        }
    }

    /// The one table from tracker errors to gRPC codes.
    pub fn code(&self) -> Code {
        match self {
            TrackerError::InvalidArgument { .. } => Code::InvalidArgument,
            TrackerError::CaseNotFound { .. } => Code::NotFound,
            TrackerError::PermissionDenied { .. } => Code::PermissionDenied,
            // The contract promises UNAVAILABLE ("retry later") when the database cannot be
            // reached; other database errors are our bugs.
            TrackerError::Database { source, .. } if is_unreachable(source) => Code::Unavailable,
            TrackerError::Nats { kind, .. } => onedoor_grpc::status::nats_code(*kind),
            TrackerError::Connect(_) => Code::Unavailable,
            TrackerError::Database { .. }
            | TrackerError::Migrate(_)
            | TrackerError::Corrupt { .. }
            | TrackerError::Config { .. }
            | TrackerError::File { .. }
            | TrackerError::StoreNotWritable { .. }
            | TrackerError::DatabaseInUse { .. }
            | TrackerError::Serve(_) => Code::Internal,
        }
    }
}

fn is_unreachable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

impl From<TrackerError> for tonic::Status {
    fn from(error: TrackerError) -> Self {
        let code = error.code();
        // Caller mistakes are the caller's to read; our own failures are logged once, here, with
        // their cause chain, and the caller gets the message without internals beyond it.
        if matches!(code, Code::Internal | Code::Unavailable) {
            tracing::error!(error = %error, source = ?std::error::Error::source(&error), "request failed");
        }
        tonic::Status::new(code, error.to_string())
    }
}
