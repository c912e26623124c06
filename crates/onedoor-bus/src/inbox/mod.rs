//! The agency inbox: the events addressed to one agency, delivered at least once until that
//! agency's system acknowledges them (`docs/architecture.md`, "The public contract").
//!
//! # Parts
//!
//! - [`settings`]: [`InboxSettings`], defaults and `validate()`.
//! - [`consumer`]: [`ensure_inbox`], the durable pull consumer `inbox-<AGENCY>` on
//!   `onedoor.v1.case.*.*.<AGENCY>`: deliver all, explicit ack, `max_deliver` bounded,
//!   `backoff` (whose first step is the ack wait), `max_ack_pending` = the in-flight bound, no
//!   inactivity threshold.
//! - [`session`]: [`Inbox`], one client's session: `next()` yields [`InboxDelivery`]s.
//! - [`in_flight`]: [`InFlight`], the shared registry `Ack` drains by event id.
//!
//! # How the adapter uses it
//!
//! ```text
//! let in_flight = InFlight::new(js, agency, settings)?;      // once per agency
//! let _recorder = StuckRecorder::spawn(js, &agency).await?;  // once per agency
//! // each Inbox gRPC call:
//! let mut inbox = Inbox::open_with(in_flight.clone()).await?;
//! loop { let delivery = inbox.next().await?; /* send to the client */ }
//! // each Ack gRPC call:
//! let outcome = in_flight.ack(&event_ids).await;
//! ```
//!
//! # Guarantees and their limits
//!
//! - **At least once.** An event is delivered until acknowledged, at most `max_deliver` times;
//!   then it is recorded in `ONEDOOR_STUCK` (see [`crate::stuck`]). Receivers de-duplicate by
//!   event id: a slow ack can cross a redelivery.
//! - **Acknowledged means gone.** `ack` waits for the server's confirmation (double ack), so an
//!   event reported acked is not delivered again, across restarts of the adapter or the server.
//! - **Bounded window.** A session holds at most `max_in_flight` deliveries it handed out or
//!   asked for; a held delivery stops counting when its ack wait ends (the server resends it).
//! - **Transient trouble is not an error.** A lost pull (server restart, reconnect) is noticed
//!   by its own deadline (`pull_expires` + 2 s), not by heartbeats: async-nats 0.51's one-shot
//!   `Batch` neither reports missing heartbeats nor wakes reliably after one, so none are asked.
//! - **Malformed messages** are recorded as stuck, then terminated, so they cannot take the
//!   window's slots forever.
//!
//! # Releasing
//!
//! When a session ends (dropped, or [`Inbox::close`]) its held deliveries are NAKed with a delay
//! of what was left of their ack wait, capped by [`InboxSettings::release_delay_cap`]. A plain
//! NAK would redeliver at once and ignore the backoff (docs/jetstream.md §3), so a client that
//! crashes on an event would use up its attempts in seconds; the remaining ack wait keeps the
//! server's pacing, and the cap means a reconnecting client does not wait out a 30-minute step.
//! Deliveries on their last attempt are not NAKed (that would end them at once); a late `Ack`
//! may still save them, else they are recorded as stuck when their ack wait ends.

pub mod consumer;
pub mod in_flight;
pub mod session;
pub mod settings;

pub use consumer::{InboxEnsured, ensure_inbox, ensure_inbox_outcome, inbox_consumer_config};
pub use in_flight::{AckFailure, AckOutcome, InFlight, InboxStats};
pub use session::{Inbox, InboxDelivery};
pub use settings::InboxSettings;
