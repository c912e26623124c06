//! The wire `CaseView` of a case, built from its folded state and its stored events. Shared by
//! the adapter's `GetCase` and the tracker, so both show a case the same way.

use onedoor_case::{CaseState, CaseStatus, TaskState};
use time::OffsetDateTime;

use crate::convert::{resolution_to_wire, timestamp};
use crate::v1;

pub fn status_to_wire(status: CaseStatus) -> v1::CaseStatus {
    match status {
        CaseStatus::AtFrontOffice => v1::CaseStatus::AtFrontOffice,
        CaseStatus::InProgress => v1::CaseStatus::InProgress,
        CaseStatus::AwaitingInfo => v1::CaseStatus::AwaitingInfo,
        CaseStatus::Resolved(_) => v1::CaseStatus::Resolved,
    }
}

/// `events` are the case's wire events, oldest first; `now` decides what is overdue.
pub fn case_view(
    state: &CaseState,
    events: Vec<v1::CaseEvent>,
    now: OffsetDateTime,
) -> v1::CaseView {
    // Oldest hand-off first, as the contract and the tracker list them.
    let mut tasks: Vec<_> = state.tasks.values().collect();
    tasks.sort_by_key(|task| (task.handed_off_at, task.handoff_event));
    let open_tasks: Vec<v1::Task> = tasks
        .into_iter()
        .map(|task| v1::Task {
            handoff_event_id: task.handoff_event.to_string(),
            agency: task.agency.to_string(),
            from_agency: task.handed_by.to_string(),
            state: match task.state {
                TaskState::Pending => v1::TaskState::Pending,
                TaskState::Accepted => v1::TaskState::Accepted,
            }
            .into(),
            instructions: task.instructions.clone(),
            handed_off_at: Some(timestamp(task.handed_off_at)),
            accepted_at: task.accepted_at.map(timestamp),
            due_at: Some(timestamp(task.due_at)),
            overdue: now > task.due_at,
            open_question: task.info_requested.clone().unwrap_or_default(),
        })
        .collect();
    let trace_id = events
        .first()
        .map(|e| e.trace_id.clone())
        .unwrap_or_default();
    let updated_at = events.last().and_then(|e| e.occurred_at);
    v1::CaseView {
        case_id: state.case_id.to_string(),
        service: state.service.to_string(),
        status: status_to_wire(state.status()).into(),
        trace_id,
        origin_agency: state.origin.to_string(),
        overdue: open_tasks.iter().any(|t| t.overdue),
        open_tasks,
        events,
        citizen_ref: state.citizen_ref.clone(),
        summary: state.summary.clone(),
        opened_at: Some(timestamp(state.opened_at)),
        resolved_at: state.resolution.map(|(_, at)| timestamp(at)),
        resolution: state
            .resolution
            .map_or(v1::Resolution::Unspecified, |(r, _)| resolution_to_wire(r))
            .into(),
        version: state.version,
        updated_at,
        // The reader that verified the history fills it in.
        quarantined: Vec::new(),
        // A district office's adapter fills it in.
        awaiting_link_event_ids: Vec::new(),
    }
}
