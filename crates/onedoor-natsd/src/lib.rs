//! Local nats-server processes for onedoor: used by `onedoor up` and by the test kit.
//!
//! # Layout
//!
//! - [`mod@locate`]: find the nats-server binary (explicit setting, pinned install, `PATH`) and
//!   refuse one older than [`MINIMUM_VERSION`] with an install hint.
//! - [`server`]: [`NatsServer`], one process launched from a [`ServerSpec`]; waits for
//!   readiness with a deadline, kills, stops gracefully, restarts on the same ports and store.
//! - [`monitor`]: a tiny HTTP GET for the monitoring endpoint (`/healthz`, `/jsz`).
//! - `logscan` (private): ports and readiness read back from the server's log.
//! - [`error`]: [`NatsdError`], the crate's one error type.

pub mod error;
pub mod locate;
mod logscan;
pub mod monitor;
pub mod server;

pub use error::{INSTALL_HINT, NatsdError};
pub use locate::{
    Candidate, MINIMUM_VERSION, NatsBinary, Origin, PINNED_VERSION, SearchEnv, Version, locate,
    locate_from,
};
pub use monitor::MonitorResponse;
pub use server::{ClusterSpec, NatsServer, Port, Ports, ServerSpec};
