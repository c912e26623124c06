//! The per-case event log on the ONEDOOR stream: load one case's events in order, and append a
//! new one so that two agencies acting on one case at once cannot both win.
//!
//! Concurrency is optimistic and enforced by the server: every append says which stream
//! sequence it believes is the case's last (`Nats-Expected-Last-Subject-Sequence`, filtered on
//! `onedoor.v1.case.<case_id>.>`). The loser gets "wrong last sequence", re-reads the case and
//! decides again with the case rules, which may now refuse the command.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::DirectGetErrorKind;
use async_nats::{HeaderMap, HeaderName};
use bytes::Bytes;
use onedoor_case::{AgencyCode, CaseEvent, CaseId, CaseState, LiveRegistry, Registry};
use onedoor_proto::convert::{self, Envelope};
use onedoor_proto::v1;
use prost::Message as _;

use crate::audit::Signer;
use crate::case_turns::CaseTurns;
use crate::cloudevents as ce;
use crate::error::BusError;
use crate::nats_error::NatsErrorKind;
use crate::read::client::ReadClient;
use crate::replica_read::{Freshness, ReplicaReader};
use crate::snapshot::{CaseSnapshot, CaseTip, SNAPSHOT_CACHE_BYTES, SnapshotCache, payload_digest};
use crate::subjects;
use crate::trace::{TRACEPARENT, TRACESTATE, TraceContext};
use crate::verify::{Quarantined, RawMessage, Verified, verify_history};
use crate::write::{WriteRequest, Written, build, decide_on};

/// How often an append is re-decided after losing a race before giving up. Races on one case
/// are rare (a handful of agencies act on it, hours apart), so a few tries are plenty; the
/// bound keeps a hot case from holding a caller for ever.
pub const MAX_APPEND_ATTEMPTS: u32 = 5;

pub const NATS_MSG_ID: &str = "Nats-Msg-Id";
pub const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";
pub const EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT: &str =
    "Nats-Expected-Last-Subject-Sequence-Subject";

/// One event as stored: its stream sequence, the exact payload bytes (the audit chain hashes
/// them), and the decoded event.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub sequence: u64,
    pub payload: Bytes,
    pub wire: v1::CaseEvent,
    pub event: CaseEvent,
    pub envelope: Envelope,
}

/// Where an appended event landed. `duplicate` is true when JetStream recognised the event id
/// (a retried write) and returned the sequence of the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub sequence: u64,
    pub duplicate: bool,
}

/// What the caller's decision step returns for the bus to append.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub wire: v1::CaseEvent,
    pub trace: TraceContext,
}

#[derive(Clone)]
pub struct CaseLog {
    jetstream: async_nats::jetstream::Context,
    /// The connection under `jetstream`, whose state decides whether a snapshot may be used.
    client: async_nats::Client,
    /// Where cases are read: the stream itself, or the case reader for a confined agency.
    reader: Reads,
    /// Signs every event this log writes (the writing agency's key).
    signer: Option<Arc<Signer>>,
    /// The keys events are verified under on read; `None` checks everything but signatures.
    /// Read once per check, so a registry swapped meanwhile applies from the next one.
    registry: Option<LiveRegistry>,
    /// Compact snapshots of recently written cases, so that a write usually reads nothing
    /// before it appends (see [`crate::snapshot`]).
    cache: Arc<Mutex<SnapshotCache>>,
    /// This log's writes to one case take turns (see [`crate::case_turns`]).
    turns: Arc<CaseTurns>,
}

/// How a log reads cases.
#[derive(Clone)]
enum Reads {
    /// Direct gets on the stream, seeing this process's own writes and deliveries on a
    /// replicated stream (the tracker, the auditor, the case reader, unconfined set-ups).
    Stream(Box<ReplicaReader>),
    /// Through the case reader, for an agency whose NATS user may not read the stream.
    Service(Box<ReadClient>),
}

impl Reads {
    fn saw(&self, case_id: CaseId, sequence: u64) {
        match self {
            Reads::Stream(reader) => reader.saw(case_id, sequence),
            Reads::Service(client) => client.saw(case_id, sequence),
        }
    }

    fn known(&self, case_id: &CaseId) -> u64 {
        match self {
            Reads::Stream(reader) => reader.known(case_id),
            Reads::Service(client) => client.known(case_id),
        }
    }

    /// Whether an answer may come from behind the leader. Through the reader it may (the
    /// reader's stream may be replicated): a refusal is confirmed with a leader read there.
    fn replicated(&self) -> bool {
        match self {
            Reads::Stream(reader) => reader.replicated(),
            Reads::Service(_) => true,
        }
    }

    fn after_conflict(&self) -> Freshness {
        match self {
            Reads::Stream(reader) => reader.after_conflict(),
            Reads::Service(_) => Freshness::Leader,
        }
    }

    fn leader_reads(&self) -> u64 {
        match self {
            Reads::Stream(reader) => reader.leader_reads(),
            Reads::Service(client) => client.leader_reads(),
        }
    }
}

/// What a read of a case found, nothing of it verified yet.
enum Read {
    /// The messages after the known sequence the read started from (all of them from 0).
    After(Vec<RawMessage>),
    /// The whole history: the known sequence was not in the case's chain.
    Whole(Vec<RawMessage>),
}

/// The next step of a write, decided on a snapshot.
enum Step {
    /// The request's event is already in the case, at this stream sequence.
    Duplicate(u64),
    /// Append `event` after `tip`.
    Decided { event: Box<CaseEvent>, tip: CaseTip },
    /// The case rules refused the command (or the snapshot did not fold).
    Refused(BusError),
}

impl CaseLog {
    /// Binds to the ONEDOOR stream, which must already exist (see [`crate::ensure_stream`]).
    pub async fn open(jetstream: async_nats::jetstream::Context) -> Result<Self, BusError> {
        let stream = jetstream
            .get_stream(crate::STREAM_NAME)
            .await
            .map_err(|e| BusError::nats("binding to the ONEDOOR stream", &e))?;
        Ok(Self::with_reads(
            jetstream,
            Reads::Stream(Box::new(ReplicaReader::new(stream))),
        ))
    }

    /// A log for `agency`, whose NATS user may publish its own events but read cases only
    /// through the case reader ([`crate::read`]): nothing here reads the stream, nor asks for
    /// its info. Reads time out with the context's timeout.
    pub fn through_reader(
        jetstream: async_nats::jetstream::Context,
        agency: AgencyCode,
        timeout: Duration,
    ) -> Self {
        let client = ReadClient::new(jetstream.client(), agency, timeout);
        Self::with_reads(jetstream, Reads::Service(Box::new(client)))
    }

    fn with_reads(jetstream: async_nats::jetstream::Context, reader: Reads) -> Self {
        CaseLog {
            client: jetstream.client(),
            jetstream,
            reader,
            signer: None,
            registry: None,
            cache: Arc::new(Mutex::new(SnapshotCache::new(SNAPSHOT_CACHE_BYTES))),
            turns: Arc::new(CaseTurns::new()),
        }
    }

    /// Every event written through this log is signed with `signer`.
    pub fn with_signer(mut self, signer: Signer) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }

    /// Every event read through this log must verify under `registry`'s keys (see
    /// [`crate::verify`]); a [`LiveRegistry`] swapped while the log runs applies from the
    /// next read, and empties the case snapshots verified under the previous one.
    pub fn with_registry(mut self, registry: impl Into<LiveRegistry>) -> Self {
        self.registry = Some(registry.into());
        self
    }

    /// The registry reads are verified under now, with its generation.
    fn registry_now(&self) -> (u64, Option<Arc<Registry>>) {
        match &self.registry {
            Some(live) => {
                let (generation, registry) = live.current_with_generation();
                (generation, Some(registry))
            }
            None => (0, None),
        }
    }

    /// Bounds the memory of the write path's case snapshots (default
    /// [`SNAPSHOT_CACHE_BYTES`]); 0 keeps only the case being written.
    pub fn with_cache_bytes(mut self, budget: usize) -> Self {
        self.cache = Arc::new(Mutex::new(SnapshotCache::new(budget)));
        self
    }

    /// Tells the log that `case_id` holds at least stream sequence `sequence` (an inbox
    /// delivery), so that the next read of the case on a replicated stream includes it.
    pub fn saw(&self, case_id: CaseId, sequence: u64) {
        self.reader.saw(case_id, sequence);
    }

    /// How many reads a lagging replica sent to the stream leader since start (0 on one
    /// replica).
    pub fn leader_reads(&self) -> u64 {
        self.reader.leader_reads()
    }

    fn cache(&self) -> MutexGuard<'_, SnapshotCache> {
        // A panic while holding the lock leaves at worst a stale snapshot, which the append's
        // expected sequence catches.
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        // A message quarantined under the previous registry (a transfer it did not call for)
        // may verify under the new one: nothing folded before the swap is kept.
        if let Some(live) = &self.registry {
            cache.follow_generation(live.generation());
        }
        cache
    }

    /// A case's events in order. Read backwards: the case's last event (the server's
    /// per-subject state, no scan), then each event's predecessor by the stream sequence its
    /// writer expected — the stored `Nats-Expected-Last-Subject-Sequence` header, which the
    /// server enforced when it stored the event, so it is an exact back-pointer — each a get by
    /// sequence. Measured with `onedoor bench`: a forward walk with wildcard "next message"
    /// gets makes nats-server 2.15 scan its message block on every get (76 % of its CPU) and
    /// capped hand-offs at ~700/s; this walk reached ~8,000/s. A message without that header
    /// (written by something other than this log) falls back to the forward walk, which also
    /// names any malformed message. Empty when the case does not exist.
    ///
    /// On a replicated stream the read includes every event this log wrote or was told of
    /// ([`CaseLog::saw`]), and "no such case" is the leader's answer, not a lagging replica's.
    ///
    /// Only the events that verify (see [`crate::verify`]); [`CaseLog::load_verified`] also
    /// says which messages were quarantined and why.
    pub async fn load(&self, case_id: CaseId) -> Result<Vec<StoredEvent>, BusError> {
        Ok(self.load_verified(case_id).await?.accepted)
    }

    /// [`CaseLog::load`], with the quarantined messages.
    pub async fn load_verified(&self, case_id: CaseId) -> Result<Verified, BusError> {
        let freshness = Freshness::Present(self.reader.known(&case_id));
        let raw = match self.load_since(case_id, 0, freshness).await? {
            Read::After(history) | Read::Whole(history) => history,
        };
        Ok(verify_history(
            case_id,
            raw,
            self.registry_now().1.as_deref(),
        ))
    }

    /// The events after stream sequence `known_last` (a sequence in the case's chain, or 0),
    /// by walking back from the case's last event to it. A chain that passes `known_last` by
    /// means it was not in the case: the whole case is read again.
    async fn load_since(
        &self,
        case_id: CaseId,
        known_last: u64,
        freshness: Freshness,
    ) -> Result<Read, BusError> {
        let reader = match &self.reader {
            Reads::Stream(reader) => reader,
            Reads::Service(client) => {
                let (whole, messages) = client.since(case_id, known_last, freshness).await?;
                return Ok(if whole {
                    Read::Whole(messages)
                } else {
                    Read::After(messages)
                });
            }
        };
        let filter = subjects::case_filter(&case_id.to_string())?;
        let Some(mut message) = reader.last(&filter, freshness).await? else {
            return Ok(Read::After(Vec::new()));
        };
        let mut newer = Vec::new();
        if message.sequence != known_last {
            loop {
                // The back-pointer is exact only when the server checked it against the whole
                // case; a message published by hand could point past events it wants hidden.
                let whole_case = message
                    .headers
                    .get(EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT)
                    .is_some_and(|value| value.as_str() == filter);
                let previous: Option<u64> = message
                    .headers
                    .get(EXPECTED_LAST_SUBJECT_SEQUENCE)
                    .and_then(|value| value.as_str().parse().ok())
                    .filter(|_| whole_case);
                let Some(previous) = previous.filter(|p| *p < message.sequence) else {
                    return Ok(Read::Whole(load_forward(reader, &filter).await?));
                };
                newer.push(raw(message));
                if previous == known_last {
                    break;
                }
                if previous < known_last {
                    return Box::pin(self.load_since(case_id, 0, freshness))
                        .await
                        .map(|read| match read {
                            Read::After(history) | Read::Whole(history) => Read::Whole(history),
                        });
                }
                message = reader.at(previous, freshness).await?;
            }
        }
        newer.reverse();
        Ok(Read::After(newer))
    }

    /// The next step for `request` from the cached snapshot, if its case is cached.
    fn cached_step(&self, request: &WriteRequest, registry: &Registry) -> Option<Step> {
        let mut cache = self.cache();
        let snapshot = cache.get(&request.case_id)?;
        Some(step(snapshot, request, registry))
    }

    /// Brings the case's snapshot up to date with a read (of what is new since the cached
    /// snapshot, or of the whole case) and decides the next step on it. `None`: the snapshot
    /// changed under the read in a way it cannot be merged with; read again.
    async fn refreshed_step(
        &self,
        request: &WriteRequest,
        registry: &Registry,
        freshness: Freshness,
    ) -> Result<Option<Step>, BusError> {
        if !self.refresh(request.case_id, freshness).await? {
            return Ok(None);
        }
        Ok(self
            .cache()
            .get(&request.case_id)
            .map(|snapshot| step(snapshot, request, registry)))
    }

    /// Whether the inbox delivery at stream `sequence` of `case_id` may be handed to the
    /// agency: `Some` with the reason when it was quarantined. Verifies, through the case's
    /// snapshot, only the messages new since the snapshot.
    pub async fn check_delivery(
        &self,
        case_id: CaseId,
        sequence: u64,
    ) -> Result<Option<Quarantined>, BusError> {
        self.saw(case_id, sequence);
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let cached = |cache: &mut SnapshotCache| {
                cache
                    .get(&case_id)
                    .filter(|s| s.tip.last_sequence >= sequence)
                    .map(|s| s.quarantined_at(sequence).cloned())
            };
            if let Some(verdict) = cached(&mut self.cache()) {
                return Ok(verdict);
            }
            if self.refresh(case_id, Freshness::Replica(sequence)).await?
                && let Some(verdict) = cached(&mut self.cache())
            {
                return Ok(verdict);
            }
        }
        Err(BusError::Corrupt {
            case_id: case_id.to_string(),
            why: format!("stream message {sequence} was not found in the case"),
        })
    }

    /// Runs `read` on the case's verified state as it stands at stream `sequence` or later
    /// (`None` before the case exists), from the case's snapshot: only messages newer than
    /// the snapshot are read and verified, so the cost does not grow with the case's history.
    /// The state lacks the summary and task instructions (see the snapshot); the citizen
    /// reference, tasks and due times are there.
    pub async fn with_state<R>(
        &self,
        case_id: CaseId,
        sequence: u64,
        read: impl FnOnce(Option<&CaseState>) -> R,
    ) -> Result<R, BusError> {
        self.saw(case_id, sequence);
        for _ in 0..MAX_APPEND_ATTEMPTS {
            {
                let mut cache = self.cache();
                if let Some(snapshot) = cache
                    .get(&case_id)
                    .filter(|s| s.tip.last_sequence >= sequence)
                {
                    return Ok(read(snapshot.state.as_ref()));
                }
            }
            self.refresh(case_id, Freshness::Replica(sequence)).await?;
        }
        Err(BusError::Corrupt {
            case_id: case_id.to_string(),
            why: format!("stream message {sequence} was not found in the case"),
        })
    }

    /// Brings the case's snapshot up to date with a read (of what is new since the cached
    /// snapshot, or of the whole case). `false`: the snapshot changed under the read in a way
    /// it cannot be merged with; read again.
    async fn refresh(&self, case_id: CaseId, freshness: Freshness) -> Result<bool, BusError> {
        let (generation, registry) = self.registry_now();
        let registry = registry.as_deref();
        let known = self.cache().get(&case_id).map(|s| s.tip.last_sequence);
        let read = self
            .load_since(case_id, known.unwrap_or(0), freshness)
            .await?;
        let mut cache = self.cache();
        if cache.generation() != generation {
            // Swapped during the read: what it would fold was verified under the old one.
            return Ok(false);
        }
        match read {
            Read::After(newer) if known.is_some_and(|k| k > 0) => {
                let known = known.unwrap_or_default();
                let head = newer.last().map_or(known, |m| m.sequence);
                let merged = cache.update(&case_id, |snapshot| {
                    let last = snapshot.tip.last_sequence;
                    if last == known {
                        for message in newer {
                            snapshot.push_raw(case_id, message, registry);
                        }
                        Ok(())
                    } else if last >= head {
                        // Another write of this log got further meanwhile.
                        Ok(())
                    } else {
                        Err(())
                    }
                });
                if !matches!(merged, Some(Ok(()))) {
                    return Ok(false);
                }
            }
            Read::After(history) | Read::Whole(history) => {
                let fresh = CaseSnapshot::from_messages(case_id, history, registry);
                let newer_cached = cache
                    .get(&case_id)
                    .is_some_and(|s| s.tip.last_sequence > fresh.tip.last_sequence);
                if !newer_cached {
                    cache.insert(case_id, fresh);
                }
            }
        }
        Ok(true)
    }

    /// Folds an event this log just appended into the case's snapshot, if the snapshot is
    /// still the one the event was decided on.
    fn remember(
        &self,
        base: &CaseTip,
        sequence: u64,
        payload: &[u8],
        prepared: &Prepared,
        event: &CaseEvent,
    ) {
        let hash = payload_digest(payload);
        let trace = &prepared.trace;
        let mut cache = self.cache();
        cache.update(&event.case_id, |snapshot| {
            if snapshot.tip.last_sequence == base.last_sequence {
                snapshot.push(sequence, hash, event, &trace.trace_id, &trace.span_id)
            } else {
                Ok(())
            }
        });
    }

    /// A request whose event id is already stored (in the case's snapshot, or JetStream's
    /// duplicate window, which spans the whole stream), answered from the stored event, but
    /// only if that event is this writer's on this case: anyone who knew the id could have
    /// stored something under it first. The caller still compares the request itself.
    async fn written_earlier(
        &self,
        request: &WriteRequest,
        sequence: u64,
    ) -> Result<Written, BusError> {
        let Some(message) = self.raw_at(sequence, Freshness::Replica(sequence)).await? else {
            return Err(id_taken(
                request,
                sequence,
                "a message this agency may not read".to_owned(),
            ));
        };
        let subject = message.subject;
        let stored = decode_stored(message.sequence, message.payload)
            .map_err(|e| id_taken(request, sequence, format!("the stored message: {e}")))?;
        if let Some(why) = self.not_ours(request, &stored, &subject) {
            return Err(id_taken(request, sequence, why));
        }
        self.reader.saw(request.case_id, sequence);
        let prepared = Prepared {
            trace: stored_trace(&stored),
            wire: stored.wire,
        };
        Ok(Written {
            sequence: stored.sequence,
            duplicate: true,
            event: stored.event,
            prepared,
        })
    }

    /// Why `stored` (on `subject`) is not the event this log would have written for
    /// `request`, if it is not.
    fn not_ours(
        &self,
        request: &WriteRequest,
        stored: &StoredEvent,
        subject: &str,
    ) -> Option<String> {
        let event = &stored.event;
        let writer = &request.command.agency;
        let expected_subject = subjects::case_subject(
            &request.case_id.to_string(),
            writer.as_str(),
            event.to.as_ref().map(|a| a.as_str()),
        )
        .ok();
        if event.case_id != request.case_id {
            Some(format!("an event of case {}", event.case_id))
        } else if event.event_id != request.event_id {
            Some(format!("event {} under that message id", event.event_id))
        } else if &event.from != writer || expected_subject.as_deref() != Some(subject) {
            Some(format!("an event published on {subject} as {}", event.from))
        } else if self
            .signer
            .as_ref()
            .is_some_and(|s| !s.signed(&stored.wire))
        {
            Some(format!("an event not signed with {writer}'s key"))
        } else {
            None
        }
    }

    /// The case's raw messages after `known_last` (`true`: the whole case, `known_last` was not
    /// in its chain), for the case reader, which verifies and confines them itself.
    pub(crate) async fn raw_since(
        &self,
        case_id: CaseId,
        known_last: u64,
        freshness: Freshness,
    ) -> Result<(bool, Vec<RawMessage>), BusError> {
        Ok(
            match self.load_since(case_id, known_last, freshness).await? {
                Read::After(messages) => (false, messages),
                Read::Whole(messages) => (true, messages),
            },
        )
    }

    /// The message at stream `sequence`, `None` when there is none (or, read through the case
    /// reader, when this agency may not read it).
    pub(crate) async fn raw_at(
        &self,
        sequence: u64,
        freshness: Freshness,
    ) -> Result<Option<RawMessage>, BusError> {
        match &self.reader {
            Reads::Service(client) => client.at(sequence, freshness).await,
            Reads::Stream(reader) => match reader.at(sequence, freshness).await {
                Ok(message) => Ok(Some(raw(message))),
                Err(BusError::Nats {
                    code: Some(10037), ..
                }) => Ok(None),
                Err(err) => Err(err),
            },
        }
    }

    /// Publishes one event with every contract header, expecting `expected_last` (0 for a new
    /// case) to be the case's last stream sequence. Returns only after JetStream stored it.
    pub async fn append(
        &self,
        prepared: &Prepared,
        expected_last: u64,
    ) -> Result<Appended, BusError> {
        let (event, _) = convert::from_wire(&prepared.wire)
            .map_err(|e| BusError::Encode { why: e.to_string() })?;
        let payload = Bytes::from(prepared.wire.encode_to_vec());
        self.publish(&event, prepared, payload, expected_last).await
    }

    /// [`Self::append`] of an event already decoded and encoded.
    async fn publish(
        &self,
        event: &CaseEvent,
        prepared: &Prepared,
        payload: Bytes,
        expected_last: u64,
    ) -> Result<Appended, BusError> {
        let subject = subjects::event_subject(event)?;
        let headers = headers(event, &prepared.wire, &prepared.trace, expected_last)?;
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| BusError::nats("publishing an event", &e))?;
        match ack.await {
            Ok(ack) => Ok(Appended {
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            }),
            Err(err) => {
                let error = BusError::nats("storing an event", &err);
                match error.nats_kind() {
                    // Both say another write reached the case first: 10071 from any stream,
                    // 10164 from a clustered leader while that write is still replicating.
                    // The caller re-reads and re-decides either way.
                    Some(
                        NatsErrorKind::WrongLastSequence | NatsErrorKind::ClusterWriteConflict,
                    ) => Err(BusError::Conflict {
                        case_id: event.case_id.to_string(),
                        expected_last,
                    }),
                    _ => Err(error),
                }
            }
        }
    }

    /// Writes one command: decides it with the case rules on the case's snapshot, appends; on
    /// a lost race re-reads what changed and re-decides (the rules may now refuse), up to
    /// [`MAX_APPEND_ATTEMPTS`] times. A request whose event id is already in the case's log is
    /// answered from the log and writes nothing (a retry after a lost reply or a crash).
    pub async fn execute(
        &self,
        request: &WriteRequest,
        registry: &Registry,
    ) -> Result<Written, BusError> {
        self.execute_traced(request, registry, &mut |_| None).await
    }

    /// [`Self::execute`], letting the writer choose the event's span once the case's tip is
    /// known: `own_span` gets it and returns the writer's span context (typically an
    /// OpenTelemetry span started as a child of [`CaseTip::trace_parent`]), or `None`.
    ///
    /// A cached snapshot is used as it is: the append expects its last sequence, so a stale one
    /// is refused by the server and costs a read of the events after it, and no wait (it lost
    /// no race). A refusal by the rules is only given on a snapshot read in this call, and on a
    /// replicated stream only on one read from the leader: a follower that is behind must not
    /// make a valid step fail. After a lost race the next read asks the leader too, since a
    /// replica that is behind would give the same stale tip again.
    pub async fn execute_traced(
        &self,
        request: &WriteRequest,
        registry: &Registry,
        own_span: &mut (dyn FnMut(&CaseTip) -> Option<TraceContext> + Send),
    ) -> Result<Written, BusError> {
        let _turn = self.turns.take(&request.case_id).await;
        // While the connection is down, a write on a snapshot would be queued by the client and
        // could land after the caller was told it failed; the read fails at once instead.
        let connected = self.client.connection_state() == async_nats::connection::State::Connected;
        let mut next = connected
            .then(|| self.cached_step(request, registry))
            .flatten();
        // How the next read must be answered, and how the current step's snapshot was read
        // during this call (`None`: it is the cached snapshot).
        let mut next_read = Freshness::Replica(self.reader.known(&request.case_id));
        let mut read_as: Option<Freshness> = None;
        let mut races = 0;
        loop {
            let current = match next.take() {
                Some(step) => step,
                None => {
                    read_as = Some(next_read);
                    match self.refreshed_step(request, registry, next_read).await? {
                        Some(step) => step,
                        None => continue,
                    }
                }
            };
            let (event, tip) = match current {
                Step::Duplicate(sequence) => {
                    return self.written_earlier(request, sequence).await;
                }
                Step::Refused(err) => match read_as {
                    None => continue,
                    Some(Freshness::Leader) => return Err(err),
                    Some(_) if !self.reader.replicated() => return Err(err),
                    Some(_) => {
                        next_read = Freshness::Leader;
                        continue;
                    }
                },
                Step::Decided { event, tip } => (*event, tip),
            };
            let span = own_span(&tip);
            let mut prepared = build(&event, &tip, request, span);
            if let Some(signer) = &self.signer {
                signer.sign(&mut prepared.wire);
            }
            let payload = Bytes::from(prepared.wire.encode_to_vec());
            match self
                .publish(&event, &prepared, payload.clone(), tip.last_sequence)
                .await
            {
                Ok(appended) if appended.duplicate => {
                    // JetStream kept an earlier message with this id, maybe not this writer's,
                    // maybe on another case: what the case holds is not known here.
                    self.cache().remove(&request.case_id);
                    return self.written_earlier(request, appended.sequence).await;
                }
                Ok(appended) => {
                    self.remember(&tip, appended.sequence, &payload, &prepared, &event);
                    self.reader.saw(request.case_id, appended.sequence);
                    return Ok(Written {
                        sequence: appended.sequence,
                        duplicate: false,
                        event,
                        prepared,
                    });
                }
                Err(BusError::Conflict { .. }) if read_as.is_none() => {
                    next_read = self.reader.after_conflict();
                    // Another write got to the case first, maybe long before: no wait.
                    tracing::debug!(case_id = %request.case_id, "lost a race on the case to a write after the snapshot; reading what changed");
                }
                Err(BusError::Conflict { .. }) => {
                    next_read = self.reader.after_conflict();
                    races += 1;
                    if races >= MAX_APPEND_ATTEMPTS {
                        return Err(BusError::TooManyConflicts {
                            case_id: request.case_id.to_string(),
                            attempts: races,
                        });
                    }
                    tracing::debug!(case_id = %request.case_id, attempt = races, "lost a race on the case; re-reading");
                    // Spread out retries so two writers that collided do not collide again.
                    tokio::time::sleep(Duration::from_millis(u64::from(races) * rand_jitter_ms()))
                        .await;
                }
                Err(other) => return Err(other),
            }
        }
    }
}

/// The forward walk: "next message on the case's subjects from sequence n", one get per event
/// and a final not-found. Slow on large streams (see [`CaseLog::load`]), but it reads whatever
/// is on the case's subjects, headers or not.
async fn load_forward(reader: &ReplicaReader, filter: &str) -> Result<Vec<RawMessage>, BusError> {
    let mut events = Vec::new();
    let mut next = 1;
    loop {
        let message = match reader
            .stream()
            .direct_get_next_for_subject(filter.to_owned(), Some(next))
            .await
        {
            Ok(message) => message,
            Err(err) if matches!(err.kind(), DirectGetErrorKind::NotFound) => {
                return Ok(events);
            }
            Err(err) => {
                return Err(BusError::nats("reading a case's events", &err));
            }
        };
        next = message.sequence + 1;
        events.push(raw(message));
    }
}

/// The next step for `request` on `snapshot`: already written, or the rules' decision.
fn step(snapshot: &CaseSnapshot, request: &WriteRequest, registry: &Registry) -> Step {
    if let Some(sequence) = snapshot.sequence_of(&request.event_id) {
        return Step::Duplicate(sequence);
    }
    match decide_on(snapshot.state.as_ref(), request, registry) {
        Ok(event) => Step::Decided {
            event: Box::new(event),
            tip: snapshot.tip.clone(),
        },
        Err(err) => Step::Refused(err),
    }
}

fn id_taken(request: &WriteRequest, sequence: u64, why: String) -> BusError {
    BusError::IdTaken {
        key: request.idempotency_key.clone(),
        event_id: request.event_id.to_string(),
        sequence,
        why,
    }
}

fn stored_trace(stored: &StoredEvent) -> TraceContext {
    TraceContext {
        trace_id: stored.envelope.trace_id.clone(),
        span_id: stored.envelope.span_id.clone(),
        sampled: true,
        tracestate: None,
    }
}

fn rand_jitter_ms() -> u64 {
    rand::random_range(1..=10)
}

fn raw(message: StreamMessage) -> RawMessage {
    RawMessage {
        sequence: message.sequence,
        subject: message.subject.to_string(),
        payload: message.payload,
    }
}

/// Decodes a stored message; a malformed one is an error naming its stream sequence.
pub fn decode_stored(sequence: u64, payload: Bytes) -> Result<StoredEvent, BusError> {
    let wire = v1::CaseEvent::decode(payload.as_ref()).map_err(|e| BusError::Decode {
        sequence,
        why: format!("payload is not a CaseEvent: {e}"),
    })?;
    let (event, envelope) = convert::from_wire(&wire).map_err(|e| BusError::Decode {
        sequence,
        why: e.to_string(),
    })?;
    Ok(StoredEvent {
        sequence,
        payload,
        wire,
        event,
        envelope,
    })
}

/// Header names, built once (a `&str` name is validated and copied on every insert).
const H_MSG_ID: HeaderName = HeaderName::from_static(NATS_MSG_ID);
const H_EXPECTED_LAST: HeaderName = HeaderName::from_static(EXPECTED_LAST_SUBJECT_SEQUENCE);
const H_EXPECTED_LAST_SUBJECT: HeaderName =
    HeaderName::from_static(EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT);
const H_TRACEPARENT: HeaderName = HeaderName::from_static(TRACEPARENT);
const H_TRACESTATE: HeaderName = HeaderName::from_static(TRACESTATE);
const H_SPECVERSION: HeaderName = HeaderName::from_static(ce::SPECVERSION);
const H_ID: HeaderName = HeaderName::from_static(ce::ID);
const H_SOURCE: HeaderName = HeaderName::from_static(ce::SOURCE);
const H_TYPE: HeaderName = HeaderName::from_static(ce::TYPE);
const H_TIME: HeaderName = HeaderName::from_static(ce::TIME);
const H_SUBJECT: HeaderName = HeaderName::from_static(ce::SUBJECT);
const H_DATACONTENTTYPE: HeaderName = HeaderName::from_static(ce::DATACONTENTTYPE);
const H_CORRELATIONID: HeaderName = HeaderName::from_static(ce::CORRELATIONID);
const H_CAUSATIONID: HeaderName = HeaderName::from_static(ce::CAUSATIONID);

/// The contract headers of one event message.
pub fn headers(
    event: &CaseEvent,
    wire: &v1::CaseEvent,
    trace: &TraceContext,
    expected_last: u64,
) -> Result<HeaderMap, BusError> {
    let mut headers = HeaderMap::new();
    let event_id = event.event_id.to_string();
    let case_id = event.case_id.to_string();
    headers.insert(H_MSG_ID, event_id.clone());
    headers.insert(H_EXPECTED_LAST, expected_last.to_string());
    headers.insert(H_EXPECTED_LAST_SUBJECT, subjects::case_filter(&case_id)?);
    headers.insert(H_TRACEPARENT, trace.traceparent());
    if let Some(state) = &trace.tracestate {
        headers.insert(H_TRACESTATE, state.as_str());
    }
    let time = event
        .occurred_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    headers.insert(H_SPECVERSION, ce::SPEC_VERSION);
    headers.insert(H_ID, ce::encode_owned(event_id));
    headers.insert(H_SOURCE, ce::encode_owned(ce::source(event.from.as_str())));
    headers.insert(
        H_TYPE,
        ce::encode_owned(format!("la.gov.onedoor.case.{}.v1", event.body.kind())),
    );
    headers.insert(H_TIME, ce::encode_owned(time));
    headers.insert(H_SUBJECT, ce::encode_owned(case_id.clone()));
    headers.insert(H_DATACONTENTTYPE, ce::DATA_CONTENT_TYPE);
    headers.insert(H_CORRELATIONID, ce::encode_owned(case_id));
    if !wire.causation_id.is_empty() {
        headers.insert(H_CAUSATIONID, ce::encode(&wire.causation_id));
    }
    Ok(headers)
}
