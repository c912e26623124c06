//! The hand-off phase: the cases opened, every agency's system reading its inbox, the callers
//! sending on the plan's schedule, a drain until every receipted hand-off has arrived, and
//! what that measured collected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::bus::{Adapters, Agencies, Client};
use super::drive::{self, CounterValues, Pacer, Shared};
use super::msgs::{ConnMsgs, MsgsPerHandoff};
use super::plan::{Mode, Plan};
use super::{BenchArgs, Setup};
use crate::BenchError;
use crate::nats::Nats;
use crate::proc::{self, CpuSnapshot};
use crate::progress::bar as progress_bar;

/// After the drain, how long duplicates still have to show up.
const DUPLICATE_GRACE: Duration = Duration::from_millis(200);

/// A receiver's task: its latency histogram once stopped.
type Receiver = JoinHandle<Result<Histogram<u64>, BenchError>>;

/// What the hand-off phase measured.
pub(super) struct Measured {
    pub plan: Plan,
    pub per_s: f64,
    pub latencies: Histogram<u64>,
    pub lost: u64,
    pub receipts: u64,
    pub counters: CounterValues,
    pub cpu: CpuSnapshot,
    pub peak_rss_mb: f64,
    /// NATS messages per hand-off on each side (servers the bench started only).
    pub nats_msgs: Option<MsgsPerHandoff>,
    pub payload_bytes: u64,
    pub phase_s: f64,
    /// Filled in by the caller, once the adapters have stopped writing.
    pub stored_events: Option<u64>,
    pub unacked: Option<u64>,
    pub first_error: Option<String>,
}

/// Opens the cases, runs the plan's hand-offs with receivers on every agency, and measures.
pub(super) async fn drive_and_measure(
    args: &BenchArgs,
    setup: &Setup,
    adapters: &Adapters,
    js: &async_nats::jetstream::Context,
    nats: &Nats,
) -> Result<Measured, BenchError> {
    let plan = Plan::new(&setup.run, args, &setup.agencies);
    let callers = Callers::connect(adapters, &setup.agencies, args.connections).await?;
    let open_bar = progress_bar(plan.cases() as u64, "open cases");
    let case_ids = drive::open_cases(
        &plan,
        &callers.for_sender(0),
        &setup.service,
        args.concurrency,
        &open_bar,
    )
    .await?;
    open_bar.finish_and_clear();

    let bar = progress_bar(plan.total, "hand-offs");
    let front_ids = plan
        .fronts
        .iter()
        .map(|front| adapters.get(front).map(|a| a.ids.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(Shared::new(plan.clone(), case_ids, front_ids, bar.clone()));
    let (stop, stop_rx) = watch::channel(false);
    let receivers = start_receivers(&shared, &setup.agencies, adapters, &stop_rx).await?;

    let monitors = nats.monitor_addrs();
    let msgs_before = ConnMsgs::take(&monitors).await;
    let cpu_before = CpuSnapshot::take(&nats.pids());
    let phase_started = Instant::now();
    let pacer = Pacer::new(args.rate);
    let senders = start_senders(args, &shared, &callers, adapters, &setup.agencies, pacer).await?;
    for sender in senders {
        sender.await.map_err(BenchError::task("a caller"))?;
    }
    drain(&shared, Duration::from_secs(args.drain_timeout)).await;
    let phase_s = phase_started.elapsed().as_secs_f64();
    let cpu = CpuSnapshot::take(&nats.pids()).since(&cpu_before);
    let nats_msgs = ConnMsgs::take(&monitors)
        .await
        .zip(msgs_before)
        .map(|(after, before)| {
            after.per_handoff(&before, &plan.fronts, &plan.ministries, plan.total)
        });
    let peak_rss_mb = proc::status_mib("VmHWM").unwrap_or(0.0);
    bar.finish_and_clear();

    let _ = stop.send(true);
    let latencies = merge_latencies(receivers).await?;
    let measured_count = (plan.total - plan.warmup) as f64;
    Ok(Measured {
        per_s: shared
            .measured_window_s()
            .map_or(0.0, |window| measured_count / window),
        latencies,
        lost: shared.missing(),
        receipts: shared.receipts(),
        counters: shared.counters.values(),
        cpu,
        peak_rss_mb,
        nats_msgs,
        payload_bytes: shared.payload_bytes().unwrap_or(0),
        phase_s,
        stored_events: None,
        unacked: unacked(js, &setup.agencies).await,
        first_error: shared.first_error(),
        plan,
    })
}

/// Each front office's adapter over `--connections` connections, shared by the callers.
struct Callers {
    pools: Vec<Vec<Client>>,
}

impl Callers {
    async fn connect(
        adapters: &Adapters,
        agencies: &Agencies,
        connections: usize,
    ) -> Result<Callers, BenchError> {
        let mut pools = Vec::new();
        for code in &agencies.fronts {
            let adapter = adapters.get(code)?;
            let mut pool = Vec::new();
            for _ in 0..connections {
                pool.push(adapter.client().await?);
            }
            pools.push(pool);
        }
        Ok(Callers { pools })
    }

    /// Sender `n`'s client for each front office, taking the connections in turn.
    fn for_sender(&self, n: usize) -> Vec<Client> {
        self.pools
            .iter()
            .map(|pool| pool[n % pool.len()].clone())
            .collect()
    }
}

/// Every agency's system reading its inbox until `stop`, each on a connection of its own.
async fn start_receivers(
    shared: &Arc<Shared>,
    agencies: &Agencies,
    adapters: &Adapters,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<Receiver>, BenchError> {
    let mut receivers = Vec::new();
    for code in agencies.all() {
        let client = adapters.get(code)?.client().await?;
        receivers.push(tokio::spawn(drive::receiver(
            shared.clone(),
            code.clone(),
            client,
            stop.clone(),
        )));
    }
    Ok(receivers)
}

/// The callers: `--concurrency` of them taking jobs in spread mode, one per (case, ministry)
/// pair in hot mode, each with the ministry's own client for its send-backs.
async fn start_senders(
    args: &BenchArgs,
    shared: &Arc<Shared>,
    callers: &Callers,
    adapters: &Adapters,
    agencies: &Agencies,
    pacer: Pacer,
) -> Result<Vec<JoinHandle<()>>, BenchError> {
    let plan = &shared.plan;
    let mut senders = Vec::new();
    match plan.mode {
        Mode::Spread => {
            for n in 0..args.concurrency {
                senders.push(tokio::spawn(drive::spread_sender(
                    shared.clone(),
                    callers.for_sender(n),
                    pacer.clone(),
                )));
            }
        }
        Mode::Hot { .. } | Mode::Growth { .. } => {
            let mut ministry_clients = Vec::new();
            for code in &agencies.ministries {
                ministry_clients.push(adapters.get(code)?.client().await?);
            }
            for pair in 0..plan.pairs() {
                let job = plan.job(pair as u64);
                senders.push(tokio::spawn(drive::hot_worker(
                    shared.clone(),
                    pair,
                    callers.for_sender(pair)[job.front].clone(),
                    ministry_clients[job.ministry].clone(),
                    pacer.clone(),
                    Duration::from_secs(args.drain_timeout),
                )));
            }
        }
    }
    Ok(senders)
}

/// Waits until every hand-off with a receipt has arrived (and in hot mode every send-back is
/// back at its front office), or `timeout`; then a short grace for duplicates.
async fn drain(shared: &Shared, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while (shared.missing() > 0 || shared.returns_pending() > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(DUPLICATE_GRACE).await;
}

/// The receivers' latency histograms as one, once they have stopped.
async fn merge_latencies(receivers: Vec<Receiver>) -> Result<Histogram<u64>, BenchError> {
    let mut latencies = Histogram::<u64>::new_with_bounds(1, drive::HISTOGRAM_MAX_US, 3)?;
    for receiver in receivers {
        let histogram = receiver.await.map_err(BenchError::task("a receiver"))??;
        latencies.add(&histogram)?;
    }
    Ok(latencies)
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
