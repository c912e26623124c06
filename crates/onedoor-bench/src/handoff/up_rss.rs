//! `onedoor bench --up-rss`: the memory of a whole `onedoor up` (every agency of the registry
//! with its adapter, the tracker on SQLite, the web page; the nats-server is its child and is
//! reported apart), idle and while offered hand-offs at `--rate` (default 1,000/s).
//!
//! The bench starts this very binary as `onedoor up --data-dir <temporary>`, waits for its
//! `endpoints.json` and for the bench agencies' adapters to serve, samples the `up` process's
//! `VmRSS` over an idle window, then drives hand-offs from outside exactly as an agency's
//! systems would (TLS, the development tokens `up` wrote, `Inbox` and `Ack`) while sampling
//! again, and stops `up` with SIGTERM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use onedoor_adapter::idempotency::IdKey;
use onedoor_bus::Signer;
use onedoor_case::AgencyCode;
use serde::{Deserialize, Serialize};

use super::bus::{Adapters, RunningAdapter};
use super::phase::{self, Measured};
use super::{BenchArgs, Setup};
use crate::BenchError;
use crate::nats::Nats;
use crate::proc;

/// How long `up` may take to write its endpoints and serve.
const START_DEADLINE: Duration = Duration::from_secs(120);
/// The idle window the idle figures are sampled over.
const IDLE_WINDOW: Duration = Duration::from_secs(10);
/// How often memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The offered rate when `--rate` is not given.
const DEFAULT_RATE: f64 = 1_000.0;

/// The parts of `endpoints.json` the bench reads.
#[derive(Debug, Deserialize)]
struct Endpoints {
    pid: u32,
    nats: NatsEndpoint,
    agencies: BTreeMap<String, AgencyEndpoint>,
    tls_ca_cert: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NatsEndpoint {
    url: String,
    monitor_url: String,
}

#[derive(Debug, Deserialize)]
struct AgencyEndpoint {
    grpc: String,
    token: String,
}

/// The one JSON line of `--up-rss`. Memory in MiB; `up_*` is the `onedoor up` process
/// (adapters, tracker, web page), `nats_*` its nats-server.
#[derive(Debug, Serialize)]
pub struct UpReport {
    mode: &'static str,
    adapters: usize,
    up_idle_rss_mb: f64,
    up_idle_rss_max_mb: f64,
    up_load_rss_max_mb: f64,
    up_hwm_mb: Option<f64>,
    nats_idle_rss_mb: Option<f64>,
    nats_load_rss_max_mb: Option<f64>,
    offered_rate: f64,
    handoffs_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    lost: u64,
    duplicated: u64,
    errors: u64,
    count: u64,
    up_cpu_s_per_1000: Option<f64>,
    idle_window_s: f64,
    load_1m_start: Option<f64>,
    load_1m_end: Option<f64>,
    first_error: Option<String>,
}

impl UpReport {
    pub fn clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.errors == 0
    }

    pub fn summary(&self) -> String {
        format!(
            "onedoor bench --up-rss: {} adapters; up RSS idle {:.0} MiB, at {:.0}/s up to {:.0} MiB (nats-server {:.0} → {:.0} MiB); {:.0} hand-offs/s, p99 {:.2} ms, lost {}, duplicated {}",
            self.adapters,
            self.up_idle_rss_mb,
            self.offered_rate,
            self.up_load_rss_max_mb,
            self.nats_idle_rss_mb.unwrap_or(0.0),
            self.nats_load_rss_max_mb.unwrap_or(0.0),
            self.handoffs_per_s,
            self.p99_ms,
            self.lost,
            self.duplicated
        )
    }
}

/// Starts `up`, measures it idle and under load, stops it.
pub(super) async fn measure(args: BenchArgs) -> Result<UpReport, BenchError> {
    let args = &BenchArgs {
        rate: Some(args.rate.unwrap_or(DEFAULT_RATE)),
        ..args
    };
    let load_1m_start = proc::load_average_1m();
    let (setup, _) = Setup::new(args)?;
    let dir = tempfile::Builder::new()
        .prefix("onedoor-bench-up-")
        .tempdir()
        .map_err(BenchError::io("making a data dir for onedoor up"))?;
    let mut up = start_up(args, dir.path())?;
    let outcome = measure_running(args, &setup, dir.path(), &up).await;
    stop_up(&mut up).await;
    let (mut report, measured) = outcome?;
    report.load_1m_start = load_1m_start;
    report.load_1m_end = proc::load_average_1m();
    report.lost = measured.lost;
    report.duplicated = measured.counters.duplicated;
    report.errors = measured.counters.errors;
    report.first_error = measured.first_error;
    Ok(report)
}

fn start_up(args: &BenchArgs, dir: &Path) -> Result<tokio::process::Child, BenchError> {
    let exe = std::env::current_exe().map_err(BenchError::io("finding the onedoor binary"))?;
    let log = std::fs::File::create(log_path(dir))
        .map_err(BenchError::io("making the log file of onedoor up"))?;
    let mut command = tokio::process::Command::new(exe);
    command.arg("up").arg("--data-dir").arg(dir);
    if let Some(registry) = &args.registry {
        command.arg("--registry").arg(registry);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(BenchError::io("starting onedoor up"))
}

/// SIGTERM, as an operator stops it (it stops its nats-server too); SIGKILL after 30 s.
async fn stop_up(up: &mut tokio::process::Child) {
    if let Some(pid) = up.id().and_then(|pid| i32::try_from(pid).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if tokio::time::timeout(Duration::from_secs(30), up.wait())
        .await
        .is_err()
    {
        tracing::warn!("onedoor up did not stop within 30 s of SIGTERM; killing it");
        let _ = up.kill().await;
    }
}

async fn measure_running(
    args: &BenchArgs,
    setup: &Setup,
    dir: &Path,
    up: &tokio::process::Child,
) -> Result<(UpReport, Measured), BenchError> {
    let pid = up
        .id()
        .ok_or_else(|| BenchError::Failed("onedoor up ended at once".to_owned()))?;
    let endpoints = wait_for_endpoints(dir, pid).await?;
    let adapters = Adapters::external(external_adapters(setup, dir, &endpoints)?).await?;
    let nats_pid = child_named(pid, "nats-server");
    let nats = Nats::of_up(
        endpoints.nats.url.clone(),
        endpoints
            .nats
            .monitor_url
            .trim_start_matches("http://")
            .to_owned(),
        nats_pid,
        &dir.join("nats-credentials"),
    )?;
    let js = nats.jetstream().await?;

    let idle = Sampler::start(pid, nats_pid);
    tokio::time::sleep(IDLE_WINDOW).await;
    let idle = idle.stop().await;
    let idle_rss = proc::status_mib_of(pid, "VmRSS").unwrap_or(0.0);
    let nats_idle_rss = nats_pid.and_then(|p| proc::status_mib_of(p, "VmRSS"));

    let cpu_before = proc::pid_cpu_s(pid);
    let load = Sampler::start(pid, nats_pid);
    let measured = phase::drive_and_measure(args, setup, &adapters, &js, &nats).await;
    let load = load.stop().await;
    let measured = measured?;
    let up_cpu = proc::pid_cpu_s(pid)
        .zip(cpu_before)
        .map(|(after, before)| (after - before) / measured.plan.total as f64 * 1_000.0);
    let latencies = &measured.latencies;
    let report = UpReport {
        mode: "up-rss",
        adapters: endpoints.agencies.len(),
        up_idle_rss_mb: idle_rss,
        up_idle_rss_max_mb: idle.up_max,
        up_load_rss_max_mb: load.up_max,
        up_hwm_mb: proc::status_mib_of(pid, "VmHWM"),
        nats_idle_rss_mb: nats_idle_rss,
        nats_load_rss_max_mb: nats_pid.map(|_| load.nats_max),
        offered_rate: args.rate.unwrap_or(DEFAULT_RATE),
        handoffs_per_s: measured.per_s,
        p50_ms: latencies.value_at_quantile(0.50) as f64 / 1_000.0,
        p99_ms: latencies.value_at_quantile(0.99) as f64 / 1_000.0,
        lost: 0,
        duplicated: 0,
        errors: 0,
        count: measured.plan.total - measured.plan.warmup,
        up_cpu_s_per_1000: up_cpu,
        idle_window_s: IDLE_WINDOW.as_secs_f64(),
        load_1m_start: None,
        load_1m_end: None,
        first_error: None,
    };
    Ok((report, measured))
}

/// Where `up`'s stderr goes: inside its data dir, removed with it.
fn log_path(dir: &Path) -> PathBuf {
    dir.join("up.log")
}

/// `endpoints.json` once `up` (process `pid`) has written it.
async fn wait_for_endpoints(dir: &Path, pid: u32) -> Result<Endpoints, BenchError> {
    let path = dir.join("endpoints.json");
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(endpoints) = serde_json::from_str::<Endpoints>(&text)
            && endpoints.pid == pid
        {
            return Ok(endpoints);
        }
        if Instant::now() > deadline || !Path::new(&format!("/proc/{pid}")).exists() {
            let log = std::fs::read_to_string(log_path(dir)).unwrap_or_default();
            let tail = &log[log.len().saturating_sub(2_000)..];
            return Err(BenchError::Failed(format!(
                "onedoor up wrote no endpoints.json within {START_DEADLINE:?}; its log ends:\n{tail}"
            )));
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// The bench agencies' adapters as `up` runs them, with their tokens, the development CA and
/// the event-id keys derived from the signing keys `up` made.
fn external_adapters(
    setup: &Setup,
    dir: &Path,
    endpoints: &Endpoints,
) -> Result<Vec<RunningAdapter>, BenchError> {
    let ca_pem = match &endpoints.tls_ca_cert {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(BenchError::io(format!("reading the bus's CA {path}")))?,
        ),
        None => None,
    };
    setup
        .agencies
        .all()
        .map(|code: &AgencyCode| {
            let endpoint = endpoints.agencies.get(code.as_str()).ok_or_else(|| {
                BenchError::Unfit(format!("onedoor up runs no adapter for {code}"))
            })?;
            let seed: PathBuf = dir.join("keys").join(format!("{code}.seed"));
            let signer = Signer::load(format!("{code}-dev"), &seed)
                .map_err(|err| BenchError::Unfit(format!("reading {code}'s signing key: {err}")))?;
            Ok(RunningAdapter::external(
                code.clone(),
                endpoint.grpc.clone(),
                IdKey::from_signer(&signer),
                endpoint.token.clone(),
                ca_pem.clone(),
            ))
        })
        .collect()
}

/// The child process of `parent` whose command name starts with `name`.
fn child_named(parent: u32, name: &str) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{parent}/task")).ok()?;
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|pid| pid.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim().starts_with(name))
        })
}

/// The largest `VmRSS` of `up` and its nats-server seen while running.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Peaks>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    up_max: f64,
    nats_max: f64,
}

impl Sampler {
    fn start(pid: u32, nats_pid: Option<u32>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut peaks = Peaks::default();
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            while !stopped.load(Ordering::Relaxed) {
                tick.tick().await;
                if let Some(rss) = proc::status_mib_of(pid, "VmRSS") {
                    peaks.up_max = peaks.up_max.max(rss);
                }
                if let Some(rss) = nats_pid.and_then(|p| proc::status_mib_of(p, "VmRSS")) {
                    peaks.nats_max = peaks.nats_max.max(rss);
                }
            }
            peaks
        });
        Sampler { stop, task }
    }

    async fn stop(self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}
