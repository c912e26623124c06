//! `onedoor bench`: end-to-end hand-off throughput and latency through the real API, side by
//! side with raw JetStream on the same server in the same run.
//!
//! # Layout
//! - this file: arguments, the run's phases, and the one JSON line it ends with.
//! - `bus`: the bus under test (adapters with signing keys, clients).
//! - `drive`: the plan of hand-offs, the callers, the receivers' `Inbox`/`Ack` loops.
//! - `raw`: raw JetStream publish → durable pull → ack.
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
mod raw;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use onedoor_bus::InboxSettings;
use serde::Serialize;
use tokio::sync::watch;

use self::bus::{Adapters, Agencies};
use self::drive::{Mode, Pacer, Plan, Shared};
use crate::BenchError;
use crate::nats::Nats;
use crate::proc::{self, CpuSnapshot};
use crate::progress::bar as progress_bar;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Hand-offs measured (after the warm-up).
    #[arg(long, default_value_t = 20_000)]
    pub count: u64,
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

impl BenchArgs {
    fn validate(&self) -> Result<(), BenchError> {
        let at_least_one = [
            (self.count > 0, "--count"),
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

/// The one JSON line. Field order is the order printed.
///
/// Throughput counts measured hand-offs from the first measured call to the last measured
/// arrival; latency is from the start of each `HandOff` call to its arrival on the receiver's
/// `Inbox` stream. CPU figures cover the whole hand-off phase (warm-up included) divided by every
/// hand-off sent; in hot mode each hand-off also carries its send-back (two writes, two
/// deliveries). `peak_rss_mb` is the process's `VmHWM` after the hand-off phase.
#[derive(Debug, Serialize)]
pub struct Report {
    handoffs_per_s: f64,
    raw_per_s: f64,
    ratio: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    mean_ms: f64,
    offered_rate: Option<f64>,
    lost: u64,
    duplicated: u64,
    adapter_cpu_s_per_1000: f64,
    client_cpu_s_per_1000: Option<f64>,
    process_cpu_s_per_1000: f64,
    nats_cpu_s_per_1000: Option<f64>,
    peak_rss_mb: f64,
    mode: &'static str,
    count: u64,
    warmup: u64,
    cases: usize,
    agencies: usize,
    front_offices: usize,
    ministries: usize,
    concurrency: usize,
    inbox_window: usize,
    payload_bytes: u64,
    signing: bool,
    errors: u64,
    retries: u64,
    mismatched: u64,
    redelivered: u64,
    foreign: u64,
    ack_errors: u64,
    sendbacks: u64,
    stored_events: Option<u64>,
    expected_events: u64,
    unacked_at_end: Option<u64>,
    max_send_lag_ms: f64,
    handoff_phase_s: f64,
    raw_count: u64,
    raw_s: f64,
    runtime: &'static str,
    nats_server: Option<String>,
    load_1m_start: Option<f64>,
    load_1m_end: Option<f64>,
    first_error: Option<String>,
}

/// `onedoor bench`: measures, prints a summary on stderr and the JSON line on stdout, and
/// fails when any hand-off was lost, duplicated, mismatched or refused.
pub fn run(args: BenchArgs) -> Result<ExitCode, BenchError> {
    let report = measure(args)?;
    eprintln!("{}", report.summary());
    crate::print_json_line(&report)?;
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the whole bench on runtimes of its own and returns its figures.
pub fn measure(args: BenchArgs) -> Result<Report, BenchError> {
    args.validate()?;
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .thread_name(proc::CLIENT_THREAD)
        .enable_all()
        .build()
        .map_err(BenchError::io("starting the load generator's runtime"))?;
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

impl Report {
    /// Every hand-off arrived once, as sent, and no call failed for good.
    pub fn clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.mismatched == 0 && self.errors == 0
    }

    /// The figures a person reads first, on one line.
    pub fn summary(&self) -> String {
        format!(
            "onedoor bench: {:.0} hand-offs/s vs raw JetStream {:.0} msg/s (ratio {:.3}); p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; lost {}, duplicated {}; adapter CPU {:.3} s per 1,000; peak RSS {:.0} MiB",
            self.handoffs_per_s,
            self.raw_per_s,
            self.ratio,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.lost,
            self.duplicated,
            self.adapter_cpu_s_per_1000,
            self.peak_rss_mb
        )
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

async fn bench(args: BenchArgs, adapters_on: tokio::runtime::Handle) -> Result<Report, BenchError> {
    let load_1m_start = proc::load_average_1m();
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
    let (registry, signers) =
        crate::keys::registry_with_keys(registry, agencies.all(), &format!("bench-{run}"), today)?;
    let mut inbox = InboxSettings::default();
    if let Some(window) = args.inbox_window {
        inbox.max_in_flight = window;
    }
    inbox.validate()?;

    let nats = Nats::start(args.nats_url.as_deref()).await?;
    let js = nats.jetstream().await?;
    if args.nats_url.is_some() {
        refuse_busy_inboxes(&js, &agencies).await?;
    }
    let stored_before = stream_messages(&js).await;
    // The same metrics recorder as `onedoor up`, so the adapters pay for their metrics.
    adapters_on
        .spawn(async {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .with_http_listener(([127, 0, 0, 1], 0))
                .install()
                .map_err(BenchError::Metrics)
        })
        .await
        .map_err(BenchError::task("installing the metrics recorder"))??;
    let adapters = Adapters::start(&adapters_on, &registry, signers, &nats.url, &inbox).await?;

    let outcome = drive_and_measure(&args, &run, &agencies, &service, &adapters, &js, &nats).await;
    adapters.stop().await;
    let outcome = match outcome {
        Ok(mut measured) => {
            measured.stored_events = stream_messages(&js)
                .await
                .zip(stored_before)
                .map(|(after, before)| after - before);
            let raw_bar = progress_bar(args.raw_count + args.raw_count / 10, "raw");
            let raw = raw::measure(
                &nats.url,
                &run,
                usize::try_from(measured.payload_bytes).unwrap_or(1024),
                args.raw_count / 10,
                args.raw_count,
                &raw_bar,
            )
            .await;
            raw_bar.finish_and_clear();
            raw.map(|raw| (measured, raw))
        }
        Err(err) => Err(err),
    };
    let nats_version = nats.version.clone();
    nats.stop().await;
    let (measured, raw) = outcome?;

    let handoffs = (measured.plan.total) as f64;
    let per_1000 = |cpu: f64| cpu / handoffs * 1_000.0;
    let latencies = &measured.latencies;
    let report = Report {
        handoffs_per_s: measured.per_s,
        raw_per_s: raw.per_s,
        ratio: measured.per_s / raw.per_s,
        p50_ms: ms(latencies.value_at_quantile(0.50)),
        p90_ms: ms(latencies.value_at_quantile(0.90)),
        p99_ms: ms(latencies.value_at_quantile(0.99)),
        max_ms: ms(latencies.max()),
        mean_ms: latencies.mean() / 1_000.0,
        offered_rate: args.rate,
        lost: measured.lost,
        duplicated: measured.counters.duplicated,
        adapter_cpu_s_per_1000: per_1000(if args.shared_runtime {
            measured.cpu.process_s
        } else {
            measured.cpu.adapter_s
        }),
        client_cpu_s_per_1000: (!args.shared_runtime).then(|| per_1000(measured.cpu.client_s)),
        process_cpu_s_per_1000: per_1000(measured.cpu.process_s),
        nats_cpu_s_per_1000: measured.cpu.nats_s.map(per_1000),
        peak_rss_mb: measured.peak_rss_mb,
        mode: match measured.plan.mode {
            Mode::Spread => "spread",
            Mode::Hot { .. } => "hot",
        },
        count: measured.plan.total - measured.plan.warmup,
        warmup: measured.plan.warmup,
        cases: measured.plan.cases(),
        agencies: agencies.fronts.len() + agencies.ministries.len(),
        front_offices: agencies.fronts.len(),
        ministries: agencies.ministries.len(),
        concurrency: match measured.plan.mode {
            Mode::Spread => args.concurrency,
            Mode::Hot { .. } => measured.plan.pairs(),
        },
        inbox_window: inbox.max_in_flight,
        payload_bytes: measured.payload_bytes,
        signing: true,
        errors: measured.counters.errors,
        retries: measured.counters.retries,
        mismatched: measured.counters.mismatched,
        redelivered: measured.counters.redelivered,
        foreign: measured.counters.foreign,
        ack_errors: measured.counters.ack_errors + measured.counters.ack_unknown,
        sendbacks: measured.counters.sendbacks,
        stored_events: measured.stored_events,
        expected_events: measured.plan.cases() as u64
            + measured.receipts
            + measured.counters.sendbacks,
        unacked_at_end: measured.unacked,
        max_send_lag_ms: ms(measured.counters.max_send_lag_us),
        handoff_phase_s: measured.phase_s,
        raw_count: args.raw_count,
        raw_s: raw.elapsed_s,
        runtime: if args.shared_runtime {
            "shared"
        } else {
            "split"
        },
        nats_server: nats_version,
        load_1m_start,
        load_1m_end: proc::load_average_1m(),
        first_error: measured.first_error,
    };
    Ok(report)
}

/// Plain numbers out of the shared counters.
#[derive(Debug, Default)]
struct CounterValues {
    errors: u64,
    retries: u64,
    duplicated: u64,
    redelivered: u64,
    mismatched: u64,
    foreign: u64,
    sendbacks: u64,
    ack_errors: u64,
    ack_unknown: u64,
    max_send_lag_us: u64,
}

/// What the hand-off phase measured.
struct Measured {
    plan: Plan,
    per_s: f64,
    latencies: Histogram<u64>,
    lost: u64,
    receipts: u64,
    counters: CounterValues,
    cpu: CpuSnapshot,
    peak_rss_mb: f64,
    payload_bytes: u64,
    phase_s: f64,
    stored_events: Option<u64>,
    unacked: Option<u64>,
    first_error: Option<String>,
}

async fn drive_and_measure(
    args: &BenchArgs,
    run: &str,
    agencies: &Agencies,
    service: &str,
    adapters: &Adapters,
    js: &async_nats::jetstream::Context,
    nats: &Nats,
) -> Result<Measured, BenchError> {
    let ministries_n = agencies.ministries.len() as u64;
    let (mode, warmup, total) = match args.hot_cases {
        None => (Mode::Spread, args.warmup, args.warmup + args.count),
        Some(cases) => {
            // Whole rounds over every (case, ministry) pair.
            let pairs = cases as u64 * ministries_n;
            let warmup = args.warmup.div_ceil(pairs) * pairs;
            (
                Mode::Hot { cases },
                warmup,
                warmup + args.count.div_ceil(pairs) * pairs,
            )
        }
    };
    let plan = Plan {
        run: run.to_owned(),
        mode,
        fronts: agencies.fronts.clone(),
        ministries: agencies.ministries.clone(),
        warmup,
        total,
        instructions_bytes: args.instructions_bytes,
    };

    // Callers: each front office's adapter over `--connections` connections.
    let mut front_pools = Vec::new();
    for code in &agencies.fronts {
        let adapter = adapters.get(code)?;
        let mut pool = Vec::new();
        for _ in 0..args.connections {
            pool.push(adapter.client().await?);
        }
        front_pools.push(pool);
    }
    let callers = |n: usize| -> Vec<bus::Client> {
        front_pools
            .iter()
            .map(|pool| pool[n % pool.len()].clone())
            .collect()
    };

    let open_bar = progress_bar(plan.cases() as u64, "open cases");
    let case_ids =
        drive::open_cases(&plan, &callers(0), service, args.concurrency, &open_bar).await?;
    open_bar.finish_and_clear();

    let bar = progress_bar(plan.total, "hand-offs");
    let shared = Arc::new(Shared::new(plan.clone(), case_ids, bar.clone()));
    let (stop, stop_rx) = watch::channel(false);
    let mut receivers = Vec::new();
    for code in agencies.all() {
        let client = adapters.get(code)?.client().await?;
        receivers.push(tokio::spawn(drive::receiver(
            shared.clone(),
            code.clone(),
            client,
            stop_rx.clone(),
        )));
    }

    let cpu_before = CpuSnapshot::take(nats.pid());
    let phase_started = Instant::now();
    let pacer = Pacer::new(args.rate);
    let mut senders = Vec::new();
    match plan.mode {
        Mode::Spread => {
            for n in 0..args.concurrency {
                senders.push(tokio::spawn(drive::spread_sender(
                    shared.clone(),
                    callers(n),
                    pacer.clone(),
                )));
            }
        }
        Mode::Hot { .. } => {
            let mut ministry_clients = Vec::new();
            for code in &agencies.ministries {
                ministry_clients.push(adapters.get(code)?.client().await?);
            }
            for pair in 0..plan.pairs() {
                let job = plan.job(pair as u64);
                senders.push(tokio::spawn(drive::hot_worker(
                    shared.clone(),
                    pair,
                    callers(pair)[job.front].clone(),
                    ministry_clients[job.ministry].clone(),
                    pacer.clone(),
                    Duration::from_secs(args.drain_timeout),
                )));
            }
        }
    }
    for sender in senders {
        sender.await.map_err(BenchError::task("a caller"))?;
    }
    // Drain: every hand-off with a receipt must arrive (and in hot mode every send-back must
    // be back at its front office); then a short grace for duplicates.
    let deadline = Instant::now() + Duration::from_secs(args.drain_timeout);
    while (shared.missing() > 0 || shared.returns_pending() > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let phase_s = phase_started.elapsed().as_secs_f64();
    let cpu = CpuSnapshot::take(nats.pid()).since(&cpu_before);
    let peak_rss_mb = proc::status_mib("VmHWM").unwrap_or(0.0);
    bar.finish_and_clear();

    let _ = stop.send(true);
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    for receiver in receivers {
        let histogram = receiver.await.map_err(BenchError::task("a receiver"))??;
        latencies.add(&histogram)?;
    }
    let unacked = unacked(js, agencies).await;
    let measured_count = (plan.total - plan.warmup) as f64;
    let per_s = shared
        .measured_window_s()
        .map_or(0.0, |window| measured_count / window);
    let c = &shared.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    Ok(Measured {
        per_s,
        latencies,
        lost: shared.missing(),
        receipts: shared.receipts(),
        counters: CounterValues {
            errors: load(&c.errors),
            retries: load(&c.retries),
            duplicated: load(&c.duplicated),
            redelivered: load(&c.redelivered),
            mismatched: load(&c.mismatched),
            foreign: load(&c.foreign),
            sendbacks: load(&c.sendbacks),
            ack_errors: load(&c.ack_errors),
            ack_unknown: load(&c.ack_unknown),
            max_send_lag_us: load(&c.max_send_lag_us),
        },
        cpu,
        peak_rss_mb,
        payload_bytes: shared.payload_bytes().unwrap_or(0),
        phase_s,
        stored_events: None,
        unacked,
        first_error: shared.first_error(),
        plan,
    })
}

/// Events in the ONEDOOR stream, to check that exactly the expected events were stored.
async fn stream_messages(js: &async_nats::jetstream::Context) -> Option<u64> {
    let mut stream = js.get_stream(onedoor_bus::STREAM_NAME).await.ok()?;
    Some(stream.info().await.ok()?.state.messages)
}

/// Deliveries the bench agencies' inbox consumers still hold or have pending: 0 means nothing
/// can be redelivered later, so the duplicate count is final.
async fn unacked(js: &async_nats::jetstream::Context, agencies: &Agencies) -> Option<u64> {
    let stream = js.get_stream(onedoor_bus::STREAM_NAME).await.ok()?;
    let mut total = 0;
    for code in agencies.all() {
        let info = stream.consumer_info(format!("inbox-{code}")).await.ok()?;
        total += info.num_pending + info.num_ack_pending as u64;
    }
    Some(total)
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
