//! The write path shared by every adapter: fold the case's history, decide the command with the
//! case rules, and build the wire event (trace context continued, hash-linked to the previous
//! event), so that [`crate::CaseLog::execute`] can append it and re-decide on a lost race.

use onedoor_case::{CaseEvent, CaseId, CaseState, Command, EventId, Registry, decide};
use onedoor_proto::convert::{Envelope, to_wire};
use sha2::{Digest as _, Sha256};

use crate::case_log::{Prepared, StoredEvent};
use crate::error::BusError;
use crate::trace::TraceContext;

/// One command to write to one case.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    pub case_id: CaseId,
    /// Chosen by the caller (derived from the idempotency key, so a retried request maps to the
    /// same event id and JetStream's de-duplication recognises it).
    pub event_id: EventId,
    pub command: Command,
    pub idempotency_key: String,
    /// The writer's span, if the caller sent `traceparent`; used for the opening event's trace
    /// and as the parent of later ones when it is already in the case's trace.
    pub caller_trace: Option<TraceContext>,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    pub sequence: u64,
    /// True when the event was already in the log (a retried request): nothing new was written.
    pub duplicate: bool,
    pub event: CaseEvent,
    pub prepared: Prepared,
}

/// SHA-256 of a stored payload: the `prev_hash` of the event after it.
pub fn payload_hash(payload: &[u8]) -> Vec<u8> {
    Sha256::digest(payload).to_vec()
}

/// The span a new event's span should be the child of: the caller's span when it is already in
/// the case's trace (or when the case is being opened), else the last event's span, so the
/// case's journey forms one connected trace whatever the callers send.
pub fn trace_parent(
    history: &[StoredEvent],
    caller: Option<&TraceContext>,
) -> Option<TraceContext> {
    let Some(first) = history.first() else {
        return caller.cloned();
    };
    let case_trace = &first.envelope.trace_id;
    match caller {
        Some(caller) if caller.trace_id == *case_trace => Some(caller.clone()),
        _ => {
            let last = history.last().unwrap_or(first);
            TraceContext::parse(
                &format!("00-{case_trace}-{}-01", last.envelope.span_id),
                None,
            )
            .ok()
        }
    }
}

/// The new event's trace context: the writer's own span (e.g. an OpenTelemetry span the adapter
/// started under [`trace_parent`]) when given and in the case's trace, else a fresh child span.
fn trace_for(
    history: &[StoredEvent],
    caller: Option<&TraceContext>,
    own: Option<TraceContext>,
) -> TraceContext {
    let parent = trace_parent(history, caller);
    let case_trace = history.first().map(|first| first.envelope.trace_id.clone());
    match (own, &case_trace) {
        // A new case takes whatever trace the writer's span is in.
        (Some(own), None) => own,
        (Some(own), Some(case_trace)) if own.trace_id == *case_trace => own,
        _ => parent.map_or_else(TraceContext::new_root, |p| p.child()),
    }
}

/// Folds `history`, decides `request`, and builds the event to append. Pure apart from
/// randomness in new span ids.
pub fn prepare(
    history: &[StoredEvent],
    request: &WriteRequest,
    registry: &Registry,
    own_span: Option<TraceContext>,
) -> Result<Prepared, BusError> {
    let state =
        CaseState::fold(history.iter().map(|s| &s.event)).map_err(|e| BusError::Corrupt {
            case_id: request.case_id.to_string(),
            why: e.to_string(),
        })?;
    let event = decide(
        state.as_ref(),
        request.case_id,
        request.event_id,
        &request.command,
        registry,
    )?;
    let trace = trace_for(history, request.caller_trace.as_ref(), own_span);
    let envelope = Envelope {
        trace_id: trace.trace_id.clone(),
        span_id: trace.span_id.clone(),
        idempotency_key: request.idempotency_key.clone(),
        prev_hash: history
            .last()
            .map(|s| payload_hash(&s.payload))
            .unwrap_or_default(),
        key_id: String::new(),
        signature: Vec::new(),
    };
    Ok(Prepared {
        wire: to_wire(&event, envelope),
        trace,
    })
}
