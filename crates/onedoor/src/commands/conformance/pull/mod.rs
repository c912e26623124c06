//! `onedoor conformance --agency X --worker-cmd CMD`: drives a ministry's pull worker (a gRPC
//! or JSON client of `Inbox`) through a bus of its own: nats-server, the agency's adapter and a
//! front office's, all on free loopback ports and torn down at the end (Ctrl-C included).
//! The worker reaches its adapter through conformance's [`proxy::Proxy`], which records what
//! it receives, acknowledges and writes, and loses, repeats or delays what a real network and
//! bus may. The checks: `docs/integration.md`, "Conformance".
//!
//! # Layout
//! - `bus`: nats-server and the two adapters; conformance plays the front office.
//! - `proxy`, `calls`, `inbox_filter`: between the worker and its adapter.
//! - `journal`: what the proxy saw, and the faults planned per case.
//! - `worker`: the worker's process group.
//! - `checks`: the checks.

mod bus;
mod calls;
mod checks;
mod inbox_filter;
mod journal;
mod proxy;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use onedoor_bus::InboxSettings;
use onedoor_case::AgencyCode;

use super::report::{self, Check};
use crate::commands::common;

/// What a pull run needs besides the agency.
pub struct PullSettings {
    pub command: String,
    pub registry: Option<PathBuf>,
    pub ack_wait: Duration,
    pub deadline: Duration,
    pub json: bool,
}

pub fn run(agency: &AgencyCode, settings: &PullSettings) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !settings.ack_wait.is_zero() && !settings.deadline.is_zero(),
        "--ack-wait and --deadline must be at least 1 second"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let Some(checks) = runtime.block_on(drive(agency, settings))? else {
        eprintln!("interrupted: the worker and the bus are stopped");
        return Ok(ExitCode::from(130));
    };
    let header = format!(
        "pull worker as {agency}, ack wait {}s: {}",
        settings.ack_wait.as_secs(),
        settings.command
    );
    Ok(report::print(
        &checks,
        settings.json,
        &header,
        [
            ("agency", agency.as_str()),
            ("worker", settings.command.as_str()),
        ],
    ))
}

/// The checks, or `None` when Ctrl-C or SIGTERM came first; the worker and the bus are
/// stopped either way.
async fn drive(agency: &AgencyCode, settings: &PullSettings) -> anyhow::Result<Option<Vec<Check>>> {
    let signals = common::ShutdownSignals::install()?;
    let (registry, _) = common::load_registry_mut(settings.registry.as_deref())?;
    anyhow::ensure!(
        registry.agency(agency).is_some(),
        "agency {agency} is not in the registry"
    );
    let inbox = InboxSettings {
        max_deliver: 10,
        backoff: vec![settings.ack_wait; 4],
        ..InboxSettings::default()
    };
    let journal = Arc::new(journal::Journal::default());
    let bus = bus::Bus::start(registry, agency, inbox).await?;
    let proxy = proxy::Proxy::start(bus.adapter, journal.clone()).await;
    let started = proxy.and_then(|proxy| {
        let placeholders = worker::Placeholders {
            adapter: &proxy.url,
            token: &bus.token,
            agency: agency.as_str(),
        };
        Ok((
            worker::Worker::start(&settings.command, &placeholders)?,
            proxy,
        ))
    });
    let (worker, proxy) = match started {
        Ok(started) => started,
        Err(error) => {
            bus.stop().await;
            return Err(error);
        }
    };
    let drive = checks::Drive {
        bus: &bus,
        journal,
        worker: &worker,
        agency: agency.to_string(),
        deadline: settings.deadline,
        ack_wait: settings.ack_wait,
    };
    let outcome = tokio::select! {
        checks = drive.run() => Some(checks),
        () = signals.recv() => None,
    };
    worker.stop().await;
    drop(proxy);
    bus.stop().await;
    outcome.transpose()
}
