//! Test support for onedoor: real nats-server processes and a real running bus, never mocks.
//!
//! Every test gets its own server(s): own temporary store directory, ports the server chose
//! itself (read back from its log, so no probe-then-bind race), readiness polled with a
//! deadline (no fixed sleeps), and everything killed and removed on `Drop`.
//!
//! # Layout
//!
//! The nats-server layer:
//!
//! - [`single`]: [`TestNats`], one JetStream node (`start`, `client`, `jetstream`, `kill`,
//!   `restart`).
//! - [`cluster`]: [`TestCluster`], N JetStream nodes in one cluster; waits until the meta
//!   leader sees every peer; `kill(i)`, `restart(i)`.
//! - [`deploy_cluster`]: [`DeployCluster`], the three production nodes run from
//!   `deploy/nats/`'s files (TLS, route mTLS, generated nkey users) on loopback; `kill`,
//!   `restart`, `freeze`, `thaw`, `check_configs`.
//! - [`link_proxy`]: [`LinkProxy`], a TCP proxy standing for a weak link (`cut`, `restore`,
//!   bytes carried).
//! - [`district`]: [`District`], the capital and a district office's own node in its own
//!   JetStream domain; the office reaches the capital through a [`LinkProxy`].
//! - [`error`]: [`TestkitError`], the crate's one error type.
//! - [`binary`]: the nats-server binary, located once per test process.
//!
//! The one fixture every crate's tests use (`docs/testing.md`):
//!
//! - [`eventually`]: [`eventually()`]`(what, deadline, check)`, the one way a test waits for a
//!   condition ([`eventually_blocking`] without a runtime); [`DEADLINE`]; [`throughout`], the
//!   way a test checks that something stays true over a stated window.
//! - [`bus`]: [`TestBus`], a node with the `ONEDOOR` stream, the shipped registry with a
//!   signing key per agency, and the case verbs through the real write path (`open`,
//!   `hand_off`, `accept`, `complete`, `resolve`).
//! - [`hostile`]: [`Hostile`] messages an agency's own credentials can publish on a case
//!   (`hostile_from`, `publish_hostile`), and writes that verify what they read
//!   (`verified_log`, `act_verified`), for the readers' quarantine tests.
//! - [`adapter`]: real adapters on the bus (`with_adapters`, `start_adapter`, `abort_adapter`,
//!   health, NATS connections) and [`TestAgency`], an agency's system speaking gRPC to its
//!   adapter (`open_case`, `hand_off`, `inbox`, [`next_inbox_item`]).
//! - [`tracker`]: [`TestDb`] (SQLite or PostgreSQL per test, [`on_both_databases!`]),
//!   [`RunningTracker`], and the fold the tracker's rows must equal.
//! - [`secured`]: [`SecuredBus`], a node running the NATS users and permissions
//!   `onedoor-natsauth` generates from the registry, and a [`Session`] per identity that
//!   collects the server's refusals.
//! - [`task`]: [`ServerTask`], a spawned server with its stop signal (stop, crash, abort on
//!   drop), under the running tracker and any fixture that runs a server of its own.
//! - [`webhook_receiver`]: [`ReferenceReceiver`], the Python reference webhook receiver of
//!   `examples/` as a child process.
//! - [`reference_worker`]: [`ReferenceWorker`], the gRPC reference workers of `examples/`
//!   (Python, Node) as child processes.
//! - [`registry`]: the shipped registry, agency codes ([`FRONT`], [`OTHER_FRONT`]), tokens,
//!   idempotency keys.

pub mod adapter;
pub mod binary;
pub mod bus;
pub mod cluster;
pub mod deploy_cluster;
pub mod district;
pub mod error;
pub mod eventually;
pub mod hostile;
pub mod link_proxy;
pub mod reference_worker;
pub mod registry;
pub mod secured;
pub mod single;
pub mod task;
pub mod tracker;
pub mod webhook_receiver;

pub use adapter::{BearerToken, Client, INBOX_DEADLINE, TestAgency, next_inbox_item};
pub use bus::{TestBus, subject_of};
pub use cluster::{TestCluster, stream_leader};
pub use deploy_cluster::DeployCluster;
pub use district::{District, NationalTracker, SUPERVISOR_TOKEN, inbox_pending};
pub use error::TestkitError;
pub use eventually::{DEADLINE, Progress, eventually, eventually_blocking, throughout};
pub use hostile::Hostile;
pub use link_proxy::LinkProxy;
pub use reference_worker::{ReferenceWorker, WorkerLanguage, WorkerTarget};
pub use registry::{
    FRONT, OTHER_FRONT, code, key, registry_with_keys, shipped_registry, token_for,
};
pub use secured::{SecuredBus, Session};
pub use single::TestNats;
pub use task::ServerTask;
pub use tracker::{
    MONDAY, RunningTracker, TestDb, assert_rows_equal_the_fold, wait_until_projected,
};
pub use webhook_receiver::ReferenceReceiver;

/// Re-exported so tests can build specs or match errors without naming another crate.
pub use onedoor_natsd as natsd;
