//! The write path shared by every adapter: fold the case's history, decide the command with the
//! case rules, and build the wire event (trace context continued, hash-linked to the previous
//! event), so that [`crate::CaseLog::execute`] can append it and re-decide on a lost race.

use onedoor_case::{CaseEvent, CaseId, CaseState, Command, EventId, Registry, decide};
use onedoor_proto::convert::{Envelope, to_wire};

use crate::case_log::{Prepared, StoredEvent};
use crate::error::BusError;
use crate::snapshot::{CaseTip, payload_digest};
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
    payload_digest(payload).to_vec()
}

/// The span a new event's span should be the child of (see [`CaseTip::trace_parent`]).
pub fn trace_parent(
    history: &[StoredEvent],
    caller: Option<&TraceContext>,
) -> Option<TraceContext> {
    CaseTip::of(history).trace_parent(caller)
}

/// The new event's trace context: the writer's own span (e.g. an OpenTelemetry span the adapter
/// started under [`CaseTip::trace_parent`]) when given and in the case's trace, else a fresh
/// child span.
fn trace_for(
    tip: &CaseTip,
    caller: Option<&TraceContext>,
    own: Option<TraceContext>,
) -> TraceContext {
    match (own, &tip.trace_id) {
        // A new case takes whatever trace the writer's span is in.
        (Some(own), None) => own,
        (Some(own), Some(case_trace)) if own.trace_id == *case_trace => own,
        _ => tip
            .trace_parent(caller)
            .map_or_else(TraceContext::new_root, |p| p.child()),
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
    let event = decide_on(state.as_ref(), request, registry)?;
    Ok(build(&event, &CaseTip::of(history), request, own_span))
}

/// The case rules' answer to `request` on the case's folded `state`.
pub(crate) fn decide_on(
    state: Option<&CaseState>,
    request: &WriteRequest,
    registry: &Registry,
) -> Result<CaseEvent, BusError> {
    Ok(decide(
        state,
        request.case_id,
        request.event_id,
        &request.command,
        registry,
    )?)
}

/// The wire event for a decided `event` following `tip`: trace continued, hash-linked.
pub(crate) fn build(
    event: &CaseEvent,
    tip: &CaseTip,
    request: &WriteRequest,
    own_span: Option<TraceContext>,
) -> Prepared {
    let trace = trace_for(tip, request.caller_trace.as_ref(), own_span);
    let envelope = Envelope {
        trace_id: trace.trace_id.clone(),
        span_id: trace.span_id.clone(),
        idempotency_key: request.idempotency_key.clone(),
        prev_hash: tip.last_hash.map(|h| h.to_vec()).unwrap_or_default(),
        key_id: String::new(),
        signature: Vec::new(),
    };
    Prepared {
        wire: to_wire(event, envelope),
        trace,
    }
}
