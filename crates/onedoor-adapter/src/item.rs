//! What an inbox item means for the agency receiving it: its kind, the case's service and
//! citizen reference, the route step and due time of the task it is about, and the trace to
//! continue. Worked out from the case's current state, which is enough: a task keeps the id of
//! the hand-off that made it, so a hand-off that made no task is an answer to an info request.

use onedoor_case::{AgencyCode, CaseEvent, CaseState, EventBody, EventId, Registry, Resolution};
use onedoor_proto::convert::timestamp;
use onedoor_proto::v1::{self, InboxItemKind};
use time::OffsetDateTime;

use crate::catalogue;

/// The task made by the hand-off `handoff`, open or ended.
fn task_due(state: &CaseState, handoff: EventId) -> Option<OffsetDateTime> {
    state
        .tasks
        .values()
        .chain(state.past_tasks.iter().map(|p| &p.task))
        .find(|task| task.handoff_event == handoff)
        .map(|task| task.due_at)
}

fn made_task(state: &CaseState, handoff: EventId) -> bool {
    task_due(state, handoff).is_some()
}

/// The kind, the agency whose task the item is about, and that task's due time.
fn classify(
    state: &CaseState,
    event: &CaseEvent,
) -> (InboxItemKind, Option<AgencyCode>, Option<OffsetDateTime>) {
    let due_of_cause = || event.causation.and_then(|cause| task_due(state, cause));
    match &event.body {
        EventBody::HandedOff { due_at, .. } => {
            let kind = if made_task(state, event.event_id) {
                InboxItemKind::NewTask
            } else {
                InboxItemKind::InfoAnswer
            };
            (kind, event.to.clone(), Some(*due_at))
        }
        EventBody::Accepted => (
            InboxItemKind::TaskAccepted,
            Some(event.from.clone()),
            due_of_cause(),
        ),
        EventBody::Completed { .. } => {
            (InboxItemKind::TaskCompleted, Some(event.from.clone()), None)
        }
        EventBody::SentBack { .. } => (InboxItemKind::TaskSentBack, Some(event.from.clone()), None),
        EventBody::InfoRequested { .. } => {
            (InboxItemKind::InfoRequest, Some(event.from.clone()), None)
        }
        EventBody::TaskClosed { resolution, .. } => {
            let kind = if *resolution == Resolution::Withdrawn {
                InboxItemKind::CaseWithdrawn
            } else {
                InboxItemKind::CaseResolved
            };
            (kind, event.to.clone(), None)
        }
        // The successor's new task: the same work, with the due time it always had.
        EventBody::Transferred { due_at, .. } => {
            (InboxItemKind::NewTask, event.to.clone(), Some(*due_at))
        }
        // The holder's task ended: the step is its own, and no due time is left to keep.
        EventBody::TakenBack { .. } => (InboxItemKind::TaskTakenBack, event.to.clone(), None),
        // Never addressed to an agency, so never in an inbox.
        EventBody::Opened { .. } | EventBody::Resolved { .. } => {
            (InboxItemKind::Unspecified, None, None)
        }
    }
}

/// The inbox item for `wire` (the stored event, `event` decoded), on the case as `state` now
/// stands.
pub fn inbox_item(
    state: &CaseState,
    event: &CaseEvent,
    wire: v1::CaseEvent,
    registry: Option<&Registry>,
) -> v1::InboxItem {
    let (kind, holder, due_at) = classify(state, event);
    let step = registry
        .and_then(|registry| registry.service(&state.service))
        .zip(holder.as_ref())
        .and_then(|(service, holder)| catalogue::step_of(service, holder));
    v1::InboxItem {
        traceparent: format!("00-{}-{}-01", wire.trace_id, wire.span_id),
        event: Some(wire),
        delivery_attempt: 0,
        stream_sequence: 0,
        kind: kind.into(),
        service: state.service.to_string(),
        citizen_ref: state.citizen_ref.clone(),
        step,
        due_at: due_at.map(timestamp),
        redelivered_from_stuck: false,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use onedoor_case::TransferReason::Merged;
    use onedoor_case::{Action, CaseId, Command, EventId, ServiceCode, decide};
    use onedoor_proto::convert::{Envelope, to_wire};

    use super::*;

    fn registry(file: &str) -> Registry {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/registry")
            .join(file);
        Registry::load(&path).expect("shipped registry")
    }

    fn code(text: &str) -> AgencyCode {
        AgencyCode::parse(text).expect("code")
    }

    /// Decides `action` by `agency` under `registry` and folds it into `state`.
    fn act(
        state: &mut Option<CaseState>,
        case_id: CaseId,
        agency: &str,
        action: Action,
        registry: &Registry,
    ) -> CaseEvent {
        let command = Command {
            agency: code(agency),
            actor: String::new(),
            at: OffsetDateTime::now_utc(),
            action,
        };
        let event = decide(
            state.as_ref(),
            case_id,
            EventId::generate(),
            &command,
            registry,
        )
        .expect("allowed");
        *state = Some(CaseState::apply(state.take(), &event).expect("folds"));
        event
    }

    /// The successor finds a transferred task in its inbox as a new task, due when it always was.
    #[test]
    fn a_transfer_is_a_new_task_for_the_successor_with_the_original_due_time() {
        let (old, new) = (registry("lao-2021.toml"), registry("lao-2025.toml"));
        let (mut state, case_id) = (None, CaseId::generate());
        let front = "ODSC-VTE-SAYSETTHA";
        let open = Action::Open {
            service: ServiceCode::parse("investment-licence").expect("service"),
            citizen_ref: "R".into(),
            summary: String::new(),
            documents: vec![],
        };
        act(&mut state, case_id, front, open, &old);
        let hand_off = Action::HandOff {
            to: code("MPI"),
            instructions: "x".into(),
            documents: vec![],
            due_working_days: None,
        };
        act(&mut state, case_id, front, hand_off, &old);
        let due = state.as_ref().expect("open").tasks[&code("MPI")].due_at;
        let moved = act(&mut state, case_id, "MPI", Action::Transfer, &new);
        let wire = to_wire(&moved, Envelope::default());
        let item = inbox_item(state.as_ref().expect("open"), &moved, wire, Some(&new));
        assert_eq!(item.kind, i32::from(InboxItemKind::NewTask));
        assert_eq!(item.due_at, Some(timestamp(due)));
        assert_eq!(moved.to, Some(code("MOF")));
        assert!(matches!(
            moved.body,
            EventBody::Transferred { reason: Merged, .. }
        ));
    }
}
