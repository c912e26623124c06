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

/// The case's trace: fixed by its opening event; a later writer's span continues it.
fn trace_for(history: &[StoredEvent], caller: Option<&TraceContext>) -> TraceContext {
    let Some(first) = history.first() else {
        return caller.map_or_else(TraceContext::new_root, TraceContext::child);
    };
    let case_trace = &first.envelope.trace_id;
    match caller {
        Some(caller) if caller.trace_id == *case_trace => caller.child(),
        _ => TraceContext::continuing(case_trace).unwrap_or_else(TraceContext::new_root),
    }
}

/// Folds `history`, decides `request`, and builds the event to append. Pure apart from
/// randomness in new span ids.
pub fn prepare(
    history: &[StoredEvent],
    request: &WriteRequest,
    registry: &Registry,
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
    let trace = trace_for(history, request.caller_trace.as_ref());
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
