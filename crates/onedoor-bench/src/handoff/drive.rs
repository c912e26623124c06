//! The load: front offices call `HandOff`, ministries' systems read `Inbox` and `Ack`, and every
//! hand-off is timed from the start of its `HandOff` call to its arrival on the receiver's
//! stream, and counted by event id.
//!
//! # Legal event patterns
//!
//! The case rules allow one open task per agency per case, and a hand-off needs the sender to
//! be the case's origin (or an accepted task holder). So:
//!
//! - **spread** (default): every case is opened first; then each case receives one hand-off to
//!   each ministry, from its origin. Job `j` goes to ministry `j mod M`, and cases are offset per
//!   ministry, so consecutive calls touch different cases and different inboxes, and calls in
//!   flight at once never share a case (while there are more cases than callers).
//! - **hot** (`--hot-cases N`): N cases, and for each (case, ministry) pair one worker loops:
//!   hand off to the ministry, wait until the ministry's system has it, the ministry sends it
//!   back (ending its task), repeat. The N × M workers of a case race for it: every write loses
//!   and re-decides when another landed first, and each case's history grows by two events per
//!   hand-off.
//!
//! Job numbers are carried in the idempotency key (`bench-<run>-<j>`), which the event keeps,
//! so a receiver knows which call it is looking at; the event id it must have is derived from
//! that key exactly as the adapter derives it.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use onedoor_case::{AgencyCode, CaseId, EventId};
use onedoor_proto::v1;
use onedoor_proto::v1::case_event::Body;
use prost::Message as _;
use tokio::sync::{Notify, mpsc, watch};

use super::bus::Client;
use crate::BenchError;

/// Retries of a call that failed in a way the contract says to retry with the same key
/// (ABORTED: lost the case to other writers too often; UNAVAILABLE: the bus hiccuped).
const MAX_RETRIES: u32 = 20;

/// Latency histogram bounds, microseconds: 1 µs to 10 minutes, 3 significant digits.
const HISTOGRAM_MAX_US: u64 = 600_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Spread,
    Hot { cases: usize },
}

/// Which calls the run makes. Pure: job `j` always means the same case, sender and receiver.
#[derive(Debug, Clone)]
pub struct Plan {
    pub run: String,
    pub mode: Mode,
    pub fronts: Vec<AgencyCode>,
    pub ministries: Vec<AgencyCode>,
    /// Jobs `0..warmup` are sent but left out of the figures.
    pub warmup: u64,
    pub total: u64,
    pub instructions_bytes: usize,
}

/// One hand-off: which case, from which front office, to which ministry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    pub case: usize,
    pub front: usize,
    pub ministry: usize,
}

impl Plan {
    /// Cases to open before the hand-offs start.
    pub fn cases(&self) -> usize {
        match self.mode {
            Mode::Spread => usize::try_from(self.total.div_ceil(self.ministries.len() as u64))
                .unwrap_or(usize::MAX),
            Mode::Hot { cases } => cases,
        }
    }

    /// (case, ministry) pairs: the hot mode's workers.
    pub fn pairs(&self) -> usize {
        match self.mode {
            Mode::Spread => 0,
            Mode::Hot { cases } => cases * self.ministries.len(),
        }
    }

    pub fn front_of_case(&self, case: usize) -> usize {
        case % self.fronts.len()
    }

    pub fn job(&self, j: u64) -> Job {
        let m = self.ministries.len();
        let (case, ministry) = match self.mode {
            Mode::Spread => {
                let cases = self.cases();
                let ministry = (j % m as u64) as usize;
                let k = (j / m as u64) as usize;
                // Offset each ministry's walk over the cases, so that the calls in flight at
                // once are on different cases.
                ((k + ministry * (cases / m).max(1)) % cases, ministry)
            }
            Mode::Hot { .. } => {
                let pair = (j % self.pairs() as u64) as usize;
                (pair / m, pair % m)
            }
        };
        Job {
            case,
            front: self.front_of_case(case),
            ministry,
        }
    }

    pub fn is_measured(&self, j: u64) -> bool {
        j >= self.warmup
    }

    fn key_prefix(&self) -> String {
        format!("bench-{}-", self.run)
    }

    pub fn handoff_key(&self, j: u64) -> String {
        format!("bench-{}-{j}", self.run)
    }

    pub fn open_key(&self, case: usize) -> String {
        format!("bench-{}-open-{case}", self.run)
    }

    pub fn sendback_key(&self, j: u64) -> String {
        format!("bench-{}-back-{j}", self.run)
    }

    /// The job number in a hand-off's idempotency key, if the key is this run's.
    pub fn parse_handoff_key(&self, key: &str) -> Option<u64> {
        key.strip_prefix(&self.key_prefix())?.parse().ok()
    }

    /// Padded to `instructions_bytes`, so events have the payload size asked for.
    pub fn instructions(&self, j: u64) -> String {
        let mut text = format!("bench {} hand-off {j}: please review. ", self.run);
        while text.len() < self.instructions_bytes {
            text.push_str("documents attached; see the case file. ");
        }
        text.truncate(self.instructions_bytes);
        text
    }
}

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

/// What the senders and receivers share.
pub struct Shared {
    pub plan: Plan,
    pub case_ids: Vec<CaseId>,
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
    pub fn new(plan: Plan, case_ids: Vec<CaseId>, progress: ProgressBar) -> Self {
        let n = usize::try_from(plan.total).unwrap_or(usize::MAX);
        let pairs = plan.pairs();
        Shared {
            case_ids,
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
        onedoor_adapter::idempotency::event_id(
            &self.plan.fronts[job.front],
            &self.plan.handoff_key(j),
            self.case_ids[job.case],
        )
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
            let mut client = fronts[plan.front_of_case(case)].clone();
            let request = v1::OpenCaseRequest {
                service: service.to_owned(),
                citizen_ref: format!("BENCH-{case}"),
                summary: "onedoor bench".into(),
                idempotency_key: plan.open_key(case),
                actor: "bench".into(),
                documents: vec![],
            };
            async move {
                let mut attempt = 0;
                loop {
                    match client.open_case(request.clone()).await {
                        Ok(receipt) => {
                            progress.inc(1);
                            return CaseId::parse(&receipt.get_ref().case_id)
                                .map_err(BenchError::from);
                        }
                        Err(status) if retryable(status.code()) && attempt < MAX_RETRIES => {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                        }
                        Err(status) => {
                            return Err(BenchError::Call {
                                action: format!("opening case {case}"),
                                source: status,
                            });
                        }
                    }
                }
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
async fn hand_off(shared: &Shared, client: &mut Client, j: u64) -> bool {
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
    let mut attempt = 0;
    loop {
        match client.hand_off(request.clone()).await {
            Ok(receipt) => {
                if receipt.get_ref().event_id != shared.expected_event_id(j).to_string() {
                    shared.counters.mismatched.fetch_add(1, Ordering::Relaxed);
                }
                shared.receipt[shared.slot(j)].store(RECEIPT_OK, Ordering::Release);
                return true;
            }
            Err(status) if retryable(status.code()) && attempt < MAX_RETRIES => {
                attempt += 1;
                shared.counters.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(u64::from(attempt))).await;
            }
            Err(status) => {
                shared.receipt[shared.slot(j)].store(RECEIPT_FAILED, Ordering::Release);
                shared.error(format!("HandOff {j}: {status}"));
                return false;
            }
        }
    }
}

/// A spread-mode caller: takes the next job until none is left.
pub async fn spread_sender(shared: Arc<Shared>, mut fronts: Vec<Client>, pacer: Pacer) {
    loop {
        let j = pacer.take();
        if j >= shared.plan.total {
            return;
        }
        let lag = pacer.wait(j).await;
        note_lag(&shared, lag);
        let front = shared.plan.job(j).front;
        hand_off(&shared, &mut fronts[front], j).await;
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
    mut front: Client,
    mut ministry: Client,
    pacer: Pacer,
    arrival_timeout: Duration,
) {
    let pairs = shared.plan.pairs() as u64;
    let mut j = pair as u64;
    while j < shared.plan.total {
        let lag = pacer.wait(pacer.take()).await;
        note_lag(&shared, lag);
        if hand_off(&shared, &mut front, j).await {
            if !wait_for_arrival(&shared, pair, j, arrival_timeout).await {
                shared.error(format!(
                    "hand-off {j} did not arrive within {arrival_timeout:?}"
                ));
                return;
            }
            if !send_back(&shared, &mut ministry, j).await {
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

async fn send_back(shared: &Shared, ministry: &mut Client, j: u64) -> bool {
    let job = shared.plan.job(j);
    let request = v1::SendBackRequest {
        case_id: shared.case_ids[job.case].to_string(),
        reason: "bench: returned to the front office".into(),
        idempotency_key: shared.plan.sendback_key(j),
        actor: "bench".into(),
    };
    let mut attempt = 0;
    loop {
        match ministry.send_back(request.clone()).await {
            Ok(_) => {
                shared.counters.sendbacks.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            Err(status) if retryable(status.code()) && attempt < MAX_RETRIES => {
                attempt += 1;
                shared.counters.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(u64::from(attempt))).await;
            }
            Err(status) => {
                shared.error(format!("SendBack {j}: {status}"));
                return false;
            }
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
    if let Mode::Hot { .. } = shared.plan.mode {
        let pair = (j % shared.plan.pairs() as u64) as usize;
        shared.arrived[pair].notify_one();
    }
    shared.progress.inc(1);
}

/// Acknowledges in batches: while one `Ack` call is out, ids pile up for the next.
async fn ack_loop(
    shared: Arc<Shared>,
    mut client: Client,
    mut ids: mpsc::UnboundedReceiver<String>,
) {
    let max = onedoor_proto::limits::ACK_EVENT_IDS_MAX;
    while let Some(first) = ids.recv().await {
        let mut batch = vec![first];
        while batch.len() < max {
            match ids.try_recv() {
                Ok(id) => batch.push(id),
                Err(_) => break,
            }
        }
        let mut attempt = 0;
        loop {
            match client
                .ack(v1::AckRequest {
                    event_ids: batch.clone(),
                })
                .await
            {
                Ok(response) => {
                    shared.counters.ack_unknown.fetch_add(
                        response.get_ref().unknown_event_ids.len() as u64,
                        Ordering::Relaxed,
                    );
                    break;
                }
                Err(status) if retryable(status.code()) && attempt < MAX_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt))).await;
                }
                Err(status) => {
                    shared.counters.ack_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%status, "Ack failed");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(mode: Mode, total: u64) -> Plan {
        Plan {
            run: "R".into(),
            mode,
            fronts: vec![AgencyCode::parse("ODSC-VTE-SAYSETTHA").expect("code")],
            ministries: ["MOIC", "MOF", "MPWT"]
                .iter()
                .map(|c| AgencyCode::parse(c).expect("code"))
                .collect(),
            warmup: 0,
            total,
            instructions_bytes: 700,
        }
    }

    #[test]
    fn spread_jobs_give_each_case_one_hand_off_per_ministry() {
        let plan = plan(Mode::Spread, 3_000);
        let mut seen = std::collections::HashSet::new();
        for j in 0..plan.total {
            let job = plan.job(j);
            assert!(job.case < plan.cases());
            assert!(
                seen.insert((job.case, job.ministry)),
                "job {j} repeats {job:?}"
            );
        }
    }

    #[test]
    fn spread_calls_in_flight_together_are_on_different_cases() {
        let plan = plan(Mode::Spread, 30_000);
        let window = 64;
        for start in (0..plan.total - window).step_by(997) {
            let cases: std::collections::HashSet<usize> =
                (start..start + window).map(|j| plan.job(j).case).collect();
            assert_eq!(cases.len() as u64, window, "window at {start}");
        }
    }

    #[test]
    fn hot_jobs_cycle_over_every_case_and_ministry_pair() {
        let plan = plan(Mode::Hot { cases: 2 }, 60);
        assert_eq!(plan.pairs(), 6);
        assert_eq!(plan.job(0), plan.job(6));
        assert_eq!(plan.job(5).case, 1);
        assert_eq!(plan.job(5).ministry, 2);
    }

    #[test]
    fn instructions_have_the_asked_size_and_keys_parse_back() {
        let plan = plan(Mode::Spread, 10);
        assert_eq!(plan.instructions(7).len(), 700);
        assert_eq!(plan.parse_handoff_key(&plan.handoff_key(7)), Some(7));
        assert_eq!(plan.parse_handoff_key(&plan.open_key(7)), None);
        assert_eq!(plan.parse_handoff_key("bench-OTHER-7"), None);
    }
}
