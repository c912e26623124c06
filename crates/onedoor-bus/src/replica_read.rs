//! Reads of the ONEDOOR stream that see what this process already knows is stored, on a
//! replicated stream (`docs/jetstream.md` §11).
//!
//! A direct get is answered by any replica (nats-server prefers the one on the server the
//! client is connected to), and a follower may not yet hold an event that a publish ack or an
//! inbox delivery has just reported: the ack comes once a quorum stored the event, not every
//! replica. nats-server has no "at least sequence N" read (a field for it was tried in a 2.12
//! release candidate and removed), so the reader keeps the sequence it knows about and checks
//! the answer: an older one, or none, is asked again of the stream leader (`STREAM.MSG.GET`),
//! which holds every acknowledged event. On a one-replica stream the direct answer is the
//! leader's, so nothing is ever asked twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{DirectGetErrorKind, LastRawMessageErrorKind, Stream};
use hashlink::LruCache;
use onedoor_case::CaseId;

use crate::error::BusError;

/// Cases whose known last sequence is remembered. A forgotten case is read from any replica and
/// confirmed with the leader only when the answer is "absent" or the rules refuse on it.
const KNOWN_CASES: usize = 65_536;

/// How current a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Any replica's answer at or past this sequence; "absent" is believed when the sequence
    /// is 0. For the write path: the append's expected sequence catches a replica that is
    /// behind, and a refusal is confirmed with [`Freshness::Leader`] before it is given.
    Replica(u64),
    /// As `Replica`, but "absent" on a replicated stream is asked again of the leader: for
    /// reads whose "not found" reaches a caller.
    Present(u64),
    /// The leader's answer: after a lost race, or before refusing a command.
    Leader,
}

/// The highest stream sequence this process wrote or was delivered, per case: what a read of
/// the case must reach. Shared by both read paths (the stream's and the case reader's).
#[derive(Clone)]
pub(crate) struct KnownSequences(Arc<Mutex<LruCache<CaseId, u64>>>);

impl KnownSequences {
    pub fn new() -> Self {
        KnownSequences(Arc::new(Mutex::new(LruCache::new(KNOWN_CASES))))
    }

    pub fn saw(&self, case_id: CaseId, sequence: u64) {
        let mut known = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let floor = known.get(&case_id).copied().unwrap_or(0).max(sequence);
        known.insert(case_id, floor);
    }

    pub fn known(&self, case_id: &CaseId) -> u64 {
        let mut known = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        known.get(case_id).copied().unwrap_or(0)
    }
}

#[derive(Clone)]
pub(crate) struct ReplicaReader {
    stream: Stream,
    replicated: bool,
    known: KnownSequences,
    leader_reads: Arc<AtomicU64>,
}

impl ReplicaReader {
    pub fn new(stream: Stream) -> Self {
        let replicated = stream.cached_info().config.num_replicas > 1;
        ReplicaReader {
            stream,
            replicated,
            known: KnownSequences::new(),
            leader_reads: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether direct answers may come from a follower that is behind.
    pub fn replicated(&self) -> bool {
        self.replicated
    }

    /// Reads asked again of the leader since start.
    pub fn leader_reads(&self) -> u64 {
        self.leader_reads.load(Ordering::Relaxed)
    }

    /// How to read after a lost race: the leader, unless the only replica is the leader.
    pub fn after_conflict(&self) -> Freshness {
        if self.replicated {
            Freshness::Leader
        } else {
            Freshness::Replica(0)
        }
    }

    /// The stream, for reads that need no freshness check.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Remembers that `case_id` holds at least `sequence` (a write's ack, an inbox delivery).
    pub fn saw(&self, case_id: CaseId, sequence: u64) {
        if self.replicated {
            self.known.saw(case_id, sequence);
        }
    }

    /// The sequence a read of `case_id` must reach.
    pub fn known(&self, case_id: &CaseId) -> u64 {
        self.known.known(case_id)
    }

    /// The last message on `filter` (a case's subjects), `None` when there is none.
    pub async fn last(
        &self,
        filter: &str,
        freshness: Freshness,
    ) -> Result<Option<StreamMessage>, BusError> {
        let (floor, confirm_absent) = match freshness {
            Freshness::Replica(floor) => (floor, floor > 0),
            Freshness::Present(floor) => (floor, true),
            Freshness::Leader if self.replicated => return self.leader_last(filter).await,
            Freshness::Leader => (0, false),
        };
        let answer = match self.stream.direct_get_last_for_subject(filter).await {
            Ok(message) => Some(message),
            Err(err) if matches!(err.kind(), DirectGetErrorKind::NotFound) => None,
            Err(err) => return Err(BusError::nats("reading a case's events", &err)),
        };
        let behind = match &answer {
            Some(message) => message.sequence < floor,
            None => confirm_absent,
        };
        // One replica is the leader: whatever it answered is all there is.
        if behind && self.replicated {
            return self.leader_last(filter).await;
        }
        Ok(answer)
    }

    async fn leader_last(&self, filter: &str) -> Result<Option<StreamMessage>, BusError> {
        self.leader_reads.fetch_add(1, Ordering::Relaxed);
        match self.stream.get_last_raw_message_by_subject(filter).await {
            Ok(message) => Ok(Some(message)),
            Err(err) if absent(err.kind()) => Ok(None),
            Err(err) => Err(BusError::nats(
                "reading a case's events from the leader",
                &err,
            )),
        }
    }

    /// The message at `sequence`, which the caller knows exists (a later event of the case
    /// points at it): a replica that does not have it yet is behind, and the leader answers.
    pub async fn at(&self, sequence: u64, freshness: Freshness) -> Result<StreamMessage, BusError> {
        if freshness != Freshness::Leader || !self.replicated {
            match self.stream.direct_get(sequence).await {
                Ok(message) => return Ok(message),
                Err(err)
                    if matches!(err.kind(), DirectGetErrorKind::NotFound) && self.replicated => {}
                Err(err) => return Err(BusError::nats("reading a case's events", &err)),
            }
        }
        self.leader_reads.fetch_add(1, Ordering::Relaxed);
        self.stream
            .get_raw_message(sequence)
            .await
            .map_err(|err| BusError::nats("reading a case's events from the leader", &err))
    }
}

fn absent(kind: LastRawMessageErrorKind) -> bool {
    match kind {
        LastRawMessageErrorKind::NoMessageFound => true,
        LastRawMessageErrorKind::JetStream(err) => err.error_code() == ErrorCode::NO_MESSAGE_FOUND,
        LastRawMessageErrorKind::InvalidSubject | LastRawMessageErrorKind::Other => false,
    }
}
