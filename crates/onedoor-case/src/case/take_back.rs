//! `task_taken_back`: the agency that handed a task over takes it back while it is still open
//! (sent to the wrong ministry, or the citizen changed the request). The one rule, for
//! `decide` and for every fold: only that sender, only an open task, naming the event that
//! gave the holder the task. Kept apart from `authorize` so the other rules stay as they are.

use super::decide::Refusal;
use super::event::{CaseEvent, EventBody};
use super::state::{CaseState, PastTask, Task, TaskEnd};
use crate::codes::AgencyCode;
use crate::ids::EventId;

/// `holder`'s open task on `case`, if `me` handed it over; otherwise why `me` may not take
/// it back. The sender is checked before the task's state, so an agency that never handed
/// the task over learns nothing more than that it may not.
pub(super) fn task_to_take_back<'a>(
    case: &'a CaseState,
    me: &AgencyCode,
    holder: &AgencyCode,
) -> Result<&'a Task, Refusal> {
    let case_id = case.case_id;
    let not_sender = |task: &Task| Refusal::NotTaskSender {
        case_id,
        agency: me.clone(),
        holder: holder.clone(),
        sender: task.handed_by.clone(),
    };
    if let Some(task) = case.tasks.get(holder) {
        return if task.handed_by == *me {
            Ok(task)
        } else {
            Err(not_sender(task))
        };
    }
    let past = case
        .past_tasks
        .iter()
        .rev()
        .find(|p| p.task.agency == *holder);
    match past {
        Some(past) if past.task.handed_by != *me => Err(not_sender(&past.task)),
        Some(past) => Err(Refusal::TaskEnded {
            case_id,
            agency: holder.clone(),
            end: past.end.words(),
        }),
        None => Err(Refusal::NoTaskToTakeBack {
            case_id,
            holder: holder.clone(),
        }),
    }
}

/// The `task_taken_back` event `me` may write for `holder`'s task: to the holder, caused by
/// the event that gave it the task.
pub(super) fn take_back(
    case: &CaseState,
    me: &AgencyCode,
    holder: &AgencyCode,
    reason: &str,
) -> Result<(AgencyCode, EventId, EventBody), Refusal> {
    let task = task_to_take_back(case, me, holder)?;
    Ok((
        holder.clone(),
        task.handoff_event,
        EventBody::TakenBack {
            reason: reason.to_owned(),
        },
    ))
}

/// May the writer of the stored `event` (a `task_taken_back`) have written it on `case`?
pub(super) fn authorize_take_back(case: &CaseState, event: &CaseEvent) -> Result<(), Refusal> {
    let case_id = case.case_id;
    let EventBody::TakenBack { reason } = &event.body else {
        return Ok(());
    };
    let holder = event.to.as_ref().ok_or(Refusal::NoReceiver { case_id })?;
    let task = task_to_take_back(case, &event.from, holder)?;
    if reason.trim().is_empty() {
        return Err(Refusal::Empty { field: "reason" });
    }
    if event.causation != Some(task.handoff_event) {
        return Err(Refusal::TakeBackMismatch {
            case_id,
            why: "its causation_id is not the event that gave the task to its holder",
        });
    }
    Ok(())
}

/// Folds an authorized `task_taken_back`: the holder's task ends as taken back.
pub(super) fn apply_take_back(case: &mut CaseState, event: &CaseEvent) -> Result<(), String> {
    let holder = event
        .to
        .as_ref()
        .ok_or_else(|| "a take-back names no holder".to_owned())?;
    let task = case
        .tasks
        .remove(holder)
        .ok_or_else(|| format!("{holder} holds no task"))?;
    case.past_tasks.push(PastTask {
        task,
        ended_at: event.occurred_at,
        end: TaskEnd::TakenBack,
    });
    Ok(())
}
