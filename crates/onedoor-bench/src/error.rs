//! The one error type of the benchmarks.
//!
//! Messages say what the bench was doing; the cause is the `source`, not repeated in the
//! message, so the CLI's `error: {err:#}` reads `doing X: cause` once.

/// Any error from a client library, kept whole as the cause.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A flag is out of range; the message names the flag.
    #[error("{0}")]
    InvalidArgument(String),

    /// The bench cannot run as asked on what it found (a registry without enough agencies, a
    /// stream or inbox that is not empty, a listing database of another size).
    #[error("{0}")]
    Unfit(String),

    /// The run did not measure what it set out to (events lost, a phase stalled, counts that
    /// disagree): its figures would be wrong, so there are none.
    #[error("{0}")]
    Failed(String),

    #[error(transparent)]
    Registry(#[from] onedoor_case::RegistryError),

    /// The case rules refused a generated history (a bug in the generator).
    #[error(transparent)]
    Refused(#[from] onedoor_case::Refusal),

    #[error(transparent)]
    Fold(#[from] onedoor_case::FoldError),

    #[error(transparent)]
    Id(#[from] onedoor_case::IdError),

    #[error(transparent)]
    Bus(#[from] onedoor_bus::BusError),

    #[error(transparent)]
    Natsd(#[from] onedoor_natsd::NatsdError),

    #[error(transparent)]
    Adapter(#[from] onedoor_adapter::AdapterError),

    #[error(transparent)]
    Grpc(#[from] onedoor_grpc::GrpcError),

    #[error(transparent)]
    Tracker(#[from] onedoor_tracker::TrackerError),

    /// A NATS or JetStream call failed.
    #[error("{action}")]
    Nats {
        action: String,
        #[source]
        source: Cause,
    },

    /// A connection (gRPC, a database) could not be made.
    #[error("{action}")]
    Connect {
        action: String,
        #[source]
        source: Cause,
    },

    /// A gRPC call failed for good (after the retries the contract allows).
    #[error("{action}")]
    Call {
        action: String,
        #[source]
        source: tonic::Status,
    },

    #[error("{action}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },

    /// A task of the bench panicked or was cancelled.
    #[error("{task}")]
    Task {
        task: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },

    #[error("latency histogram")]
    Histogram(#[source] Cause),

    #[error("installing the metrics recorder")]
    Metrics(#[source] metrics_exporter_prometheus::BuildError),

    #[error("writing the report")]
    Report(#[source] serde_json::Error),
}

// The helpers convert `action` only when there is an error: some sit on measured paths (a
// publish, an ack, a `ListCases` call), where a string made per call would be measured too.
impl BenchError {
    /// A NATS error, for `map_err`.
    pub(crate) fn nats<E>(action: impl Into<String>) -> impl FnOnce(E) -> BenchError
    where
        E: Into<Cause>,
    {
        move |source| BenchError::Nats {
            action: action.into(),
            source: source.into(),
        }
    }

    /// A failed connection, for `map_err`.
    pub(crate) fn connect<E>(action: impl Into<String>) -> impl FnOnce(E) -> BenchError
    where
        E: Into<Cause>,
    {
        move |source| BenchError::Connect {
            action: action.into(),
            source: source.into(),
        }
    }

    /// A gRPC call that failed, for `map_err`.
    pub(crate) fn call(action: impl Into<String>) -> impl FnOnce(tonic::Status) -> BenchError {
        move |source| BenchError::Call {
            action: action.into(),
            source,
        }
    }

    /// A file or socket error, for `map_err`.
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        move |source| BenchError::Io {
            action: action.into(),
            source,
        }
    }

    /// A task that panicked, for `map_err`.
    pub(crate) fn task(task: &'static str) -> impl FnOnce(tokio::task::JoinError) -> BenchError {
        move |source| BenchError::Task { task, source }
    }
}

impl From<hdrhistogram::CreationError> for BenchError {
    fn from(error: hdrhistogram::CreationError) -> Self {
        BenchError::Histogram(error.into())
    }
}

impl From<hdrhistogram::AdditionError> for BenchError {
    fn from(error: hdrhistogram::AdditionError) -> Self {
        BenchError::Histogram(error.into())
    }
}
