//! Store and forward for a district office on a weak link (`docs/district-offices.md`).
//!
//! The office runs its own nats-server beside its adapter (loopback only, a JetStream domain of
//! its own; not a leaf node: see `docs/district-offices.md` for why). The adapter's writes are
//! decided on what it knows of the case (the national history it read, and its own events still
//! waiting) and stored in the office node's `OUTBOX` stream; [`Forwarder`] publishes them to
//! the national `ONEDOOR` stream over the office's own client connection to the capital (its
//! nkey user, TLS), in outbox order,
//! each with its event id as `Nats-Msg-Id` (a replay after a flap is de-duplicated by the
//! national stream) and the case's expected last sequence (the national per-case check still
//! holds). An entry leaves the outbox only after the national stream acknowledged it; one the
//! national stream refuses as stale is kept in `OUTBOX_CONFLICTS` for staff, never dropped.
//!
//! - [`store`]: the office node's streams, the entry headers, [`Outbox`]: offline decisions, pending
//!   entries of a case.
//! - [`forwarder`]: [`Forwarder`], the task that empties the outbox into the national stream.

pub mod forwarder;
pub mod store;

pub use forwarder::{Forwarder, ForwarderStats};
pub use store::{
    CONFLICT_STREAM, DELIVERED_STREAM, OUTBOX_STREAM, Outbox, OutboxWritten, PendingEntry,
    ensure_outbox_streams,
};
