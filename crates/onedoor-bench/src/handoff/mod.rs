//! `onedoor bench`: end-to-end hand-off throughput and latency through the real API, side by
//! side with raw JetStream on the same server in the same run.
//!
//! # Layout
//! - this file: arguments, the runtimes, the run's steps (set up, start the bus, measure,
//!   report).
//! - `bus`: the bus under test (adapters with signing keys, clients).
//! - `plan`: which hand-offs the run makes (spread or hot cases) and their keys.
//! - `phase`: the hand-off phase: callers and receivers started, drained, counted.
//! - `drive`: the callers, the receivers' `Inbox`/`Ack` loops, the counters they share.
//! - `raw`: raw JetStream publish → durable pull → ack.
//! - `msgs`: NATS messages per hand-off on each side, from the servers' `/connz`.
//! - `report`: the one JSON line and the summary.
//! - `up_rss`: `--up-rss`, the memory of a whole `onedoor up` idle and under load.
//!
//! The nats-server comes from `crate::nats`, CPU and memory figures from `crate::proc`.
//!
//! # One process, two runtimes
//!
//! The adapters run as `onedoor up` runs them: in-process, on a Tokio runtime of their own
//! (threads `od-adapter*`). The load generator (gRPC clients, receivers, raw publisher) runs
//! on a second runtime (threads `od-client*`). Both share the process and its 2 cores; CPU
//! time is read per thread, so the adapters' share is measured apart from the generator's
//! (`adapter_cpu_s_per_1000`, `client_cpu_s_per_1000`), and the whole process is reported too.
//! `peak_rss_mb` is the whole process (adapters and generator), so it bounds the adapters' own.

mod bus;
mod drive;
mod msgs;
mod phase;
mod plan;
mod raw;
mod report;
mod up_rss;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use onedoor_bus::InboxSettings;
use onedoor_case::Registry;

use self::bus::{Adapters, Agencies};
use self::phase::Measured;
use self::raw::RawReport;
pub use self::report::Report;
use crate::BenchError;
use crate::keys::Signers;
use crate::nats::Nats;
use crate::proc;
use crate::progress::bar as progress_bar;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Hand-offs measured (after the warm-up). Default: 20,000; with --case-length, 16 per
    /// case.
    #[arg(long)]
    pub count: Option<u64>,
    /// Hand-offs sent first and left out of every figure but the lost/duplicated counts.
    #[arg(long, default_value_t = 2_000)]
    pub warmup: u64,
    /// Offered rate, hand-offs per second: calls start on schedule whatever the replies (open
    /// loop, up to --concurrency calls in flight). Without it: as fast as --concurrency callers
    /// can go.
    #[arg(long)]
    pub rate: Option<f64>,
    /// HandOff calls in flight at once (spread mode).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Contention mode: only N cases; for each case and ministry a worker hands off, waits for
    /// the ministry to receive it, has the ministry send it back, and repeats.
    #[arg(long)]
    pub hot_cases: Option<usize>,
    /// Growth mode: the cost of one more step on a case that already has N events. Each of
    /// --concurrency cases gets its own worker and ministry (no contention); every case is
    /// first grown to N events by hand-off and send-back rounds (the warm-up, whatever
    /// --warmup says), then --count more rounds are measured, so the measured steps land on
    /// cases of N to N + 2 × rounds events.
    #[arg(long, value_name = "N")]
    pub case_length: Option<u64>,
    /// Front offices sending hand-offs (each opens its share of the cases).
    #[arg(long, default_value_t = 1)]
    pub front_offices: usize,
    /// Ministries receiving hand-offs.
    #[arg(long, default_value_t = 3)]
    pub ministries: usize,
    /// Bytes of instructions per hand-off; the default makes a signed hand-off event about
    /// 1 KiB, the size raw JetStream is usually quoted at.
    #[arg(long, default_value_t = 640)]
    pub instructions_bytes: usize,
    /// Each agency's inbox window (un-acknowledged deliveries); default: the adapter's own.
    #[arg(long)]
    pub inbox_window: Option<usize>,
    /// Messages in the raw JetStream comparison (after a warm-up of a tenth as many).
    #[arg(long, default_value_t = 200_000)]
    pub raw_count: u64,
    /// gRPC connections per front office adapter that the callers share.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Worker threads of the load generator's runtime (the adapters' runtime has one per core,
    /// as under `onedoor up`).
    #[arg(long, default_value_t = 2)]
    pub client_threads: usize,
    /// Worker threads of the adapters' runtime (default: one per core, as under `onedoor up`).
    #[arg(long)]
    pub adapter_threads: Option<usize>,
    /// Run adapters and load generator on one runtime; adapter CPU is then the whole process's.
    #[arg(long)]
    pub shared_runtime: bool,
    /// How long to wait for hand-offs to arrive after the last call before counting the rest
    /// as lost, in seconds.
    #[arg(long, default_value_t = 30)]
    pub drain_timeout: u64,
    /// Production mode: the 3-node cluster of deploy/nats (client TLS, route mTLS, nkey users
    /// with the generated permissions, sync_interval always) started by the bench, the stream
    /// with 3 replicas, adapters on TLS gRPC connecting as their own agency over TLS,
    /// verifying every event they read; raw JetStream runs on the same cluster as the same
    /// identities.
    #[arg(long, conflicts_with = "nats_url")]
    pub production: bool,
    /// Memory of a whole `onedoor up`: start this binary's `up` on a temporary data dir (every
    /// agency of the registry, the tracker, the web page), sample its VmRSS idle for 10 s, then
    /// while offered hand-offs at --rate (default 1,000/s) through its adapters over TLS; ends
    /// with its own JSON line (`"mode":"up-rss"`).
    #[arg(long, conflicts_with_all = ["production", "nats_url", "hot_cases", "case_length"])]
    pub up_rss: bool,
    /// Use this nats-server (2.11+) instead of starting a fresh one. It must not serve a live
    /// bus: the bench's agencies read (and acknowledge) their inboxes on it.
    #[arg(long)]
    pub nats_url: Option<String>,
    /// Registry file; by default the shipped 2025 registry.
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// The catalogue service the cases are opened for (default: the registry's first).
    #[arg(long)]
    pub service: Option<String>,
}

/// Longer cases would make the growth phase take longer than anyone waits for a bench.
const MAX_CASE_LENGTH: u64 = 100_000;

/// Measured rounds per case in growth mode when --count is not given: enough steps for a p99
/// (16 × the 64 default cases), few enough that the cases grow by a small share of N.
const CASE_LENGTH_ROUNDS: u64 = 16;

impl BenchArgs {
    /// Measured hand-offs: --count, or the mode's default.
    pub fn count(&self) -> u64 {
        match (self.count, self.case_length) {
            (Some(count), _) => count,
            (None, Some(_)) => CASE_LENGTH_ROUNDS * self.concurrency as u64,
            (None, None) => 20_000,
        }
    }

    fn validate(&self) -> Result<(), BenchError> {
        let at_least_one = [
            (self.count != Some(0), "--count"),
            (self.case_length != Some(0), "--case-length"),
            (self.front_offices > 0, "--front-offices"),
            (self.ministries > 0, "--ministries"),
            (self.concurrency > 0, "--concurrency"),
            (self.connections > 0, "--connections"),
            (self.client_threads > 0, "--client-threads"),
            (self.hot_cases != Some(0), "--hot-cases"),
        ];
        if let Some((_, flag)) = at_least_one.iter().find(|(ok, _)| !ok) {
            return Err(BenchError::InvalidArgument(format!(
                "{flag} must be at least 1"
            )));
        }
        if self.case_length.is_some() && self.hot_cases.is_some() {
            return Err(BenchError::InvalidArgument(
                "--case-length and --hot-cases are different modes: give one".to_owned(),
            ));
        }
        if self.case_length.is_some_and(|n| n > MAX_CASE_LENGTH) {
            return Err(BenchError::InvalidArgument(format!(
                "--case-length: at most {MAX_CASE_LENGTH}"
            )));
        }
        let max = onedoor_case::limits::INSTRUCTIONS_MAX_BYTES;
        if self.instructions_bytes > max {
            return Err(BenchError::InvalidArgument(format!(
                "--instructions-bytes: at most {max}"
            )));
        }
        if self
            .rate
            .is_some_and(|rate| !(rate.is_finite() && rate > 0.0))
        {
            return Err(BenchError::InvalidArgument(
                "--rate must be a positive number".to_owned(),
            ));
        }
        Ok(())
    }
}

/// `onedoor bench`: measures, prints a summary on stderr and the JSON line on stdout, and
/// fails when any hand-off was lost, duplicated, mismatched or refused.
pub fn run(args: BenchArgs) -> Result<ExitCode, BenchError> {
    if args.up_rss {
        return run_up_rss(args);
    }
    let report = measure(args)?;
    finish(&report.summary(), &report, report.clean())
}

/// The summary on stderr, the JSON line on stdout, and the exit code of a run that was
/// `clean` or not.
fn finish(
    summary: &str,
    report: &impl serde::Serialize,
    clean: bool,
) -> Result<ExitCode, BenchError> {
    eprintln!("{summary}");
    crate::print_json_line(report)?;
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The load generator's runtime (threads `od-client*`).
fn client_runtime(args: &BenchArgs) -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .thread_name(proc::CLIENT_THREAD)
        .enable_all()
        .build()
        .map_err(BenchError::io("starting the load generator's runtime"))
}

/// `--up-rss`: the load generator alone runs here; `up` is another process.
fn run_up_rss(args: BenchArgs) -> Result<ExitCode, BenchError> {
    args.validate()?;
    let runtime = client_runtime(&args)?;
    let report = runtime.block_on(up_rss::measure(args))?;
    runtime.shutdown_timeout(Duration::from_secs(2));
    finish(&report.summary(), &report, report.clean())
}

/// Runs the whole bench on runtimes of its own and returns its figures.
pub fn measure(args: BenchArgs) -> Result<Report, BenchError> {
    args.validate()?;
    let client_runtime = client_runtime(&args)?;
    let adapter_runtime = if args.shared_runtime {
        None
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(threads) = args.adapter_threads {
            builder.worker_threads(threads);
        }
        Some(
            builder
                .thread_name(proc::ADAPTER_THREAD)
                .enable_all()
                .build()
                .map_err(BenchError::io("starting the adapters' runtime"))?,
        )
    };
    let adapters_on = adapter_runtime
        .as_ref()
        .map_or_else(|| client_runtime.handle().clone(), |r| r.handle().clone());
    let report = client_runtime.block_on(bench(args, adapters_on));
    if let Some(runtime) = adapter_runtime {
        runtime.shutdown_timeout(Duration::from_secs(2));
    }
    client_runtime.shutdown_timeout(Duration::from_secs(2));
    report
}

/// What a run is made of before anything starts.
struct Setup {
    /// This run's id, in its idempotency keys and key ids.
    run: String,
    /// The registry with the bench agencies' fresh signing keys.
    registry: Arc<Registry>,
    agencies: Agencies,
    /// The catalogue service the cases are opened for.
    service: String,
    inbox: InboxSettings,
}

impl Setup {
    /// The agencies, service, keys and inbox settings `args` ask for, checked against the
    /// registry; with the signers of the new keys, for the adapters.
    fn new(args: &BenchArgs) -> Result<(Setup, Signers), BenchError> {
        let run = ulid::Ulid::generate().to_string();
        let registry = crate::load_registry(args.registry.as_deref())?;
        let agencies = Agencies::pick(&registry, args.front_offices, args.ministries)?;
        let service = match &args.service {
            Some(service) => service.clone(),
            None => registry
                .services
                .keys()
                .next()
                .ok_or_else(|| BenchError::Unfit("the registry has no service".to_owned()))?
                .to_string(),
        };
        let today = time::OffsetDateTime::now_utc().date();
        let (registry, signers) = crate::keys::registry_with_keys(
            registry,
            agencies.all(),
            &format!("bench-{run}"),
            today,
        )?;
        let mut inbox = InboxSettings::default();
        if let Some(window) = args.inbox_window {
            inbox.max_in_flight = window;
        }
        inbox.validate()?;
        let setup = Setup {
            run,
            registry,
            agencies,
            service,
            inbox,
        };
        Ok((setup, signers))
    }
}

async fn bench(args: BenchArgs, adapters_on: tokio::runtime::Handle) -> Result<Report, BenchError> {
    let load_1m_start = proc::load_average_1m();
    let (setup, signers) = Setup::new(&args)?;
    let nats = if args.production {
        Nats::production(&setup.registry, setup.agencies.all(), &setup.inbox).await?
    } else {
        Nats::start(args.nats_url.as_deref()).await?
    };
    let outcome = on_bus(&args, &setup, signers, &nats, &adapters_on).await;
    let nats_version = nats.version.clone();
    nats.stop().await;
    let (measured, raw) = outcome?;
    Ok(Report::new(
        &args,
        &setup,
        measured,
        raw,
        nats_version,
        load_1m_start,
    ))
}

/// Everything that needs the bus: the adapters started, the hand-off phase measured and the
/// adapters stopped, the events stored counted, then raw JetStream alone on the server.
async fn on_bus(
    args: &BenchArgs,
    setup: &Setup,
    signers: Signers,
    nats: &Nats,
    adapters_on: &tokio::runtime::Handle,
) -> Result<(Measured, RawReport), BenchError> {
    let js = nats.jetstream().await?;
    if args.nats_url.is_some() {
        refuse_busy_inboxes(&js, &setup.agencies).await?;
    }
    let stored_before = stream_messages(&js).await;
    install_metrics(adapters_on).await?;
    let adapters =
        Adapters::start(adapters_on, &setup.registry, signers, nats, &setup.inbox).await?;
    let outcome = phase::drive_and_measure(args, setup, &adapters, &js, nats).await;
    adapters.stop().await;
    let mut measured = outcome?;
    measured.stored_events = stream_messages(&js)
        .await
        .zip(stored_before)
        .map(|(after, before)| after - before);
    let raw_bar = progress_bar(args.raw_count + args.raw_count / 10, "raw");
    let parties = raw::RawParties {
        from: &setup.agencies.fronts[0],
        to: &setup.agencies.ministries[0],
    };
    let raw = raw::measure(
        nats,
        &setup.run,
        parties,
        usize::try_from(measured.payload_bytes).unwrap_or(1024),
        (args.raw_count / 10, args.raw_count),
        &raw_bar,
    )
    .await;
    raw_bar.finish_and_clear();
    Ok((measured, raw?))
}

/// The same metrics recorder as `onedoor up`, so the adapters pay for their metrics. Its
/// exporter needs the adapters' runtime.
async fn install_metrics(adapters_on: &tokio::runtime::Handle) -> Result<(), BenchError> {
    adapters_on
        .spawn(async {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .with_http_listener(([127, 0, 0, 1], 0))
                .install()
                .map_err(BenchError::Metrics)
        })
        .await
        .map_err(BenchError::task("installing the metrics recorder"))?
}

/// Events in the ONEDOOR stream, to check that exactly the expected events were stored.
async fn stream_messages(js: &async_nats::jetstream::Context) -> Option<u64> {
    let mut stream = js.get_stream(onedoor_bus::STREAM_NAME).await.ok()?;
    Some(stream.info().await.ok()?.state.messages)
}

/// On a given server, the bench's agencies must have empty inboxes: it acknowledges what it
/// reads, and must not take a live bus's events.
async fn refuse_busy_inboxes(
    js: &async_nats::jetstream::Context,
    agencies: &Agencies,
) -> Result<(), BenchError> {
    let stream = js
        .get_stream(onedoor_bus::STREAM_NAME)
        .await
        .map_err(BenchError::nats("binding to the ONEDOOR stream"))?;
    for code in agencies.all() {
        if let Ok(info) = stream.consumer_info(format!("inbox-{code}")).await {
            let held = info.num_pending + info.num_ack_pending as u64;
            if held > 0 {
                return Err(BenchError::Unfit(format!(
                    "inbox-{code} on the given server holds {held} events; run the bench on a server no live bus uses (or without --nats-url)"
                )));
            }
        }
    }
    Ok(())
}
