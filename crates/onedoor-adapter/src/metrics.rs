//! Metric names and descriptions, in one place. The library only records; the binary decides
//! whether and where to export (Prometheus `/metrics`). Calls (`onedoor_adapter_rpc_total` by
//! agency, method and code; `onedoor_adapter_rpc_seconds`) are counted by the server builder's
//! layer in `onedoor_grpc::observe`.

pub const EVENTS_PUBLISHED: &str = "onedoor_events_published_total";
pub const INBOX_DELIVERED: &str = "onedoor_inbox_delivered_total";
pub const INBOX_REDELIVERED: &str = "onedoor_inbox_redelivered_total";
pub const INBOX_ACKED: &str = "onedoor_inbox_acked_total";
pub const INBOX_IN_FLIGHT: &str = "onedoor_inbox_in_flight";
pub const QUARANTINED: &str = "onedoor_quarantined_events_total";
pub const WEBHOOK_POSTS: &str = "onedoor_webhook_posts_total";
pub const OUTBOX_PENDING: &str = "onedoor_outbox_pending";
pub const OUTBOX_DELIVERED: &str = "onedoor_outbox_delivered_total";
pub const OUTBOX_CONFLICTS: &str = "onedoor_outbox_conflicts_total";
pub const CAPITAL_CONNECTED: &str = "onedoor_office_capital_connected";

/// Registers descriptions with whatever recorder is installed (a no-op without one).
pub fn describe() {
    metrics::describe_counter!(
        EVENTS_PUBLISHED,
        "case events stored in JetStream, by agency and kind"
    );
    metrics::describe_counter!(
        INBOX_DELIVERED,
        "inbox items sent to the agency's system, by agency"
    );
    metrics::describe_counter!(
        INBOX_REDELIVERED,
        "inbox items sent again after no ack, by agency"
    );
    metrics::describe_counter!(
        INBOX_ACKED,
        "inbox items acknowledged by the agency's system, by agency"
    );
    metrics::describe_counter!(
        QUARANTINED,
        "case messages not believed (bad signature, forged sender, broken chain, rules…), by reason"
    );
    metrics::describe_counter!(
        WEBHOOK_POSTS,
        "inbox items POSTed to the agency's webhook, by agency and outcome (delivered, failed, stuck)"
    );
    metrics::describe_gauge!(
        OUTBOX_PENDING,
        "a district office's events waiting in its outbox for the link, by agency"
    );
    metrics::describe_counter!(
        OUTBOX_DELIVERED,
        "a district office's outbox events the national stream acknowledged, by agency"
    );
    metrics::describe_counter!(
        OUTBOX_CONFLICTS,
        "a district office's outbox events refused because the case changed nationally (kept for staff), by agency"
    );
    metrics::describe_gauge!(
        CAPITAL_CONNECTED,
        "1 while a district office's adapter is connected to the capital, else 0, by agency"
    );
    metrics::describe_gauge!(
        INBOX_IN_FLIGHT,
        "inbox items sent and not yet acknowledged, by agency"
    );
}
