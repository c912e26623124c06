//! Wire `CaseEvent` ⇄ domain `CaseEvent`. The domain event is what the case rules reason about;
//! the wire envelope adds what the bus and the audit chain carry (trace context, idempotency key,
//! hash link, signature). Decoding checks every field once, here, so nothing inside re-checks.

use onedoor_case::{
    AgencyCode, CaseEvent, CaseId, DocumentRef, EventBody, EventId, Resolution, ServiceCode,
    TransferReason,
};
use time::OffsetDateTime;

use crate::v1;
use crate::v1::case_event::Body;

/// The parts of a wire event that are not case rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub trace_id: String,
    pub span_id: String,
    pub idempotency_key: String,
    pub prev_hash: Vec<u8>,
    pub key_id: String,
    pub signature: Vec<u8>,
}

/// A wire event that does not make a valid domain event: names the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("case event field {field}: {why}")]
pub struct WireError {
    pub field: &'static str,
    pub why: String,
}

fn wire_error(field: &'static str, why: impl ToString) -> WireError {
    WireError {
        field,
        why: why.to_string(),
    }
}

pub fn timestamp(at: OffsetDateTime) -> prost_types::Timestamp {
    let nanos = at.unix_timestamp_nanos();
    prost_types::Timestamp {
        seconds: i64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(i64::MAX),
        // rem_euclid of 1e9 always fits in i32.
        nanos: i32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0),
    }
}

pub fn from_timestamp(
    field: &'static str,
    ts: Option<&prost_types::Timestamp>,
) -> Result<OffsetDateTime, WireError> {
    let ts = ts.ok_or_else(|| wire_error(field, "missing"))?;
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(wire_error(
            field,
            format!("nanos {} out of range", ts.nanos),
        ));
    }
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|e| wire_error(field, e))
}

pub fn resolution_to_wire(resolution: Resolution) -> v1::Resolution {
    match resolution {
        Resolution::Approved => v1::Resolution::Approved,
        Resolution::Denied => v1::Resolution::Denied,
        Resolution::Withdrawn => v1::Resolution::Withdrawn,
    }
}

pub fn resolution_from_wire(field: &'static str, value: i32) -> Result<Resolution, WireError> {
    match v1::Resolution::try_from(value) {
        Ok(v1::Resolution::Approved) => Ok(Resolution::Approved),
        Ok(v1::Resolution::Denied) => Ok(Resolution::Denied),
        Ok(v1::Resolution::Withdrawn) => Ok(Resolution::Withdrawn),
        _ => Err(wire_error(
            field,
            format!("{value} is not approved (1), denied (2) or withdrawn (3)"),
        )),
    }
}

pub fn transfer_reason_to_wire(reason: TransferReason) -> v1::TransferReason {
    match reason {
        TransferReason::Merged => v1::TransferReason::Merged,
        TransferReason::Renamed => v1::TransferReason::Renamed,
    }
}

pub fn transfer_reason_from_wire(value: i32) -> Result<TransferReason, WireError> {
    match v1::TransferReason::try_from(value) {
        Ok(v1::TransferReason::Merged) => Ok(TransferReason::Merged),
        Ok(v1::TransferReason::Renamed) => Ok(TransferReason::Renamed),
        _ => Err(wire_error(
            "task_transferred.reason",
            format!("{value} is not merged (1) or renamed (2)"),
        )),
    }
}

pub fn documents_to_wire(documents: &[DocumentRef]) -> Vec<v1::DocumentRef> {
    documents
        .iter()
        .map(|d| v1::DocumentRef {
            name: d.name.clone(),
            sha256: d.sha256.clone(),
            uri: d.uri.clone(),
            media_type: d.media_type.clone(),
            size_bytes: d.size_bytes,
        })
        .collect()
}

pub fn documents_from_wire(documents: &[v1::DocumentRef]) -> Vec<DocumentRef> {
    documents
        .iter()
        .map(|d| DocumentRef {
            name: d.name.clone(),
            sha256: d.sha256.clone(),
            uri: d.uri.clone(),
            media_type: d.media_type.clone(),
            size_bytes: d.size_bytes,
        })
        .collect()
}

pub fn to_wire(event: &CaseEvent, envelope: Envelope) -> v1::CaseEvent {
    let body = match &event.body {
        EventBody::Opened {
            service,
            citizen_ref,
            summary,
            documents,
        } => Body::Opened(v1::CaseOpened {
            service: service.to_string(),
            citizen_ref: citizen_ref.clone(),
            summary: summary.clone(),
            origin_agency: event.from.to_string(),
            documents: documents_to_wire(documents),
        }),
        EventBody::HandedOff {
            instructions,
            due_at,
            documents,
        } => Body::HandedOff(v1::HandedOff {
            instructions: instructions.clone(),
            due_at: Some(timestamp(*due_at)),
            documents: documents_to_wire(documents),
        }),
        EventBody::Accepted => Body::Accepted(v1::TaskAccepted {}),
        EventBody::Completed {
            outcome,
            note,
            documents,
        } => Body::Completed(v1::TaskCompleted {
            outcome: outcome.clone(),
            note: note.clone(),
            documents: documents_to_wire(documents),
        }),
        EventBody::SentBack { reason } => Body::SentBack(v1::TaskSentBack {
            reason: reason.clone(),
        }),
        EventBody::InfoRequested { question } => Body::InfoRequested(v1::InfoRequested {
            question: question.clone(),
        }),
        EventBody::Resolved { resolution, note } => Body::Resolved(v1::CaseResolved {
            resolution: resolution_to_wire(*resolution).into(),
            note: note.clone(),
        }),
        EventBody::TaskClosed { resolution, note } => Body::TaskClosed(v1::TaskClosed {
            resolution: resolution_to_wire(*resolution).into(),
            note: note.clone(),
        }),
        EventBody::Transferred {
            registry_version,
            reason,
            due_at,
        } => Body::TaskTransferred(v1::TaskTransferred {
            registry_version: registry_version.clone(),
            reason: transfer_reason_to_wire(*reason).into(),
            due_at: Some(timestamp(*due_at)),
        }),
        EventBody::TakenBack { reason } => Body::TaskTakenBack(v1::TaskTakenBack {
            reason: reason.clone(),
        }),
    };
    v1::CaseEvent {
        event_id: event.event_id.to_string(),
        case_id: event.case_id.to_string(),
        case_version: event.version,
        occurred_at: Some(timestamp(event.occurred_at)),
        from_agency: event.from.to_string(),
        to_agency: event
            .to
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        actor: event.actor.clone(),
        trace_id: envelope.trace_id,
        span_id: envelope.span_id,
        causation_id: event.causation.map(|c| c.to_string()).unwrap_or_default(),
        idempotency_key: envelope.idempotency_key,
        prev_hash: envelope.prev_hash,
        key_id: envelope.key_id,
        body: Some(body),
        signature: envelope.signature,
    }
}

pub fn from_wire(wire: &v1::CaseEvent) -> Result<(CaseEvent, Envelope), WireError> {
    let agency = |field, text: &str| AgencyCode::parse(text).map_err(|e| wire_error(field, e));
    let body = match wire
        .body
        .as_ref()
        .ok_or_else(|| wire_error("body", "no event kind is set"))?
    {
        Body::Opened(b) => EventBody::Opened {
            service: ServiceCode::parse(&b.service).map_err(|e| wire_error("opened.service", e))?,
            citizen_ref: b.citizen_ref.clone(),
            summary: b.summary.clone(),
            documents: documents_from_wire(&b.documents),
        },
        Body::HandedOff(b) => EventBody::HandedOff {
            instructions: b.instructions.clone(),
            due_at: from_timestamp("handed_off.due_at", b.due_at.as_ref())?,
            documents: documents_from_wire(&b.documents),
        },
        Body::Accepted(_) => EventBody::Accepted,
        Body::Completed(b) => EventBody::Completed {
            outcome: b.outcome.clone(),
            note: b.note.clone(),
            documents: documents_from_wire(&b.documents),
        },
        Body::SentBack(b) => EventBody::SentBack {
            reason: b.reason.clone(),
        },
        Body::InfoRequested(b) => EventBody::InfoRequested {
            question: b.question.clone(),
        },
        Body::Resolved(b) => EventBody::Resolved {
            resolution: resolution_from_wire("resolved.resolution", b.resolution)?,
            note: b.note.clone(),
        },
        Body::TaskClosed(b) => EventBody::TaskClosed {
            resolution: resolution_from_wire("task_closed.resolution", b.resolution)?,
            note: b.note.clone(),
        },
        Body::TaskTransferred(b) => EventBody::Transferred {
            registry_version: b.registry_version.clone(),
            reason: transfer_reason_from_wire(b.reason)?,
            due_at: from_timestamp("task_transferred.due_at", b.due_at.as_ref())?,
        },
        Body::TaskTakenBack(b) => EventBody::TakenBack {
            reason: b.reason.clone(),
        },
    };
    let to = match wire.to_agency.as_str() {
        "" => None,
        text => Some(agency("to_agency", text)?),
    };
    let causation = match wire.causation_id.as_str() {
        "" => None,
        text => Some(EventId::parse(text).map_err(|e| wire_error("causation_id", e))?),
    };
    if wire.case_version == 0 {
        return Err(wire_error("case_version", "must be 1 or more"));
    }
    let event = CaseEvent {
        event_id: EventId::parse(&wire.event_id).map_err(|e| wire_error("event_id", e))?,
        case_id: CaseId::parse(&wire.case_id).map_err(|e| wire_error("case_id", e))?,
        version: wire.case_version,
        occurred_at: from_timestamp("occurred_at", wire.occurred_at.as_ref())?,
        from: agency("from_agency", &wire.from_agency)?,
        to,
        actor: wire.actor.clone(),
        causation,
        body,
    };
    let envelope = Envelope {
        trace_id: wire.trace_id.clone(),
        span_id: wire.span_id.clone(),
        idempotency_key: wire.idempotency_key.clone(),
        prev_hash: wire.prev_hash.clone(),
        key_id: wire.key_id.clone(),
        signature: wire.signature.clone(),
    };
    Ok((event, envelope))
}
