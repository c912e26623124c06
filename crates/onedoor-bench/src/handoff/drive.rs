//! The load: front offices call `HandOff`, ministries' systems read `Inbox` and `Ack`, and every
//! hand-off is timed from the start of its `HandOff` call to its arrival on the receiver's
//! stream, and counted by event id. Which call is which comes from the [`Plan`].

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use onedoor_adapter::idempotency::IdKey;
use onedoor_case::{AgencyCode, CaseId, EventId};
use onedoor_proto::v1;
use onedoor_proto::v1::case_event::Body;
use prost::Message as _;
use tokio::sync::{Notify, mpsc, watch};

use super::bus::Client;
use super::plan::Plan;
use crate::BenchError;

/// Retries of a call that failed in a way the contract says to retry with the same key
/// (ABORTED: lost the case to other writers too often; UNAVAILABLE: the bus hiccuped).
const MAX_RETRIES: u32 = 20;

/// Latency histogram bounds, microseconds: 1 µs to 10 minutes, 3 significant digits.
pub(super) const HISTOGRAM_MAX_US: u64 = 600_000_000;

const RECEIPT_NONE: u8 = 0;
const RECEIPT_OK: u8 = 1;
const RECEIPT_FAILED: u8 = 2;

/// Counters every task adds to.
#[derive(Debug, Default)]
pub struct Counters {
    /// Calls that failed for good (after retries), hand-offs and send-backs.
    pub errors: AtomicU64,
    pub retries: AtomicU64,
    /// Deliveries of an event id already delivered.
    pub duplicated: AtomicU64,
    /// Deliveries with `delivery_attempt > 1`.
    pub redelivered: AtomicU64,
    /// A receipt or a delivered event whose event id is not the one its key derives.
    pub mismatched: AtomicU64,
    /// Events not written by this run (another writer on a shared server).
    pub foreign: AtomicU64,
    /// Send-backs written (hot mode) and delivered back to the front office.
    pub sendbacks: AtomicU64,
    pub returns_delivered: AtomicU64,
    /// Ack calls that failed, and event ids an Ack said it did not know.
    pub ack_errors: AtomicU64,
    pub ack_unknown: AtomicU64,
    pub payload_bytes: AtomicU64,
    pub payload_events: AtomicU64,
    /// Largest delay between a hand-off's scheduled time (at `--rate`) and its call, in µs.
    pub max_send_lag_us: AtomicU64,
}

/// Plain numbers out of the shared counters, once every task has finished.
#[derive(Debug, Default)]
pub struct CounterValues {
    pub errors: u64,
    pub retries: u64,
    pub duplicated: u64,
    pub redelivered: u64,
    pub mismatched: u64,
    pub foreign: u64,
    pub sendbacks: u64,
    pub ack_errors: u64,
    pub ack_unknown: u64,
    pub max_send_lag_us: u64,
}

impl Counters {
    pub fn values(&self) -> CounterValues {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CounterValues {
            errors: load(&self.errors),
            retries: load(&self.retries),
            duplicated: load(&self.duplicated),
            redelivered: load(&self.redelivered),
            mismatched: load(&self.mismatched),
            foreign: load(&self.foreign),
            sendbacks: load(&self.sendbacks),
            ack_errors: load(&self.ack_errors),
            ack_unknown: load(&self.ack_unknown),
            max_send_lag_us: load(&self.max_send_lag_us),
        }
    }
}

/// What the senders and receivers share.
pub struct Shared {
    pub plan: Plan,
    pub case_ids: Vec<CaseId>,
    /// Per front office in the plan: the key of its event ids.
    front_ids: Vec<IdKey>,
    epoch: Instant,
    /// Per job: call start in ns since `epoch`, plus one (0: not started).
    started: Vec<AtomicU64>,
    receipt: Vec<AtomicU8>,
    delivered: Vec<AtomicU32>,
    first_measured_start: AtomicU64,
    last_measured_delivery: AtomicU64,
    /// Hot mode: one per (case, ministry) pair, poked when that pair's hand-off arrives.
    arrived: Vec<Notify>,
    pub counters: Counters,
    first_error: Mutex<Option<String>>,
    pub progress: ProgressBar,
}

impl Shared {
    pub fn new(
        plan: Plan,
        case_ids: Vec<CaseId>,
        front_ids: Vec<IdKey>,
        progress: ProgressBar,
    ) -> Self {
        let n = usize::try_from(plan.total).unwrap_or(usize::MAX);
        let pairs = plan.pairs();
        Shared {
            case_ids,
            front_ids,
            epoch: Instant::now(),
            started: (0..n).map(|_| AtomicU64::new(0)).collect(),
            receipt: (0..n).map(|_| AtomicU8::new(RECEIPT_NONE)).collect(),
            delivered: (0..n).map(|_| AtomicU32::new(0)).collect(),
            first_measured_start: AtomicU64::new(u64::MAX),
            last_measured_delivery: AtomicU64::new(0),
            arrived: (0..pairs).map(|_| Notify::new()).collect(),
            counters: Counters::default(),
            first_error: Mutex::new(None),
            progress,
            plan,
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn slot(&self, j: u64) -> usize {
        usize::try_from(j).unwrap_or(usize::MAX)
    }

    pub fn expected_event_id(&self, j: u64) -> EventId {
        let job = self.plan.job(j);
        self.front_ids[job.front].event_id(
            &self.plan.fronts[job.front],
            &self.plan.handoff_key(j),
            self.case_ids[job.case],
        )
    }

    fn count_retry(&self) {
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, what: String) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if first.is_none() {
            tracing::warn!(error = %what, "bench call failed");
            *first = Some(what);
        }
    }

    pub fn first_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Hand-offs with a receipt that have not arrived.
    pub fn missing(&self) -> u64 {
        self.receipt
            .iter()
            .zip(&self.delivered)
            .filter(|(r, d)| {
                r.load(Ordering::Acquire) == RECEIPT_OK && d.load(Ordering::Acquire) == 0
            })
            .count() as u64
    }

    /// Send-backs written that have not reached their front office's inbox yet.
    pub fn returns_pending(&self) -> u64 {
        let c = &self.counters;
        c.sendbacks
            .load(Ordering::Acquire)
            .saturating_sub(c.returns_delivered.load(Ordering::Acquire))
    }

    pub fn receipts(&self) -> u64 {
        self.receipt
            .iter()
            .filter(|r| r.load(Ordering::Acquire) == RECEIPT_OK)
            .count() as u64
    }

    /// Measured hand-offs over the time from the first measured call to the last measured
    /// arrival.
    pub fn measured_window_s(&self) -> Option<f64> {
        let start = self.first_measured_start.load(Ordering::Acquire);
        let end = self.last_measured_delivery.load(Ordering::Acquire);
        (start != u64::MAX && end > start).then(|| (end - start) as f64 / 1e9)
    }

    pub fn payload_bytes(&self) -> Option<u64> {
        let events = self.counters.payload_events.load(Ordering::Relaxed);
        (events > 0).then(|| self.counters.payload_bytes.load(Ordering::Relaxed) / events)
    }
}

fn retryable(code: tonic::Code) -> bool {
    matches!(code, tonic::Code::Aborted | tonic::Code::Unavailable)
}

/// Makes `call` again (the same request, so the same idempotency key) while it fails with a
/// status the contract says to retry, up to [`MAX_RETRIES`] times, `step` × attempt apart;
/// `on_retry` counts each retry. Returns the last outcome.
///
/// Each attempt's future owns its client and request (clones: a client is a handle on a shared
/// connection), so the callers' futures stay `Send` for `tokio::spawn`.
async fn with_retries<T, F>(
    step: Duration,
    mut on_retry: impl FnMut(),
    mut call: impl FnMut() -> F,
) -> Result<tonic::Response<T>, tonic::Status>
where
    F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(status) if retryable(status.code()) && attempt < MAX_RETRIES => {
                attempt += 1;
                on_retry();
                tokio::time::sleep(step * attempt).await;
            }
            outcome => return outcome,
        }
    }
}

/// Opens the plan's cases, `concurrency` calls at a time, each from its origin front office.
pub async fn open_cases(
    plan: &Plan,
    fronts: &[Client],
    service: &str,
    concurrency: usize,
    progress: &ProgressBar,
) -> Result<Vec<CaseId>, BenchError> {
    let opened: Vec<Result<CaseId, BenchError>> = futures::stream::iter(0..plan.cases())
        .map(|case| {
            let client = fronts[plan.front_of_case(case)].clone();
            let request = v1::OpenCaseRequest {
                service: service.to_owned(),
                citizen_ref: format!("BENCH-{case}"),
                summary: "onedoor bench".into(),
                idempotency_key: plan.open_key(case),
                actor: "bench".into(),
                documents: vec![],
            };
            async move {
                let receipt = with_retries(
                    Duration::from_millis(5),
                    || {},
                    || {
                        let (mut client, request) = (client.clone(), request.clone());
                        async move { client.open_case(request).await }
                    },
                )
                .await
                .map_err(BenchError::call(format!("opening case {case}")))?;
                progress.inc(1);
                Ok(CaseId::parse(&receipt.get_ref().case_id)?)
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    opened.into_iter().collect()
}

/// When each call may start: at `--rate`, slot `n` is due at `start + n / rate`.
#[derive(Clone)]
pub struct Pacer {
    start: Instant,
    rate: Option<f64>,
    next: Arc<AtomicU64>,
}

impl Pacer {
    pub fn new(rate: Option<f64>) -> Self {
        Pacer {
            start: Instant::now(),
            rate,
            next: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Waits for the next slot and says how late it is.
    async fn wait(&self, slot: u64) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        let due = self.start + Duration::from_secs_f64(slot as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        Instant::now().saturating_duration_since(due)
    }

    fn take(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// One `HandOff` call for job `j` (retried with the same key where the contract says so).
/// Returns whether it got a receipt.
async fn hand_off(shared: &Shared, client: &Client, j: u64) -> bool {
    let plan = &shared.plan;
    let job = plan.job(j);
    let request = v1::HandOffRequest {
        case_id: shared.case_ids[job.case].to_string(),
        to_agency: plan.ministries[job.ministry].to_string(),
        instructions: plan.instructions(j),
        idempotency_key: plan.handoff_key(j),
        actor: "bench".into(),
        ..Default::default()
    };
    let started = shared.now_ns();
    shared.started[shared.slot(j)].store(started + 1, Ordering::Release);
    if plan.is_measured(j) {
        shared
            .first_measured_start
            .fetch_min(started, Ordering::AcqRel);
    }
    let outcome = with_retries(
        Duration::from_millis(1),
        || shared.count_retry(),
        || {
            let (mut client, request) = (client.clone(), request.clone());
            async move { client.hand_off(request).await }
        },
    )
    .await;
    match outcome {
        Ok(receipt) => {
            if receipt.get_ref().event_id != shared.expected_event_id(j).to_string() {
                shared.counters.mismatched.fetch_add(1, Ordering::Relaxed);
            }
            shared.receipt[shared.slot(j)].store(RECEIPT_OK, Ordering::Release);
            true
        }
        Err(status) => {
            shared.receipt[shared.slot(j)].store(RECEIPT_FAILED, Ordering::Release);
            shared.error(format!("HandOff {j}: {status}"));
            false
        }
    }
}

/// A spread-mode caller: takes the next job until none is left.
pub async fn spread_sender(shared: Arc<Shared>, fronts: Vec<Client>, pacer: Pacer) {
    loop {
        let j = pacer.take();
        if j >= shared.plan.total {
            return;
        }
        let lag = pacer.wait(j).await;
        note_lag(&shared, lag);
        let front = shared.plan.job(j).front;
        hand_off(&shared, &fronts[front], j).await;
    }
}

fn note_lag(shared: &Shared, lag: Duration) {
    let us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
    shared
        .counters
        .max_send_lag_us
        .fetch_max(us, Ordering::Relaxed);
}

/// A hot-mode worker for one (case, ministry) pair: hand off, wait for the ministry's system
/// to have it, send it back, again.
pub async fn hot_worker(
    shared: Arc<Shared>,
    pair: usize,
    front: Client,
    ministry: Client,
    pacer: Pacer,
    arrival_timeout: Duration,
) {
    let pairs = shared.plan.pairs() as u64;
    let mut j = pair as u64;
    while j < shared.plan.total {
        let lag = pacer.wait(pacer.take()).await;
        note_lag(&shared, lag);
        if hand_off(&shared, &front, j).await {
            if !wait_for_arrival(&shared, pair, j, arrival_timeout).await {
                shared.error(format!(
                    "hand-off {j} did not arrive within {arrival_timeout:?}"
                ));
                return;
            }
            if !send_back(&shared, &ministry, j).await {
                // The ministry still holds the task, so this pair cannot hand off again.
                return;
            }
        }
        j += pairs;
    }
}

async fn wait_for_arrival(shared: &Shared, pair: usize, j: u64, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = shared.arrived[pair].notified();
        if shared.delivered[shared.slot(j)].load(Ordering::Acquire) > 0 {
            return true;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return shared.delivered[shared.slot(j)].load(Ordering::Acquire) > 0;
        }
    }
}

async fn send_back(shared: &Shared, ministry: &Client, j: u64) -> bool {
    let job = shared.plan.job(j);
    let request = v1::SendBackRequest {
        case_id: shared.case_ids[job.case].to_string(),
        reason: "bench: returned to the front office".into(),
        idempotency_key: shared.plan.sendback_key(j),
        actor: "bench".into(),
    };
    let outcome = with_retries(
        Duration::from_millis(1),
        || shared.count_retry(),
        || {
            let (mut ministry, request) = (ministry.clone(), request.clone());
            async move { ministry.send_back(request).await }
        },
    )
    .await;
    match outcome {
        Ok(_) => {
            shared.counters.sendbacks.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(status) => {
            shared.error(format!("SendBack {j}: {status}"));
            false
        }
    }
}

/// One agency's system: reads its `Inbox` stream until `stop`, times and counts what arrives,
/// and acknowledges everything through an `Ack` loop that batches whatever is waiting.
/// Returns the latency histogram (µs) of the measured hand-offs it received.
pub async fn receiver(
    shared: Arc<Shared>,
    agency: AgencyCode,
    mut client: Client,
    mut stop: watch::Receiver<bool>,
) -> Result<Histogram<u64>, BenchError> {
    let mut latencies = Histogram::<u64>::new_with_bounds(1, HISTOGRAM_MAX_US, 3)?;
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let acker = tokio::spawn(ack_loop(shared.clone(), client.clone(), ack_rx));
    let mut stream = client
        .inbox(v1::InboxRequest { max_in_flight: 0 })
        .await
        .map_err(BenchError::call(format!("opening {agency}'s inbox")))?
        .into_inner();
    loop {
        let item = tokio::select! {
            item = stream.message() => item,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let item = match item {
            Ok(Some(item)) => item,
            Ok(None) => {
                return Err(BenchError::Failed(format!("{agency}'s inbox stream ended")));
            }
            Err(status) => {
                return Err(BenchError::Call {
                    action: format!("{agency}'s inbox stream failed"),
                    source: status,
                });
            }
        };
        let now = shared.now_ns();
        let Some(event) = item.event else {
            continue;
        };
        if item.delivery_attempt > 1 {
            shared.counters.redelivered.fetch_add(1, Ordering::Relaxed);
        }
        match &event.body {
            Some(Body::HandedOff(_)) => {
                arrived(&shared, &event, now, &mut latencies);
            }
            Some(Body::SentBack(_))
                if event.idempotency_key.starts_with(&shared.plan.key_prefix()) =>
            {
                shared
                    .counters
                    .returns_delivered
                    .fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                shared.counters.foreign.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Everything delivered is acknowledged, as a ministry system would once stored.
        let _ = ack_tx.send(event.event_id);
    }
    drop(ack_tx);
    acker.await.map_err(BenchError::task("ack loop"))?;
    Ok(latencies)
}

/// Records one hand-off's arrival.
fn arrived(shared: &Shared, event: &v1::CaseEvent, now: u64, latencies: &mut Histogram<u64>) {
    let Some(j) = shared
        .plan
        .parse_handoff_key(&event.idempotency_key)
        .filter(|j| *j < shared.plan.total)
    else {
        shared.counters.foreign.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if event.event_id != shared.expected_event_id(j).to_string() {
        shared.counters.mismatched.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let slot = shared.slot(j);
    if shared.delivered[slot].fetch_add(1, Ordering::AcqRel) > 0 {
        shared.counters.duplicated.fetch_add(1, Ordering::Relaxed);
        return;
    }
    shared
        .counters
        .payload_bytes
        .fetch_add(event.encoded_len() as u64, Ordering::Relaxed);
    shared
        .counters
        .payload_events
        .fetch_add(1, Ordering::Relaxed);
    let started = shared.started[slot].load(Ordering::Acquire);
    if shared.plan.is_measured(j) && started > 0 {
        latencies.saturating_record(now.saturating_sub(started - 1) / 1_000);
        shared
            .last_measured_delivery
            .fetch_max(now, Ordering::AcqRel);
    }
    if shared.plan.pairs() > 0 {
        let pair = (j % shared.plan.pairs() as u64) as usize;
        shared.arrived[pair].notify_one();
    }
    shared.progress.inc(1);
}

/// Acknowledges in batches: while one `Ack` call is out, ids pile up for the next.
async fn ack_loop(shared: Arc<Shared>, client: Client, mut ids: mpsc::UnboundedReceiver<String>) {
    let max = onedoor_proto::limits::ACK_EVENT_IDS_MAX;
    while let Some(first) = ids.recv().await {
        let mut batch = vec![first];
        while batch.len() < max {
            match ids.try_recv() {
                Ok(id) => batch.push(id),
                Err(_) => break,
            }
        }
        let request = v1::AckRequest { event_ids: batch };
        let outcome = with_retries(
            Duration::from_millis(1),
            || {},
            || {
                let (mut client, request) = (client.clone(), request.clone());
                async move { client.ack(request).await }
            },
        )
        .await;
        match outcome {
            Ok(response) => {
                shared.counters.ack_unknown.fetch_add(
                    response.get_ref().unknown_event_ids.len() as u64,
                    Ordering::Relaxed,
                );
            }
            Err(status) => {
                shared.counters.ack_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%status, "Ack failed");
            }
        }
    }
}
