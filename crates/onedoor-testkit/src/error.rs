//! The one error type of the test kit.

use std::time::Duration;

use onedoor_natsd::NatsdError;

#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error(transparent)]
    Natsd(#[from] NatsdError),

    #[error("creating a temporary directory: {0}")]
    TempDir(#[source] std::io::Error),

    #[error("reserving local ports for cluster routes: {0}")]
    ReservePort(#[source] std::io::Error),

    #[error("connecting a nats client to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },

    #[error("no node {index} in a cluster of {size}")]
    NoSuchNode { index: usize, size: usize },

    /// Boxed: the credential errors are large and every testkit result would carry them.
    #[error(transparent)]
    NatsAuth(Box<onedoor_natsauth::NatsAuthError>),

    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("generating test certificates: {0}")]
    Pki(String),

    #[error("nats-server -t refuses {config}: {output}")]
    InvalidConfig {
        config: std::path::PathBuf,
        output: String,
    },

    /// Boxed like the credential errors: a bus error is large.
    #[error(transparent)]
    Bus(Box<onedoor_bus::BusError>),

    #[error("a cluster needs at least one node")]
    EmptyCluster,

    /// The deadline passed; `last_check` says what was still missing.
    #[error("cluster not healthy after {waited:?}: {last_check}")]
    ClusterNotHealthy {
        waited: Duration,
        last_check: String,
    },
}

impl From<onedoor_natsauth::NatsAuthError> for TestkitError {
    fn from(err: onedoor_natsauth::NatsAuthError) -> Self {
        Self::NatsAuth(Box::new(err))
    }
}

impl From<onedoor_bus::BusError> for TestkitError {
    fn from(err: onedoor_bus::BusError) -> Self {
        Self::Bus(Box::new(err))
    }
}
