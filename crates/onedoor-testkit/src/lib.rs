//! Test support for onedoor: real nats-server processes, never mocks.
//!
//! Every test gets its own server(s): own temporary store directory, ports the server chose
//! itself (read back from its log, so no probe-then-bind race), readiness polled with a
//! deadline (no fixed sleeps), and everything killed and removed on `Drop`.
//!
//! # Layout
//!
//! - [`single`]: [`TestNats`], one JetStream node (`start`, `client`, `jetstream`, `kill`,
//!   `restart`).
//! - [`cluster`]: [`TestCluster`], N JetStream nodes in one cluster; waits until the meta
//!   leader sees every peer; `kill(i)`, `restart(i)`.
//! - [`error`]: [`TestkitError`], the crate's one error type.
//! - [`binary`]: the nats-server binary, located once per test process.

pub mod binary;
pub mod cluster;
pub mod error;
pub mod single;

pub use cluster::TestCluster;
pub use error::TestkitError;
pub use single::TestNats;

/// Re-exported so tests can build specs or match errors without naming another crate.
pub use onedoor_natsd as natsd;
