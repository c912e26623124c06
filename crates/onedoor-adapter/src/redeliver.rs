//! Stuck items put back in the agency's inbox (`Redeliver`).
//!
//! JetStream never delivers a message again once its consumer gave up on it (max deliveries),
//! and an agency may not republish another agency's event. So the adapter delivers the event
//! itself: it reads it from the case's log by its stream sequence, verifies it like any
//! delivery, and queues the item for the next `Inbox` stream it serves the agency. The stuck
//! record stays until the agency acknowledges that delivery, so a broken stream or an adapter
//! restart loses nothing: the item is still listed, and `Redeliver` can be called again.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use onedoor_bus::StuckRecord;
use onedoor_case::EventId;
use onedoor_proto::v1;
use tokio::sync::mpsc;

/// Redelivered items waiting for a stream, and those delivered but not acknowledged.
#[derive(Clone)]
pub struct Replays {
    queue: mpsc::UnboundedSender<v1::InboxItem>,
    /// Every stream's replay task takes from here; each item goes to one stream.
    next: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<v1::InboxItem>>>,
    state: Arc<Mutex<Pending>>,
}

#[derive(Default)]
struct Pending {
    /// Stream sequences queued and not yet handed to a stream.
    queued: BTreeSet<u64>,
    /// Delivered, not yet acknowledged: event id to stream sequence.
    delivered: HashMap<EventId, u64>,
}

impl Default for Replays {
    fn default() -> Self {
        let (queue, next) = mpsc::unbounded_channel();
        Replays {
            queue,
            next: Arc::new(tokio::sync::Mutex::new(next)),
            state: Arc::default(),
        }
    }
}

impl Replays {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` unless the same sequence already waits for a stream (a second Redeliver
    /// before the first was delivered changes nothing).
    pub fn queue(&self, item: v1::InboxItem) {
        if self.pending().queued.insert(item.stream_sequence) {
            // The receiver lives as long as `self`, so this cannot fail.
            let _ = self.queue.send(item);
        }
    }

    /// Whether a redelivery of `sequence` is queued or awaits its Ack here.
    pub fn is_pending(&self, sequence: u64) -> bool {
        let pending = self.pending();
        pending.queued.contains(&sequence) || pending.delivered.values().any(|s| *s == sequence)
    }

    /// The next queued item, once there is one (cancel-safe: an item is taken only when
    /// returned).
    pub async fn next(&self) -> Option<v1::InboxItem> {
        let item = self.next.lock().await.recv().await?;
        Some(item)
    }

    /// `item` was handed to a stream: it now waits for its Ack.
    pub fn delivered(&self, item: &v1::InboxItem) {
        let mut pending = self.pending();
        pending.queued.remove(&item.stream_sequence);
        if let Some(id) = item
            .event
            .as_ref()
            .and_then(|e| EventId::parse(&e.event_id).ok())
        {
            pending.delivered.insert(id, item.stream_sequence);
        }
    }

    /// `item` could not be handed over (its stream went away): back to the queue.
    pub fn requeue(&self, item: v1::InboxItem) {
        self.pending().queued.remove(&item.stream_sequence);
        self.queue(item);
    }

    /// Of `ids`, those that are redeliveries awaiting their Ack, with their stream sequences;
    /// they no longer wait.
    pub fn take_acked(&self, ids: &[EventId]) -> Vec<(EventId, u64)> {
        let mut pending = self.pending();
        ids.iter()
            .filter_map(|id| pending.delivered.remove(id).map(|seq| (*id, seq)))
            .collect()
    }

    /// Puts back an acknowledgement that could not be completed (the stuck record is still
    /// there), so the same Ack can be sent again.
    pub fn restore(&self, id: EventId, sequence: u64) {
        self.pending().delivered.insert(id, sequence);
    }
}

/// The wire form of a stuck record, with whether a redelivery is pending here.
pub fn stuck_item(record: &StuckRecord, pending: bool) -> v1::StuckItem {
    v1::StuckItem {
        stream_sequence: record.stream_sequence,
        case_id: record.case_id.clone(),
        event_id: record.event_id.clone(),
        deliveries: record.deliveries,
        recorded_at: Some(onedoor_proto::convert::timestamp(record.recorded_at)),
        reason: record.reason.clone(),
        redelivery_pending: pending,
    }
}
