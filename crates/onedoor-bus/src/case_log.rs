//! The per-case event log on the ONEDOOR stream: load one case's events in order, and append a
//! new one so that two agencies acting on one case at once cannot both win.
//!
//! Concurrency is optimistic and enforced by the server: every append says which stream
//! sequence it believes is the case's last (`Nats-Expected-Last-Subject-Sequence`, filtered on
//! `onedoor.v1.case.<case_id>.>`). The loser gets "wrong last sequence", re-reads the case and
//! decides again with the case rules, which may now refuse the command.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use bytes::Bytes;
use onedoor_case::{CaseEvent, CaseId, Registry};
use onedoor_proto::convert::{self, Envelope};
use onedoor_proto::v1;
use prost::Message as _;

use crate::audit::Signer;
use crate::cloudevents as ce;
use crate::error::BusError;
use crate::subjects;
use crate::trace::{TRACEPARENT, TRACESTATE, TraceContext};
use crate::write::{WriteRequest, Written, prepare};

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
    stream: Stream,
    /// Signs every event this log writes (the writing agency's key).
    signer: Option<Arc<Signer>>,
    /// Recent case histories, so a write reads only what is new since (a "last event" get and
    /// the events after the cached one). Never trusted blindly: the last-event get validates
    /// it, and the append's expected sequence rejects anything stale.
    cache: Arc<Mutex<HistoryCache>>,
}

/// Most cases whose histories a log keeps: a bound on memory (a case is a few KiB).
pub const HISTORY_CACHE_CASES: usize = 1024;

/// Case histories, oldest-inserted evicted first.
#[derive(Default)]
struct HistoryCache {
    cases: HashMap<CaseId, Arc<Vec<StoredEvent>>>,
    order: VecDeque<CaseId>,
}

impl HistoryCache {
    fn get(&self, case_id: &CaseId) -> Option<Arc<Vec<StoredEvent>>> {
        self.cases.get(case_id).cloned()
    }

    fn put(&mut self, case_id: CaseId, history: Arc<Vec<StoredEvent>>) {
        if self.cases.insert(case_id, history).is_none() {
            self.order.push_back(case_id);
            while self.order.len() > HISTORY_CACHE_CASES {
                if let Some(old) = self.order.pop_front() {
                    self.cases.remove(&old);
                }
            }
        }
    }
}

impl CaseLog {
    /// Binds to the ONEDOOR stream, which must already exist (see [`crate::ensure_stream`]).
    pub async fn open(jetstream: async_nats::jetstream::Context) -> Result<Self, BusError> {
        let stream = jetstream
            .get_stream(crate::STREAM_NAME)
            .await
            .map_err(|e| BusError::Nats {
                action: "binding to the ONEDOOR stream",
                message: e.to_string(),
            })?;
        Ok(CaseLog {
            jetstream,
            stream,
            signer: None,
            cache: Arc::default(),
        })
    }

    /// Every event written through this log is signed with `signer`.
    pub fn with_signer(mut self, signer: Signer) -> Self {
        self.signer = Some(Arc::new(signer));
        self
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
    pub async fn load(&self, case_id: CaseId) -> Result<Vec<StoredEvent>, BusError> {
        self.load_since(case_id, None).await
    }

    /// [`CaseLog::load`] through the history cache: the cached history plus what was appended
    /// after it.
    async fn load_cached(&self, case_id: CaseId) -> Result<Vec<StoredEvent>, BusError> {
        let cached = self.cache.lock().ok().and_then(|cache| cache.get(&case_id));
        let history = self.load_since(case_id, cached).await?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.put(case_id, Arc::new(history.clone()));
        }
        Ok(history)
    }

    /// `known` (a prefix of the case's history, or nothing) brought up to date by walking back
    /// from the case's last event to the last known one. A chain that does not lead back to
    /// `known` means it was not a prefix: the whole case is read again.
    async fn load_since(
        &self,
        case_id: CaseId,
        known: Option<Arc<Vec<StoredEvent>>>,
    ) -> Result<Vec<StoredEvent>, BusError> {
        let filter = subjects::case_filter(&case_id.to_string())?;
        let nats = |err: String| BusError::Nats {
            action: "reading a case's events",
            message: err,
        };
        let mut message = match self
            .stream
            .direct_get_last_for_subject(filter.clone())
            .await
        {
            Ok(message) => message,
            Err(err) if matches!(err.kind(), DirectGetErrorKind::NotFound) => return Ok(Vec::new()),
            Err(err) => return Err(nats(err.to_string())),
        };
        let known_last = known
            .as_ref()
            .and_then(|k| k.last())
            .map_or(0, |e| e.sequence);
        let mut newer = Vec::new();
        if message.sequence != known_last {
            loop {
                let previous: Option<u64> = message
                    .headers
                    .get(EXPECTED_LAST_SUBJECT_SEQUENCE)
                    .and_then(|value| value.as_str().parse().ok());
                let Some(previous) = previous.filter(|p| *p < message.sequence) else {
                    return self.load_forward(&filter).await;
                };
                newer.push(decode_stored(message.sequence, message.payload)?);
                if previous == known_last {
                    break;
                }
                if previous < known_last {
                    return Box::pin(self.load_since(case_id, None)).await;
                }
                message = self
                    .stream
                    .direct_get(previous)
                    .await
                    .map_err(|err| nats(err.to_string()))?;
            }
        }
        newer.reverse();
        let mut history = known.map(|k| k.as_ref().clone()).unwrap_or_default();
        history.extend(newer);
        Ok(history)
    }

    /// The forward walk: "next message on the case's subjects from sequence n", one get per
    /// event and a final not-found. Slow on large streams (see [`CaseLog::load`]), but it reads
    /// whatever is on the case's subjects, headers or not.
    async fn load_forward(&self, filter: &str) -> Result<Vec<StoredEvent>, BusError> {
        let mut events = Vec::new();
        let mut next = 1;
        loop {
            let message = match self
                .stream
                .direct_get_next_for_subject(filter.to_owned(), Some(next))
                .await
            {
                Ok(message) => message,
                Err(err) if matches!(err.kind(), DirectGetErrorKind::NotFound) => {
                    return Ok(events);
                }
                Err(err) => {
                    return Err(BusError::Nats {
                        action: "reading a case's events",
                        message: err.to_string(),
                    });
                }
            };
            next = message.sequence + 1;
            events.push(decode_stored(message.sequence, message.payload)?);
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
        let subject = subjects::case_subject(
            &event.case_id.to_string(),
            event.from.as_str(),
            event.to.as_ref().map(|a| a.as_str()),
        )?;
        let headers = headers(&event, &prepared.wire, &prepared.trace, expected_last)?;
        let payload = Bytes::from(prepared.wire.encode_to_vec());
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| BusError::Nats {
                action: "publishing an event",
                message: e.to_string(),
            })?;
        match ack.await {
            Ok(ack) => Ok(Appended {
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            }),
            Err(err) if err.kind() == PublishErrorKind::WrongLastSequence => {
                Err(BusError::Conflict {
                    case_id: event.case_id.to_string(),
                    expected_last,
                })
            }
            Err(err) => Err(BusError::Nats {
                action: "storing an event",
                message: err.to_string(),
            }),
        }
    }

    /// Writes one command: loads the case, decides with the case rules, appends; on a lost race
    /// re-reads and re-decides (the rules may now refuse), up to [`MAX_APPEND_ATTEMPTS`] times.
    /// A request whose event id is already in the case's log is answered from the log and
    /// writes nothing (a retry after a lost reply or a crash).
    pub async fn execute(
        &self,
        request: &WriteRequest,
        registry: &Registry,
    ) -> Result<Written, BusError> {
        self.execute_traced(request, registry, &mut |_| None).await
    }

    /// [`Self::execute`], letting the writer choose the event's span once the case's history is
    /// known: `own_span` gets the history and returns the writer's span context (typically an
    /// OpenTelemetry span started as a child of [`crate::write::trace_parent`]), or `None`.
    pub async fn execute_traced(
        &self,
        request: &WriteRequest,
        registry: &Registry,
        own_span: &mut (dyn FnMut(&[StoredEvent]) -> Option<TraceContext> + Send),
    ) -> Result<Written, BusError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let history = self.load_cached(request.case_id).await?;
            if let Some(stored) = history
                .iter()
                .find(|s| s.event.event_id == request.event_id)
            {
                let prepared = Prepared {
                    wire: stored.wire.clone(),
                    trace: stored_trace(stored),
                };
                return Ok(Written {
                    sequence: stored.sequence,
                    duplicate: true,
                    event: stored.event.clone(),
                    prepared,
                });
            }
            let expected_last = history.last().map_or(0, |e| e.sequence);
            let span = own_span(&history);
            let mut prepared = prepare(&history, request, registry, span)?;
            if let Some(signer) = &self.signer {
                signer.sign(&mut prepared.wire);
            }
            match self.append(&prepared, expected_last).await {
                Ok(appended) => {
                    let (event, _) = convert::from_wire(&prepared.wire)
                        .map_err(|e| BusError::Encode { why: e.to_string() })?;
                    return Ok(Written {
                        sequence: appended.sequence,
                        duplicate: appended.duplicate,
                        event,
                        prepared,
                    });
                }
                Err(BusError::Conflict { .. }) if attempt < MAX_APPEND_ATTEMPTS => {
                    tracing::debug!(case_id = %request.case_id, attempt, "lost a race on the case; re-reading");
                    // Spread out retries so two writers that collided do not collide again.
                    tokio::time::sleep(Duration::from_millis(
                        u64::from(attempt) * rand_jitter_ms(),
                    ))
                    .await;
                }
                Err(BusError::Conflict { .. }) => {
                    return Err(BusError::TooManyConflicts {
                        case_id: request.case_id.to_string(),
                        attempts: attempt,
                    });
                }
                Err(other) => return Err(other),
            }
        }
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
    headers.insert(NATS_MSG_ID, event_id.as_str());
    headers.insert(
        EXPECTED_LAST_SUBJECT_SEQUENCE,
        expected_last.to_string().as_str(),
    );
    headers.insert(
        EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT,
        subjects::case_filter(&case_id)?.as_str(),
    );
    headers.insert(TRACEPARENT, trace.traceparent().as_str());
    if let Some(state) = &trace.tracestate {
        headers.insert(TRACESTATE, state.as_str());
    }
    let kind = event.body.kind();
    let time = event
        .occurred_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let attributes = [
        (ce::SPECVERSION, ce::SPEC_VERSION.to_owned()),
        (ce::ID, event_id.clone()),
        (ce::SOURCE, ce::source(event.from.as_str())),
        (ce::TYPE, format!("la.gov.onedoor.case.{kind}.v1")),
        (ce::TIME, time),
        (ce::SUBJECT, case_id.clone()),
        (ce::DATACONTENTTYPE, ce::DATA_CONTENT_TYPE.to_owned()),
        (ce::CORRELATIONID, case_id),
    ];
    for (name, value) in attributes {
        headers.insert(name, ce::encode(&value).as_str());
    }
    if !wire.causation_id.is_empty() {
        headers.insert(ce::CAUSATIONID, ce::encode(&wire.causation_id).as_str());
    }
    Ok(headers)
}
