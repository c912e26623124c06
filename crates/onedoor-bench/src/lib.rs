//! onedoor's two benchmarks. The `onedoor` binary's `bench` and `tracker bench` subcommands are
//! thin: clap parses the flags into [`BenchArgs`] / [`TrackerBenchArgs`] (defined here, so the
//! flags and what they mean stay together) and the CLI calls [`handoff::run`] /
//! [`tracker::run`]. Each run measures on a bus of its own (a fresh nats-server unless told
//! otherwise), prints one JSON line on stdout, and draws progress bars on stderr only when
//! stdout is a terminal. [`handoff::measure`] and [`tracker::measure`] return the figures
//! without printing them.
//!
//! # Layout
//! - [`handoff`]: `onedoor bench`, end-to-end hand-offs (HandOff → Inbox → Ack) through real
//!   adapters beside raw JetStream on the same server; spread and hot-case modes, open-loop
//!   rates. Its parts: `bus` (adapters and clients), `plan` (which calls), `phase` (the
//!   hand-off phase), `drive` (callers, receivers, counters), `raw`, `report`.
//! - [`tracker`]: `onedoor tracker bench`, projection rate into SQLite and PostgreSQL, rebuild
//!   time and `ListCases` latency per filter. Its parts: `history` (generated cases), `fill`
//!   (the listing database), `listing`, `publish` (the stream), `project` (live and rebuild),
//!   `running` (a tracker in this process).
//! - `nats`: the NATS both benches run on (a fresh nats-server, a given one, or the production
//!   cluster).
//! - `production`: `--production`'s cluster (deploy/nats through the test kit), provisioning
//!   and certificates.
//! - `keys`: a signing key per bench agency, added to the registry.
//! - `proc`: CPU seconds, peak RSS and load averages from `/proc`.
//! - `progress`: the progress bars.
//! - [`error`]: [`BenchError`], the crate's one error type.

pub mod error;
pub mod handoff;
mod keys;
mod nats;
mod proc;
mod production;
mod progress;
pub mod tracker;

pub use error::BenchError;
pub use handoff::BenchArgs;
pub use tracker::TrackerBenchArgs;

/// The registry at `path`, or the shipped 2025 one.
fn load_registry(path: Option<&std::path::Path>) -> Result<onedoor_case::Registry, BenchError> {
    match path {
        Some(path) => Ok(onedoor_case::Registry::load(path)?),
        None => Ok(onedoor_tracker::built_in_registry()?),
    }
}

/// Prints the report as the one JSON line on stdout.
fn print_json_line(report: &impl serde::Serialize) -> Result<(), BenchError> {
    println!(
        "{}",
        serde_json::to_string(report).map_err(BenchError::Report)?
    );
    Ok(())
}
