//! [`Forwarder::run`]: several outbox entries in flight to the capital at once, never two of
//! one case. An entry's expected last sequence is the national sequence its case's previous
//! entry got, so the entries of a case go one after the other, in outbox order; entries of
//! different cases have nothing to wait for, and on a link with a long round trip waiting for
//! each in turn is what made a catch-up slow.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::time::Duration;

use async_nats::jetstream::stream::{self, DirectGetErrorKind};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use onedoor_case::CaseId;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::forwarder::Forwarder;
use super::store::{OUTBOX_PREFIX, PendingEntry, pending_entry};
use crate::error::BusError;

/// Entries in flight to the capital at once (each of a different case). Enough to fill a
/// 100 ms link at a few hundred events a second; each costs one entry's payload in memory.
pub const IN_FLIGHT: usize = 64;
/// Entries read from the outbox and not yet finished, in flight or waiting behind an earlier
/// entry of their case: bounds the memory a long outbox takes.
const READ_AHEAD: usize = 4 * IN_FLIGHT;
/// Finished entries purged from the outbox together (more at once when nothing is in flight).
const PURGE_EVERY: u64 = 64;
/// How often an idle forwarder looks at the outbox even without a wake-up message.
const IDLE_LOOK: Duration = Duration::from_secs(1);

/// The entries read and not finished (`T`: an outbox entry; anything with a case in tests).
struct Window<T> {
    /// Read, not started, in outbox order.
    waiting: VecDeque<T>,
    /// Cases with an entry in flight.
    busy: HashSet<CaseId>,
    case_of: fn(&T) -> CaseId,
}

impl<T> Window<T> {
    fn new(case_of: fn(&T) -> CaseId) -> Self {
        Window {
            waiting: VecDeque::new(),
            busy: HashSet::new(),
            case_of,
        }
    }

    /// Takes from `waiting`, in order, up to `room` entries that may start now: the first
    /// waiting entry of a case with none in flight. Marks their cases busy.
    fn ready(&mut self, room: usize) -> Vec<T> {
        let mut started = Vec::new();
        let mut held: HashSet<CaseId> = HashSet::new();
        let mut kept = VecDeque::with_capacity(self.waiting.len());
        while let Some(entry) = self.waiting.pop_front() {
            let case = (self.case_of)(&entry);
            if started.len() < room && !self.busy.contains(&case) && !held.contains(&case) {
                self.busy.insert(case);
                started.push(entry);
            } else {
                held.insert(case);
                kept.push_back(entry);
            }
        }
        self.waiting = kept;
        started
    }
}

impl Forwarder {
    /// Forwards until `stop` turns true. Every entry is tried until the national stream
    /// acknowledges or refuses it; up to [`IN_FLIGHT`] entries of different cases at once, and
    /// an entry starts only once its case's previous entry is finished, so per-case order
    /// holds. A task of its own reads the outbox ahead, so reading never holds up delivering.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<(), BusError> {
        let wake = self
            .local
            .client()
            .subscribe(format!("{OUTBOX_PREFIX}.>"))
            .await
            .map_err(|e| BusError::nats("watching the outbox", &e))?;
        let (entries, mut read) = mpsc::channel(IN_FLIGHT);
        let reader = AbortOnDrop(tokio::spawn(read_outbox(
            self.outbox.clone(),
            wake,
            entries,
        )));
        let mut window = Window::new(|entry: &PendingEntry| entry.stored.event.case_id);
        let mut done = Finished::default();
        let mut flying = FuturesUnordered::new();
        while !*stop.borrow() {
            for entry in window.ready(IN_FLIGHT.saturating_sub(flying.len())) {
                flying.push(self.finish(entry, stop.clone()));
            }
            let room = window.waiting.len() + flying.len() < READ_AHEAD;
            tokio::select! {
                finished = flying.next(), if !flying.is_empty() => match finished {
                    Some(Ok(Some((case, sequence)))) => {
                        window.busy.remove(&case);
                        done.unfinished.remove(&sequence);
                    }
                    Some(Ok(None)) | None => {}
                    Some(Err(error)) => return Err(error),
                },
                entry = read.recv(), if room => match entry {
                    Some(Ok(entry)) => {
                        done.read(entry.stored.sequence);
                        window.waiting.push_back(entry);
                    }
                    Some(Err(error)) => return Err(error),
                    None => return Ok(()),
                },
                _ = stop.changed() => {}
            }
            if let Some(below) = done.to_purge(flying.is_empty()) {
                self.purge(below, &mut done).await;
            }
        }
        drop(reader);
        Ok(())
    }

    /// Removes the finished entries below `below` from the outbox in one request; on failure
    /// they stay, and the next purge takes them (a restart meanwhile replays them, which the
    /// national stream and the delivered copies' message ids de-duplicate).
    async fn purge(&self, below: u64, done: &mut Finished) {
        match self.outbox.purge().sequence(below).await {
            Ok(_) => done.purged_below = below,
            Err(error) => {
                tracing::warn!(%error, below, "removing delivered entries from the outbox failed; trying again later");
            }
        }
    }

    /// Delivers `entry` (or keeps it as a conflict); its case, free for the next entry, and
    /// its outbox sequence, or `None` if stopped first.
    async fn finish(
        &self,
        entry: PendingEntry,
        stop: watch::Receiver<bool>,
    ) -> Result<Option<(CaseId, u64)>, BusError> {
        let finished = (entry.stored.event.case_id, entry.stored.sequence);
        Ok(self.deliver(&entry, stop).await?.then_some(finished))
    }
}

/// Which outbox entries are finished (delivered, or kept as conflicts) and may leave it. They
/// finish out of order, several cases at once; the outbox is purged up to the lowest one not
/// finished, so one request removes many.
struct Finished {
    /// Entries received from the reader and not finished, by outbox sequence.
    unfinished: BTreeSet<u64>,
    /// One past the last entry received from the reader.
    read_up_to: u64,
    /// Everything below this is gone from the outbox.
    purged_below: u64,
}

impl Default for Finished {
    /// Nothing read; outbox sequences start at 1, so nothing lies below.
    fn default() -> Self {
        Finished {
            unfinished: BTreeSet::new(),
            read_up_to: 1,
            purged_below: 1,
        }
    }
}

impl Finished {
    fn read(&mut self, sequence: u64) {
        self.unfinished.insert(sequence);
        self.read_up_to = sequence + 1;
    }

    /// Where to purge below now, if anything: once [`PURGE_EVERY`] finished entries wait, or
    /// as soon as nothing is in flight (the outbox then shows only what still waits).
    fn to_purge(&self, nothing_in_flight: bool) -> Option<u64> {
        let below = self.unfinished.first().copied().unwrap_or(self.read_up_to);
        let waiting = below.saturating_sub(self.purged_below);
        (waiting > 0 && (waiting >= PURGE_EVERY || nothing_in_flight)).then_some(below)
    }
}

/// Ends a spawned task when dropped, however [`Forwarder::run`] returns.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads the outbox in order into `entries` until the receiver is gone; at its end, waits
/// for a new entry (`wake`) or [`IDLE_LOOK`]. An entry that does not decode is sent as the
/// error it is.
async fn read_outbox(
    outbox: stream::Stream,
    mut wake: async_nats::Subscriber,
    entries: mpsc::Sender<Result<PendingEntry, BusError>>,
) {
    let filter = format!("{OUTBOX_PREFIX}.>");
    let mut next = 1;
    loop {
        let found = outbox
            .direct_get_next_for_subject(filter.clone(), Some(next))
            .await;
        let idle = match found {
            Ok(message) => {
                next = message.sequence + 1;
                if entries.send(pending_entry(message)).await.is_err() {
                    return;
                }
                false
            }
            Err(err) if matches!(err.kind(), DirectGetErrorKind::NotFound) => true,
            Err(err) => {
                tracing::warn!(error = %err, "reading the outbox failed; trying again");
                true
            }
        };
        if idle {
            tokio::select! {
                _ = wake.next() => {}
                () = tokio::time::sleep(IDLE_LOOK) => {}
                () = entries.closed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_waiting_entry_of_a_free_case_starts() {
        let [a, b, c] = [(); 3].map(|()| CaseId::generate());
        let mut window = Window::new(|case: &CaseId| *case);
        window.busy.insert(c);
        window.waiting.extend([a, a, b, c, b]);
        assert_eq!(window.ready(10), [a, b], "one per case, none of a busy one");
        assert_eq!(window.waiting, [a, c, b], "the rest keep their order");
        assert!(window.ready(10).is_empty(), "a, b and c are all in flight");
        window.busy.remove(&a);
        assert_eq!(window.ready(10), [a]);
        window.busy.clear();
        assert_eq!(window.ready(1), [c], "no more than the room");
        assert_eq!(window.waiting, [b]);
    }

    #[test]
    fn the_outbox_is_purged_below_the_first_unfinished_entry() {
        let mut done = Finished::default();
        for sequence in 1..=3 {
            done.read(sequence);
        }
        done.unfinished.remove(&2);
        assert_eq!(done.to_purge(true), None, "1 is still in flight");
        done.unfinished.remove(&1);
        assert_eq!(done.to_purge(false), None, "two finished: wait for more");
        assert_eq!(done.to_purge(true), Some(3), "3 is not finished");
        done.purged_below = 3;
        done.unfinished.remove(&3);
        assert_eq!(done.to_purge(true), Some(4), "all read entries finished");
        done.purged_below = 4;
        assert_eq!(done.to_purge(true), None);
        for sequence in 4..4 + PURGE_EVERY {
            done.read(sequence);
            done.unfinished.remove(&sequence);
        }
        assert_eq!(done.to_purge(false), Some(4 + PURGE_EVERY));
    }
}
