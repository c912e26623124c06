//! [`InFlight`]: the deliveries this process has handed out and not yet seen acknowledged, by
//! event id, shared between the `Inbox` stream (which fills it) and the `Ack` call (which
//! drains it): the adapter serves them on different gRPC calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt as _;
use onedoor_case::{AgencyCode, CaseId, EventId};
use time::OffsetDateTime;
use tokio::sync::{OnceCell, watch};
use tokio::time::Instant;

use super::settings::InboxSettings;
use crate::error::BusError;
use crate::stuck::{self, StuckRecord};

/// How many acks are awaited at once: an `Ack` call may name many events, and each double ack
/// is one round trip.
const ACK_CONCURRENCY: usize = 16;

/// What acking one event id gave: whether any handle was confirmed, and the handles that were
/// not, with why.
type AckResult = (EventId, bool, Vec<(Held, String)>);

/// One delivery handed out and not yet acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) message: jetstream::Message,
    pub(crate) case_id: CaseId,
    pub(crate) stream_sequence: u64,
    pub(crate) attempt: u32,
    /// When the server will deliver it again: the end of this delivery's ack wait (measured from
    /// when we received it, so slightly after the server's own, which keeps the window bound
    /// conservative), or, once released, the end of the NAK delay.
    pub(crate) deadline: Instant,
    pub(crate) session: u64,
    pub(crate) released: bool,
}

/// What [`InFlight::ack`] did with each id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckOutcome {
    /// Acknowledged, and the server confirmed it (double ack): these are not delivered again.
    pub acked: Vec<EventId>,
    /// Not held here: never delivered by this process, already acknowledged, or given up on
    /// (redelivered elsewhere long ago, or exhausted and recorded as stuck). Not an error: the
    /// caller may have retried an `Ack` whose reply it lost.
    pub unknown: Vec<EventId>,
    /// The server did not confirm the ack (disconnected, timed out). Still held: the caller may
    /// send the same ids again.
    pub failed: Vec<AckFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckFailure {
    pub event_id: EventId,
    pub reason: String,
}

/// Counters of one agency's inbox in this process, for the adapter's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxStats {
    /// Deliveries handed to sessions (first deliveries and redeliveries).
    pub delivered: u64,
    /// Of those, deliveries with an attempt above 1.
    pub redelivered: u64,
    /// Events acknowledged with the server's confirmation.
    pub acked: u64,
    /// Held right now by open sessions and within their ack wait.
    pub in_flight: usize,
    /// Malformed messages terminated (and recorded as stuck).
    pub terminated: u64,
    /// Deliveries released (NAK with delay) when their session ended.
    pub released: u64,
    /// Stuck records this process wrote, or found already written by the advisory recorder.
    pub stuck: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    redelivered: AtomicU64,
    acked: AtomicU64,
    terminated: AtomicU64,
    released: AtomicU64,
    stuck: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    js: jetstream::Context,
    agency: AgencyCode,
    settings: InboxSettings,
    held: Mutex<HashMap<EventId, Vec<Held>>>,
    /// Bumped whenever held deliveries leave (acked, released, swept), so a session waiting for
    /// room in its window wakes up.
    changed: watch::Sender<u64>,
    next_session: AtomicU64,
    counters: Counters,
    stuck_bucket: OnceCell<async_nats::jetstream::kv::Store>,
}

/// The un-acknowledged deliveries of one agency's inbox in this process. Cheap to clone; every
/// clone is the same registry. Create one per agency and pass it to every
/// [`crate::Inbox::open_with`], so an `Ack` reaches deliveries of any session.
#[derive(Debug, Clone)]
pub struct InFlight {
    shared: Arc<Shared>,
}

impl InFlight {
    pub fn new(
        js: jetstream::Context,
        agency: AgencyCode,
        settings: InboxSettings,
    ) -> Result<Self, BusError> {
        settings.validate()?;
        Ok(InFlight {
            shared: Arc::new(Shared {
                js,
                agency,
                settings,
                held: Mutex::new(HashMap::new()),
                changed: watch::Sender::new(0),
                next_session: AtomicU64::new(1),
                counters: Counters::default(),
                stuck_bucket: OnceCell::new(),
            }),
        })
    }

    pub fn agency(&self) -> &AgencyCode {
        &self.shared.agency
    }

    pub fn settings(&self) -> &InboxSettings {
        &self.shared.settings
    }

    pub(crate) fn jetstream(&self) -> &jetstream::Context {
        &self.shared.js
    }

    /// Drops what is held for `event_id` without acknowledging or recording it. For an event
    /// the adapter delivers again itself (a stuck item put back): its expired last delivery
    /// must not be recorded as stuck a second time once the new delivery is acknowledged.
    pub fn forget(&self, event_id: &EventId) {
        self.lock().remove(event_id);
    }

    pub fn stats(&self) -> InboxStats {
        let now = Instant::now();
        let in_flight = self
            .lock()
            .values()
            .flatten()
            .filter(|h| !h.released && h.deadline > now)
            .count();
        let c = &self.shared.counters;
        InboxStats {
            delivered: c.delivered.load(Ordering::Relaxed),
            redelivered: c.redelivered.load(Ordering::Relaxed),
            acked: c.acked.load(Ordering::Relaxed),
            in_flight,
            terminated: c.terminated.load(Ordering::Relaxed),
            released: c.released.load(Ordering::Relaxed),
            stuck: c.stuck.load(Ordering::Relaxed),
        }
    }

    /// Acknowledges the deliveries of `event_ids`, waiting for the server to confirm each
    /// (double ack, docs/jetstream.md §5: a plain ack may be lost, and then the ministry gets the
    /// event again although it was told nothing is pending).
    ///
    /// A delivery whose ack wait has passed is still acknowledged if it is held: the server
    /// accepts a late ack and, if it has not redelivered yet, will not (checked on 2.15.1).
    pub async fn ack(&self, event_ids: &[EventId]) -> AckOutcome {
        self.sweep();
        let mut outcome = AckOutcome::default();
        let mut taken = Vec::new();
        {
            let mut held = self.lock();
            for id in event_ids {
                if taken.iter().any(|(taken_id, _)| taken_id == id) || outcome.unknown.contains(id)
                {
                    continue; // named twice in one call
                }
                match held.remove(id) {
                    Some(handles) => taken.push((*id, handles)),
                    None => outcome.unknown.push(*id),
                }
            }
        }

        let results: Vec<AckResult> = futures::stream::iter(taken)
            .map(|(id, handles)| async move {
                let mut acked = false;
                let mut failed = Vec::new();
                for handle in handles {
                    match handle.message.double_ack().await {
                        Ok(()) => acked = true,
                        Err(err) => {
                            tracing::warn!(
                                event_id = %id,
                                stream_sequence = handle.stream_sequence,
                                error = %err,
                                "the server did not confirm an ack"
                            );
                            let reason = format!(
                                "the server did not confirm the acknowledgement ({err}); send it again"
                            );
                            failed.push((handle, reason));
                        }
                    }
                }
                (id, acked, failed)
            })
            .buffer_unordered(ACK_CONCURRENCY)
            .collect()
            .await;

        let mut held = self.lock();
        for (id, acked, failed) in results {
            // One confirmed handle is enough: every handle of an id is the same event.
            if acked {
                outcome.acked.push(id);
                continue;
            }
            let Some(reason) = failed.first().map(|(_, reason)| reason.clone()) else {
                continue;
            };
            // Put the handles back for a retry, unless a redelivery replaced them meanwhile.
            let entry = held.entry(id).or_default();
            for (handle, _) in failed {
                if !entry
                    .iter()
                    .any(|h| h.stream_sequence == handle.stream_sequence)
                {
                    entry.push(handle);
                }
            }
            outcome.failed.push(AckFailure {
                event_id: id,
                reason,
            });
        }
        drop(held);
        self.shared
            .counters
            .acked
            .fetch_add(outcome.acked.len() as u64, Ordering::Relaxed);
        self.notify();
        // Keep the caller's order; concurrency above reorders.
        outcome
            .acked
            .sort_by_key(|id| event_ids.iter().position(|x| x == id));
        outcome
            .failed
            .sort_by_key(|f| event_ids.iter().position(|x| *x == f.event_id));
        outcome
    }

    /// Hands `event_id`'s delivery back to the server to be sent again after `delay` (a NAK
    /// with that delay; zero is a plain NAK, which on the last attempt ends it and fires the
    /// max-deliveries advisory), and forgets it here. For a pusher that paces its own retries
    /// (the adapter's webhook). False when nothing is held under `event_id`.
    pub async fn retry_after(&self, event_id: &EventId, delay: Duration) -> bool {
        let Some(handles) = self.lock().remove(event_id) else {
            return false;
        };
        self.notify();
        let naks = handles.into_iter().map(|h| (h.message, delay)).collect();
        send_naks(naks).await;
        true
    }

    pub(crate) fn new_session(&self) -> u64 {
        self.shared.next_session.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// Records a delivery handed out. A redelivery of the same stream sequence replaces the
    /// older handle (its ack wait passed; the new one is what the server now expects acked).
    pub(crate) fn insert(&self, event_id: EventId, held: Held) {
        let c = &self.shared.counters;
        c.delivered.fetch_add(1, Ordering::Relaxed);
        if held.attempt > 1 {
            c.redelivered.fetch_add(1, Ordering::Relaxed);
        }
        let mut map = self.lock();
        let entry = map.entry(event_id).or_default();
        entry.retain(|h| h.stream_sequence != held.stream_sequence);
        entry.push(held);
    }

    /// `(held live by session, earliest deadline among them)`: what counts against the
    /// session's window. A delivery past its deadline no longer counts: the server will send
    /// it again, to whichever pull asks first.
    pub(crate) fn window(&self, session: u64) -> (usize, Option<Instant>) {
        let now = Instant::now();
        let map = self.lock();
        let live = map
            .values()
            .flatten()
            .filter(|h| h.session == session && !h.released && h.deadline > now);
        live.fold((0, None), |(n, earliest), h| {
            let earliest = match earliest {
                Some(e) if e <= h.deadline => Some(e),
                _ => Some(h.deadline),
            };
            (n + 1, earliest)
        })
    }

    pub(crate) fn count_terminated(&self) {
        self.shared
            .counters
            .terminated
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Releases what `session` still holds, because its client went away: each delivery is
    /// NAKed with a delay of what was left of its ack wait, capped by
    /// [`InboxSettings::release_delay_cap`], so the next session gets it promptly without
    /// turning a crashing client into a hot loop (a plain NAK would redeliver at once and burn
    /// the attempts in seconds; docs/jetstream.md §3).
    ///
    /// The handles stay registered (marked released) until redelivered or acknowledged: an
    /// `Ack` for them may still arrive on its own call, and the server honours it.
    ///
    /// A delivery on its last attempt is not NAKed: a NAK would end it at once, while leaving it
    /// to its ack wait still lets a late `Ack` save it. If none comes, the sweep records it as
    /// stuck.
    ///
    /// Returns the NAKs to send; sending is the caller's (it may be in `Drop`).
    pub(crate) fn release_session(&self, session: u64) -> Vec<(jetstream::Message, Duration)> {
        let now = Instant::now();
        let cap = self.shared.settings.release_delay_cap;
        let max_deliver = self.shared.settings.max_deliver;
        let mut naks = Vec::new();
        let mut map = self.lock();
        for held in map.values_mut().flatten() {
            if held.session != session || held.released || held.attempt >= max_deliver {
                continue;
            }
            held.released = true;
            if held.deadline <= now {
                continue; // the server is already sending it again
            }
            let delay = held.deadline.saturating_duration_since(now).min(cap);
            held.deadline = now + delay;
            naks.push((held.message.clone(), delay));
        }
        drop(map);
        self.shared
            .counters
            .released
            .fetch_add(naks.len() as u64, Ordering::Relaxed);
        self.notify();
        naks
    }

    /// Forgets handles that can no longer matter, and records as stuck the last deliveries whose
    /// ack wait passed without an ack (the server will not send them again). Writing happens
    /// on a spawned task so that neither the session nor an `Ack` waits for the bucket.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        let settings = &self.shared.settings;
        let forget_after = settings.longest_step();
        let mut exhausted = Vec::new();
        {
            let mut map = self.lock();
            map.retain(|event_id, handles| {
                handles.retain(|h| {
                    if h.deadline > now {
                        return true;
                    }
                    if h.attempt >= settings.max_deliver {
                        exhausted.push((*event_id, h.case_id, h.stream_sequence, h.attempt));
                        return false;
                    }
                    // Long past its deadline: redelivered elsewhere by now.
                    now.saturating_duration_since(h.deadline) < forget_after
                });
                !handles.is_empty()
            });
        }
        if exhausted.is_empty() {
            return;
        }
        self.notify();
        let records: Vec<StuckRecord> = exhausted
            .into_iter()
            .map(
                |(event_id, case_id, stream_sequence, attempt)| StuckRecord {
                    agency: self.shared.agency.to_string(),
                    case_id: case_id.to_string(),
                    event_id: event_id.to_string(),
                    stream_sequence,
                    deliveries: u64::from(attempt),
                    recorded_at: OffsetDateTime::now_utc(),
                    reason: stuck::exhausted_reason(u64::from(attempt)),
                },
            )
            .collect();
        self.spawn_stuck_records(records);
    }

    /// Writes `records` to the stuck bucket on a spawned task (with retries).
    pub(crate) fn spawn_stuck_records(&self, records: Vec<StuckRecord>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            for record in &records {
                tracing::error!(key = record.key(), "no runtime to record a stuck delivery");
            }
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            for record in records {
                if let Err(err) = this.record_stuck(&record).await {
                    tracing::error!(key = record.key(), error = %err, "could not record a stuck delivery");
                }
            }
        });
    }

    /// Writes one stuck record now, retrying a short outage. Err when it could not be written.
    pub(crate) async fn record_stuck(&self, record: &StuckRecord) -> Result<(), BusError> {
        let store = self
            .shared
            .stuck_bucket
            .get_or_try_init(|| stuck::ensure_stuck_bucket(&self.shared.js))
            .await?;
        stuck::record_stuck_with_retries(store, record).await?;
        self.shared.counters.stuck.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn notify(&self) {
        self.shared.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<EventId, Vec<Held>>> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters (each operation is a single insert/remove), so poisoning is ignored.
        self.shared
            .held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Sends the NAKs of [`InFlight::release_session`]; failures are logged, because the delivery
/// then simply waits out its ack wait: slower, never lost.
pub(crate) async fn send_naks(naks: Vec<(jetstream::Message, Duration)>) {
    for (message, delay) in naks {
        // A zero delay is a plain NAK: only used for messages no client ever saw.
        let kind = AckKind::Nak(Some(delay).filter(|d| !d.is_zero()));
        if let Err(err) = message.ack_with(kind).await {
            tracing::debug!(error = %err, "releasing a held delivery failed; it will come back after its ack wait");
        }
    }
}
