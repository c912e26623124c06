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

    #[error("a cluster needs at least one node")]
    EmptyCluster,

    /// The deadline passed; `last_check` says what was still missing.
    #[error("cluster not healthy after {waited:?}: {last_check}")]
    ClusterNotHealthy {
        waited: Duration,
        last_check: String,
    },
}
