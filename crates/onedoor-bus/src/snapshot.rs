//! Compact per-case snapshots for the write path: what deciding and appending one more event
//! needs from a case's history — the folded state, the last stream sequence, the last payload's
//! hash, the trace to parent from, the event ids already written — without the history itself.
//!
//! A snapshot is never trusted blindly: the append that uses it expects the snapshot's last
//! sequence to be the case's last (`Nats-Expected-Last-Subject-Sequence`), so a stale snapshot
//! costs one refused append and a read of what was appended after it, never a wrong event.

use std::collections::{BTreeSet, HashMap};

use hashlink::LinkedHashMap;
use onedoor_case::{AgencyCode, CaseEvent, CaseId, CaseState, EventId, FoldError, Registry};
use sha2::{Digest as _, Sha256};

use crate::case_log::StoredEvent;
use crate::trace::TraceContext;
use crate::verify::{CaseVerifier, Quarantined, RawMessage};

/// Default bound on the memory the snapshots of one log may hold (see [`SnapshotCache`]).
pub const SNAPSHOT_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Estimated bytes of one cached case apart from its events (state, tasks, map slots).
const CASE_COST: usize = 1024;
/// Estimated bytes each event adds (its id and sequence, a past task in the state).
const EVENT_COST: usize = 192;

/// The end of a case's history: where the next event goes and what it links and parents to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseTip {
    /// Stream sequence of the case's last event; 0 before the case exists.
    pub last_sequence: u64,
    /// SHA-256 of the last event's payload: the next event's `prev_hash`.
    pub last_hash: Option<[u8; 32]>,
    /// The case's trace (fixed by its opening event).
    pub trace_id: Option<String>,
    /// The last event's span, parent of the next when the caller is not in the case's trace.
    pub last_span_id: Option<String>,
}

impl CaseTip {
    /// The tip of a whole history (no folding: the trace and hash need only its ends).
    pub fn of(history: &[StoredEvent]) -> Self {
        CaseTip {
            last_sequence: history.last().map_or(0, |s| s.sequence),
            last_hash: history.last().map(|s| payload_digest(&s.payload)),
            trace_id: history.first().map(|s| s.envelope.trace_id.clone()),
            last_span_id: history.last().map(|s| s.envelope.span_id.clone()),
        }
    }

    /// The span a new event's span should be the child of: the caller's span when it is
    /// already in the case's trace (or when the case is being opened), else the last event's
    /// span, so the case's journey forms one connected trace whatever the callers send.
    pub fn trace_parent(&self, caller: Option<&TraceContext>) -> Option<TraceContext> {
        let Some(case_trace) = &self.trace_id else {
            return caller.cloned();
        };
        match caller {
            Some(caller) if caller.trace_id == *case_trace => Some(caller.clone()),
            _ => {
                let last_span = self.last_span_id.as_deref().unwrap_or_default();
                TraceContext::parse(&format!("00-{case_trace}-{last_span}-01"), None).ok()
            }
        }
    }
}

/// SHA-256 of a stored payload: the `prev_hash` of the event after it.
pub fn payload_digest(payload: &[u8]) -> [u8; 32] {
    Sha256::digest(payload).into()
}

/// One case, folded.
#[derive(Debug, Default)]
pub(crate) struct CaseSnapshot {
    pub tip: CaseTip,
    /// `None` before the opening event.
    pub state: Option<CaseState>,
    /// Every event id in the case, with its stream sequence: how a retried request is found.
    events: HashMap<EventId, u64>,
    /// Messages of the case that did not verify, skipped by the fold.
    pub quarantined: Vec<Quarantined>,
    /// Every agency that wrote an accepted event of the case or was sent one: who may read it
    /// (see [`crate::read`]).
    parties: BTreeSet<AgencyCode>,
}

impl CaseSnapshot {
    /// A case's whole history, verified (see [`crate::verify`]).
    pub fn from_messages(
        case_id: CaseId,
        messages: Vec<RawMessage>,
        registry: Option<&Registry>,
    ) -> Self {
        let mut snapshot = CaseSnapshot::default();
        for message in messages {
            snapshot.push_raw(case_id, message, registry);
        }
        snapshot
    }

    /// Verifies the case's next stored message and folds it in, or records it as quarantined.
    /// Either way the tip moves past it: the next append must expect the case's true last
    /// sequence, while its `prev_hash` chains to the last accepted event.
    pub fn push_raw(&mut self, case_id: CaseId, message: RawMessage, registry: Option<&Registry>) {
        let sequence = message.sequence;
        let mut verifier = CaseVerifier {
            state: self.state.take(),
            last_hash: self.tip.last_hash,
        };
        let checked = verifier.check(case_id, message, registry);
        self.state = verifier.state;
        match checked {
            Ok(stored) => {
                self.accepted(&stored);
                if let Some(state) = &mut self.state {
                    forget_free_text(state);
                }
            }
            Err(quarantined) => {
                tracing::warn!(%case_id, sequence, reason = %quarantined.reason, "quarantined a case message");
                self.quarantined.push(quarantined);
            }
        }
        self.tip.last_sequence = sequence;
    }

    fn accepted(&mut self, stored: &StoredEvent) {
        self.events.insert(stored.event.event_id, stored.sequence);
        self.joined(&stored.event);
        self.tip.last_hash = Some(payload_digest(&stored.payload));
        if self.tip.trace_id.is_none() {
            self.tip.trace_id = Some(stored.envelope.trace_id.clone());
        }
        self.tip.last_span_id = Some(stored.envelope.span_id.clone());
    }

    /// The quarantine record of the message at `sequence`, if it was quarantined.
    pub fn quarantined_at(&self, sequence: u64) -> Option<&Quarantined> {
        self.quarantined.iter().find(|q| q.sequence == sequence)
    }

    /// Folds in the event stored at `sequence` right after the current tip.
    pub fn push(
        &mut self,
        sequence: u64,
        hash: [u8; 32],
        event: &CaseEvent,
        trace_id: &str,
        span_id: &str,
    ) -> Result<(), FoldError> {
        let mut state = CaseState::apply(self.state.take(), event)?;
        forget_free_text(&mut state);
        self.state = Some(state);
        self.events.insert(event.event_id, sequence);
        self.joined(event);
        self.tip.last_sequence = sequence;
        self.tip.last_hash = Some(hash);
        if self.tip.trace_id.is_none() {
            self.tip.trace_id = Some(trace_id.to_owned());
        }
        self.tip.last_span_id = Some(span_id.to_owned());
        Ok(())
    }

    fn joined(&mut self, event: &CaseEvent) {
        self.parties.insert(event.from.clone());
        if let Some(to) = &event.to {
            self.parties.insert(to.clone());
        }
    }

    /// Whether `agency` opened the case, wrote one of its accepted events or was sent one.
    pub fn has_party(&self, agency: &AgencyCode) -> bool {
        self.parties.contains(agency)
    }

    /// The stream sequence of `event_id`, if the case holds it.
    pub fn sequence_of(&self, event_id: &EventId) -> Option<u64> {
        self.events.get(event_id).copied()
    }

    fn cost(&self) -> usize {
        CASE_COST + self.events.len() * EVENT_COST
    }
}

/// The case rules never read the long free text (summary, instructions): dropping it keeps a
/// cached case at a few hundred bytes whatever its callers wrote. The citizen reference stays
/// (it is at most `CITIZEN_REF_MAX_BYTES`): every inbox item carries it.
fn forget_free_text(state: &mut CaseState) {
    state.summary = String::new();
    for task in state.tasks.values_mut() {
        task.instructions = String::new();
    }
    if let Some(past) = state.past_tasks.last_mut() {
        past.task.instructions = String::new();
    }
}

/// Snapshots of recently written cases, least recently used evicted first once their estimated
/// size passes a byte budget (so one adapter's memory stays bounded however many cases it
/// touches, and a case with a long history counts for what it holds).
pub(crate) struct SnapshotCache {
    cases: LinkedHashMap<CaseId, CaseSnapshot>,
    bytes: usize,
    budget: usize,
    /// The registry generation (`onedoor_case::LiveRegistry`) the snapshots were verified under.
    generation: u64,
}

impl SnapshotCache {
    pub fn new(budget: usize) -> Self {
        SnapshotCache {
            cases: LinkedHashMap::new(),
            bytes: 0,
            budget,
            generation: 0,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Forgets every snapshot when the registry moved to `generation`.
    pub fn follow_generation(&mut self, generation: u64) {
        if generation != self.generation {
            self.cases.clear();
            self.bytes = 0;
            self.generation = generation;
        }
    }

    /// The case's snapshot, marked as recently used.
    pub fn get(&mut self, case_id: &CaseId) -> Option<&CaseSnapshot> {
        self.cases.to_back(case_id).map(|s| &*s)
    }

    /// Changes a cached snapshot in place with `change`, keeping the size account right; a
    /// snapshot `change` fails on is dropped (the next write reads the case again).
    pub fn update<E>(
        &mut self,
        case_id: &CaseId,
        change: impl FnOnce(&mut CaseSnapshot) -> Result<(), E>,
    ) -> Option<Result<(), E>> {
        let snapshot = self.cases.get_mut(case_id)?;
        let before = snapshot.cost();
        let result = change(snapshot);
        let after = snapshot.cost();
        self.bytes = self.bytes - before + after;
        if result.is_err() {
            self.remove(case_id);
        }
        self.evict();
        Some(result)
    }

    pub fn insert(&mut self, case_id: CaseId, snapshot: CaseSnapshot) {
        self.bytes += snapshot.cost();
        if let Some(old) = self.cases.insert(case_id, snapshot) {
            self.bytes -= old.cost();
        }
        self.evict();
    }

    pub fn remove(&mut self, case_id: &CaseId) {
        if let Some(old) = self.cases.remove(case_id) {
            self.bytes -= old.cost();
        }
    }

    fn evict(&mut self) {
        // The newest entry stays even alone over budget: the write that put it there uses it.
        while self.bytes > self.budget && self.cases.len() > 1 {
            match self.cases.pop_front() {
                Some((_, old)) => self.bytes -= old.cost(),
                None => break,
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.cases.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot_with_events(n: usize) -> CaseSnapshot {
        let mut snapshot = CaseSnapshot::default();
        for i in 0..n {
            snapshot.events.insert(EventId::generate(), i as u64 + 1);
        }
        snapshot
    }

    #[test]
    fn the_least_recently_used_case_goes_first_when_over_budget() {
        let mut cache = SnapshotCache::new(3 * CASE_COST);
        let (a, b, c, d) = (
            CaseId::generate(),
            CaseId::generate(),
            CaseId::generate(),
            CaseId::generate(),
        );
        cache.insert(a, CaseSnapshot::default());
        cache.insert(b, CaseSnapshot::default());
        cache.insert(c, CaseSnapshot::default());
        assert!(cache.get(&a).is_some());
        cache.insert(d, CaseSnapshot::default());
        assert!(cache.get(&b).is_none(), "b was least recently used");
        assert!(cache.get(&a).is_some() && cache.get(&c).is_some() && cache.get(&d).is_some());
        assert_eq!(cache.bytes, 3 * CASE_COST);
    }

    #[test]
    fn long_histories_count_for_what_they_hold() {
        let mut cache = SnapshotCache::new(4 * CASE_COST);
        let small = CaseId::generate();
        cache.insert(small, CaseSnapshot::default());
        let long = CaseId::generate();
        cache.insert(long, snapshot_with_events(4 * CASE_COST / EVENT_COST));
        assert_eq!(cache.len(), 1, "the long case pushed the small one out");
        assert!(cache.get(&long).is_some());
    }

    #[test]
    fn a_failed_update_drops_the_snapshot_and_its_bytes() {
        let mut cache = SnapshotCache::new(SNAPSHOT_CACHE_BYTES);
        let case = CaseId::generate();
        cache.insert(case, snapshot_with_events(3));
        let result = cache.update(&case, |s| {
            s.events.insert(EventId::generate(), 9);
            Err("no")
        });
        assert_eq!(result, Some(Err("no")));
        assert!(cache.get(&case).is_none());
        assert_eq!(cache.bytes, 0);
    }
}
