//! Wire requests become domain commands here, once: every id and code is parsed, so nothing
//! further in re-checks them. Text limits are checked by the case rules (`check_input`).

use onedoor_case::{Action, AgencyCode, CaseId, EventId, ServiceCode, limits};
use onedoor_proto::convert::{documents_from_wire, resolution_from_wire};
use onedoor_proto::v1;

use crate::error::AdapterError;

/// A write request in domain form, before ids are assigned.
#[derive(Debug, Clone)]
pub struct WriteInput {
    /// `None` for OpenCase (the id is derived from the idempotency key).
    pub case_id: Option<CaseId>,
    pub action: Action,
    pub actor: String,
    pub idempotency_key: String,
}

fn invalid(field: &'static str, why: impl ToString) -> AdapterError {
    AdapterError::InvalidArgument {
        field,
        why: why.to_string(),
    }
}

pub fn case_id(text: &str) -> Result<CaseId, AdapterError> {
    if text.is_empty() {
        return Err(invalid("case_id", "is required"));
    }
    CaseId::parse(text).map_err(|e| invalid("case_id", e))
}

pub fn event_id(text: &str) -> Result<EventId, AdapterError> {
    EventId::parse(text).map_err(|e| invalid("event_ids", e))
}

fn key(text: &str) -> Result<String, AdapterError> {
    if text.is_empty() {
        return Err(invalid(
            "idempotency_key",
            "is required: send a unique key (e.g. a UUID) so a retry is recognised",
        ));
    }
    onedoor_case::text::check_identifier(text).map_err(|e| invalid("idempotency_key", e))?;
    if text.len() > limits::IDEMPOTENCY_KEY_MAX_BYTES {
        return Err(invalid(
            "idempotency_key",
            format!(
                "is {} bytes; the limit is {}",
                text.len(),
                limits::IDEMPOTENCY_KEY_MAX_BYTES
            ),
        ));
    }
    Ok(text.to_owned())
}

fn write(
    case: Option<&str>,
    action: Action,
    actor: &str,
    idempotency_key: &str,
) -> Result<WriteInput, AdapterError> {
    Ok(WriteInput {
        case_id: case.map(case_id).transpose()?,
        action,
        actor: actor.to_owned(),
        idempotency_key: key(idempotency_key)?,
    })
}

impl TryFrom<v1::OpenCaseRequest> for WriteInput {
    type Error = AdapterError;
    fn try_from(r: v1::OpenCaseRequest) -> Result<Self, AdapterError> {
        if r.service.is_empty() {
            return Err(invalid(
                "service",
                "is required (a catalogue code such as enterprise-registration)",
            ));
        }
        let service = ServiceCode::parse(&r.service).map_err(|e| invalid("service", e))?;
        let documents = documents_from_wire(&r.documents);
        let action = Action::Open {
            service,
            citizen_ref: r.citizen_ref,
            summary: r.summary,
            documents,
        };
        write(None, action, &r.actor, &r.idempotency_key)
    }
}

impl TryFrom<v1::HandOffRequest> for WriteInput {
    type Error = AdapterError;
    fn try_from(r: v1::HandOffRequest) -> Result<Self, AdapterError> {
        if r.to_agency.is_empty() {
            return Err(invalid(
                "to_agency",
                "is required (an agency code such as MOF)",
            ));
        }
        let to = AgencyCode::parse(&r.to_agency).map_err(|e| invalid("to_agency", e))?;
        let action = Action::HandOff {
            to,
            instructions: r.instructions,
            documents: documents_from_wire(&r.documents),
            due_working_days: r.due_working_days,
        };
        write(Some(&r.case_id), action, &r.actor, &r.idempotency_key)
    }
}

impl TryFrom<v1::AcceptRequest> for WriteInput {
    type Error = AdapterError;
    fn try_from(r: v1::AcceptRequest) -> Result<Self, AdapterError> {
        write(
            Some(&r.case_id),
            Action::Accept,
            &r.actor,
            &r.idempotency_key,
        )
    }
}

impl TryFrom<v1::CompleteRequest> for WriteInput {
    type Error = AdapterError;
    fn try_from(r: v1::CompleteRequest) -> Result<Self, AdapterError> {
        let action = Action::Complete {
            outcome: r.outcome,
            note: r.note,
            documents: documents_from_wire(&r.documents),
        };
        write(Some(&r.case_id), action, &r.actor, &r.idempotency_key)
    }
}

impl TryFrom<v1::SendBackRequest> for WriteInput {
    type Error = AdapterError;
    fn try_from(r: v1::SendBackRequest) -> Result<Self, AdapterError> {
        write(
            Some(&r.case_id),
            Action::SendBack { reason: r.reason },
            &r.actor,
            &r.idempotency_key,
        )
    }
}

impl TryFrom<v1::RequestInfoRequest> for WriteInput {
    type Error = AdapterError;
    fn try_from(r: v1::RequestInfoRequest) -> Result<Self, AdapterError> {
        write(
            Some(&r.case_id),
            Action::RequestInfo {
                question: r.question,
            },
            &r.actor,
            &r.idempotency_key,
        )
    }
}

impl TryFrom<v1::ResolveCaseRequest> for WriteInput {
    type Error = AdapterError;
    fn try_from(r: v1::ResolveCaseRequest) -> Result<Self, AdapterError> {
        let resolution = resolution_from_wire("resolution", r.resolution)
            .map_err(|e| invalid("resolution", e.why))?;
        write(
            Some(&r.case_id),
            Action::Resolve {
                resolution,
                note: r.note,
            },
            &r.actor,
            &r.idempotency_key,
        )
    }
}

impl TryFrom<v1::RecallTaskRequest> for WriteInput {
    type Error = AdapterError;
    fn try_from(r: v1::RecallTaskRequest) -> Result<Self, AdapterError> {
        if r.holder_agency.is_empty() {
            return Err(invalid(
                "holder_agency",
                "is required (the code of the agency holding the task, such as MOIC)",
            ));
        }
        let holder =
            AgencyCode::parse(&r.holder_agency).map_err(|e| invalid("holder_agency", e))?;
        let action = Action::TakeBack {
            holder,
            reason: r.reason,
        };
        write(Some(&r.case_id), action, &r.actor, &r.idempotency_key)
    }
}
