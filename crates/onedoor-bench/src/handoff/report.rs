//! The one JSON line `onedoor bench` ends with, and the summary line before it.

use serde::Serialize;

use super::msgs::MsgsPerHandoff;
use super::phase::Measured;
use super::plan::Mode;
use super::raw::RawReport;
use super::{BenchArgs, Setup};
use crate::proc;

/// The one JSON line. Field order is the order printed.
///
/// Throughput counts measured hand-offs from the first measured call to the last measured
/// arrival; latency is from the start of each `HandOff` call to its arrival on the receiver's
/// `Inbox` stream. CPU figures cover the whole hand-off phase (warm-up included) divided by every
/// hand-off sent; in hot mode each hand-off also carries its send-back (two writes, two
/// deliveries), and so in growth mode (`--case-length`). `peak_rss_mb` is the process's `VmHWM` after the hand-off phase.
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
    /// NATS messages per hand-off between each side's adapters and the servers (`/connz`).
    nats_msgs_per_handoff: Option<MsgsPerHandoff>,
    /// `development` (one plain node, R1) or `production` (see `--production`).
    mode: &'static str,
    /// `spread`, `hot` or `case-length`.
    pattern: &'static str,
    /// Growth mode: N, and the events a case held before its first and its last measured
    /// hand-off.
    case_length: Option<u64>,
    case_events_from: Option<u64>,
    case_events_to: Option<u64>,
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

impl Report {
    /// The figures of a finished run.
    pub(super) fn new(
        args: &BenchArgs,
        setup: &Setup,
        measured: Measured,
        raw: RawReport,
        nats_version: Option<String>,
        load_1m_start: Option<f64>,
    ) -> Report {
        let agencies = &setup.agencies;
        let handoffs = (measured.plan.total) as f64;
        let per_1000 = |cpu: f64| cpu / handoffs * 1_000.0;
        let latencies = &measured.latencies;
        Report {
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
            nats_msgs_per_handoff: measured.nats_msgs,
            mode: if args.production {
                "production"
            } else {
                "development"
            },
            pattern: measured.plan.mode.name(),
            case_length: args.case_length,
            case_events_from: measured.plan.measured_case_events().map(|(from, _)| from),
            case_events_to: measured.plan.measured_case_events().map(|(_, to)| to),
            count: measured.plan.total - measured.plan.warmup,
            warmup: measured.plan.warmup,
            cases: measured.plan.cases(),
            agencies: agencies.fronts.len() + agencies.ministries.len(),
            front_offices: agencies.fronts.len(),
            ministries: agencies.ministries.len(),
            concurrency: match measured.plan.mode {
                Mode::Spread => args.concurrency,
                Mode::Hot { .. } | Mode::Growth { .. } => measured.plan.pairs(),
            },
            inbox_window: setup.inbox.max_in_flight,
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
        }
    }

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
