//! The tracker's metric names, in one place, through the `metrics` facade: without a recorder
//! they cost nothing; the binary that installs an exporter (Prometheus) decides where they go.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Counter: events stored and projected (duplicates not counted).
pub const EVENTS_PROJECTED: &str = "onedoor_tracker_events_projected_total";
/// Counter: redelivered or duplicate events that changed nothing.
pub const EVENTS_DUPLICATE: &str = "onedoor_tracker_events_duplicate_total";
/// Counter: messages recorded as unusable (not a case event, or contradicting the case's log).
pub const MESSAGES_REJECTED: &str = "onedoor_tracker_messages_rejected_total";
/// Counter, label `reason`: messages not believed, with the adapter's reason labels
/// (`undecodable`, `subject_mismatch`, `bad_signature`, `broken_chain`, `rules`).
pub const QUARANTINED: &str = "onedoor_quarantined_events_total";
/// Counter: projected cases whose history failed signature or hash-chain verification.
pub const AUDIT_FAILURES: &str = "onedoor_tracker_audit_failures_total";
/// Gauge, label `agency`: open tasks past their due time (SLA breaches happening now).
pub const OVERDUE_TASKS: &str = "onedoor_tracker_overdue_tasks";
/// Counter: attempts to store a batch of events that failed (each retry counts).
pub const STORE_FAILURES: &str = "onedoor_tracker_store_failures_total";
/// Gauge: 1 while the projection's last write committed, 0 while its writes fail (nothing is
/// acknowledged then, and the stream holds what is not stored).
pub const STORE_HEALTHY: &str = "onedoor_tracker_store_healthy";

/// Gauge: district offices heard since the tracker started and silent for longer than the
/// bound (`docs/district-offices.md`).
pub const OFFICES_DISCONNECTED: &str = "onedoor_offices_disconnected";
/// Gauge, label `office`: seconds since the tracker last heard the office's status.
pub const OFFICE_SECONDS_SINCE_HEARD: &str = "onedoor_office_seconds_since_heard";
/// Gauge, label `office`: events waiting in the office's outbox, as it last said.
pub const OFFICE_OUTBOX_PENDING: &str = "onedoor_office_outbox_pending";

pub fn describe() {
    metrics::describe_gauge!(
        OFFICES_DISCONNECTED,
        "district offices not heard from within the silence bound"
    );
    metrics::describe_gauge!(
        OFFICE_SECONDS_SINCE_HEARD,
        "seconds since the tracker last heard a district office's status"
    );
    metrics::describe_gauge!(
        OFFICE_OUTBOX_PENDING,
        "events waiting in a district office's outbox, as the office last reported"
    );
    metrics::describe_counter!(
        EVENTS_PROJECTED,
        "case events stored and folded into the tracker's views"
    );
    metrics::describe_counter!(
        QUARANTINED,
        "case messages not believed, by reason (the same labels as the adapters')"
    );
    metrics::describe_counter!(
        EVENTS_DUPLICATE,
        "redelivered or duplicate case events that changed nothing"
    );
    metrics::describe_counter!(
        MESSAGES_REJECTED,
        "stream messages the tracker could not use (shown to operators)"
    );
    metrics::describe_counter!(
        AUDIT_FAILURES,
        "case histories that failed signature or hash-chain verification when projected"
    );
    metrics::describe_gauge!(
        OVERDUE_TASKS,
        "open tasks past their due time, by holding agency"
    );
    metrics::describe_counter!(
        STORE_FAILURES,
        "attempts to store a batch of case events that failed (disk full, read-only, database gone)"
    );
    metrics::describe_gauge!(
        STORE_HEALTHY,
        "1 while the tracker's writes commit, 0 while they fail and nothing is acknowledged"
    );
}

/// Remembers which agencies had overdue tasks, so an agency whose count drops to zero is set
/// to zero rather than left at its last value.
#[derive(Debug, Default)]
pub struct OverdueGauges {
    seen: Mutex<BTreeMap<String, u64>>,
}

impl OverdueGauges {
    pub fn update(&self, counts: &BTreeMap<String, u64>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for agency in seen.keys() {
            if !counts.contains_key(agency) {
                metrics::gauge!(OVERDUE_TASKS, "agency" => agency.clone()).set(0.0);
            }
        }
        for (agency, count) in counts {
            metrics::gauge!(OVERDUE_TASKS, "agency" => agency.clone()).set(*count as f64);
        }
        *seen = counts.clone();
    }

    /// The counts last published (the total is what a dashboard's "SLA breaches now" shows).
    pub fn current(&self) -> BTreeMap<String, u64> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
