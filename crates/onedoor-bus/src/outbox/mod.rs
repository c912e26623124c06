//! Store and forward for a district office on a weak link (`docs/district-offices.md`).
//!
//! The office runs its own nats-server beside its adapter (loopback only, a JetStream domain of
//! its own; not a leaf node: see `docs/district-offices.md` for why). The adapter's writes are
//! decided on what it knows of the case (the national history it read, and its own events still
//! waiting) and stored in the office node's `OUTBOX` stream; [`Forwarder`] publishes them to
//! the national `ONEDOOR` stream over the office's own client connection to the capital (its
//! nkey user, TLS), each case's entries in outbox order (several cases' at once),
//! each with its event id as `Nats-Msg-Id` (a replay after a flap is de-duplicated by the
//! national stream) and the case's expected last sequence (the national per-case check still
//! holds). An entry leaves the outbox only after the national stream acknowledged it; one the
//! national stream refuses as stale is kept in `OUTBOX_CONFLICTS` for staff, never dropped.
//!
//! - [`store`]: the office node's streams, the entry headers, [`Outbox`]: offline decisions, pending
//!   entries of a case.
//! - [`forwarder`]: [`Forwarder`], the task that empties the outbox into the national stream:
//!   one entry's delivery, its retries, its settling.
//! - [`pipeline`]: [`Forwarder::run`], several entries of different cases in flight at once.

pub mod forwarder;
pub mod pipeline;
pub mod store;

pub use forwarder::{Forwarder, ForwarderStats};
pub use store::{
    CONFLICT_STREAM, DELIVERED_STREAM, OUTBOX_STREAM, Outbox, OutboxWritten, PendingEntry,
    ensure_outbox_streams,
};

/// The pause before the office's client tries the capital again, after `attempts` failed
/// tries: at most a second, so a link that returns is used within about one (the client's
/// default waits up to 4 s); a try on a dead link costs only a TCP handshake.
pub fn link_reconnect_delay(attempts: usize) -> std::time::Duration {
    let tenths = u64::try_from(attempts).unwrap_or(u64::MAX).min(10);
    std::time::Duration::from_millis(100 * tenths)
}
