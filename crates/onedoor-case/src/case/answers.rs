//! Who hears an answer (accepted, completed, sent back) once the registry has ended the agency
//! that handed the task over. A transfer moves the tasks an ended agency *holds*; the tasks it
//! *handed out* stay with their holders, and their answers must reach someone who still reads
//! an inbox: the agency that does the sender's work today.
//!
//! The registry-free half (`authorize`, run by every fold) cannot know successors, so it lets
//! an answer name the sender or any other agency but the writer; this half, run by every
//! reader that holds a registry and by `decide` on its own output, narrows the latter to the
//! sender's successor.

use super::decide::Refusal;
use super::event::{CaseEvent, EventBody};
use super::state::{CaseState, Task};
use crate::codes::AgencyCode;
use crate::registry::{Ending, Registry};

/// Where an answer to `task` goes under `registry`: the agency that handed it over, or, when
/// the registry merged or renamed that agency away, its final successor. When that successor
/// is the holder itself (MPI handed MOF a task, then merged into MOF), the answer keeps the
/// old sender's address: an agency is never its own receiver, and it needs no telling.
pub fn answer_receiver<'a>(task: &'a Task, registry: &'a Registry) -> &'a AgencyCode {
    ended_sender_successor(&task.handed_by, registry)
        .filter(|successor| **successor != task.agency)
        .unwrap_or(&task.handed_by)
}

/// The final successor of `sender` when the registry ended it with one.
fn ended_sender_successor<'a>(
    sender: &'a AgencyCode,
    registry: &'a Registry,
) -> Option<&'a AgencyCode> {
    let ending = registry.agency(sender)?.ending;
    if !matches!(ending, Some(Ending::Merged | Ending::Renamed)) {
        return None;
    }
    registry.successor_of(sender).filter(|s| *s != sender)
}

/// May `event`, an answer on `case` (before it), name its receiver as it does under
/// `registry`? The sender itself is always right: history written before the change, and
/// adapters still running the old registry, address it. Otherwise the receiver must do the
/// sender's work today: share its final successor, as a transfer's successor must, so an
/// answer written under an earlier registry still verifies under a later one.
pub fn authorize_answer(
    case: &CaseState,
    event: &CaseEvent,
    registry: &Registry,
) -> Result<(), Refusal> {
    if !matches!(
        event.body,
        EventBody::Accepted | EventBody::Completed { .. } | EventBody::SentBack { .. }
    ) || case.is_resolved()
    {
        return Ok(());
    }
    // No task: the fold refuses it with the reason that matters.
    let Some(task) = case.tasks.get(&event.from) else {
        return Ok(());
    };
    let Some(to) = event.to.as_ref() else {
        return Ok(());
    };
    if *to == task.handed_by {
        return Ok(());
    }
    let successor = ended_sender_successor(&task.handed_by, registry);
    if successor.is_some() && registry.successor_of(to) == successor {
        return Ok(());
    }
    Err(Refusal::WrongReceiver {
        case_id: case.case_id,
        kind: event.body.kind(),
        expected: Some(answer_receiver(task, registry).clone()),
        found: Some(to.clone()),
    })
}

/// Every check on `event` that needs the registry, given the case's state before it (`None`
/// for the opening event): who may open, transfer, and whom an answer may reach. Readers run
/// it beside the fold; `decide` runs it on what it produces.
pub fn authorize_in_registry(
    case: Option<&CaseState>,
    event: &CaseEvent,
    registry: &Registry,
) -> Result<(), Refusal> {
    match case {
        None => super::authorize::authorize_open(event, registry),
        Some(case) => {
            super::transfer::authorize_transfer(event, registry)?;
            authorize_answer(case, event, registry)
        }
    }
}
