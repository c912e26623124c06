//! Who may write each step, checked on an event rather than a command: the fold runs it on
//! every stored event and `decide` runs it on its own output, so the adapter, the tracker and
//! the audit give one answer. It accepts exactly what `decide` can produce, minus the
//! registry-dependent checks on receivers (a later merge must not invalidate old history).

use time::{Duration, OffsetDateTime};

use super::decide::Refusal;
use super::event::{CaseEvent, EventBody, Resolution};
use super::state::{CaseState, Task, TaskEnd, TaskState};
use crate::codes::AgencyCode;
use crate::registry::{AgencyKind, Registry};

/// How far an event's time may fall behind the event before it. Adapters stamp events with
/// their own clocks, and hosts of different ministries drift apart by seconds, NTP steps
/// included; five minutes absorbs that while refusing a writer that back-dates a step to
/// slip it in before a deadline.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

/// May the writer of `event` write it after `case`'s state (which is not resolved)?
pub fn authorize(case: &CaseState, event: &CaseEvent) -> Result<(), Refusal> {
    check_time(case.last_event_at, event.occurred_at)?;
    let me = &event.from;
    let case_id = case.case_id;
    match &event.body {
        EventBody::Opened { .. } => Err(Refusal::CaseExists { case_id }),
        EventBody::HandedOff { .. } => {
            if *me != case.origin {
                accepted_holder(case, me, "hand on")?;
            }
            let to = event.to.as_ref().ok_or(Refusal::NoReceiver { case_id })?;
            if to == me {
                return Err(Refusal::HandOffToSelf { agency: me.clone() });
            }
            match case.tasks.get(to) {
                Some(task) if !(*me == case.origin && task.info_requested.is_some()) => {
                    Err(Refusal::TaskAlreadyOpen {
                        case_id,
                        agency: to.clone(),
                    })
                }
                _ => Ok(()),
            }
        }
        EventBody::Accepted => {
            let task = holder(case, me, "accept")?;
            if task.state == TaskState::Accepted {
                return Err(Refusal::TaskAlreadyAccepted {
                    case_id,
                    agency: me.clone(),
                });
            }
            answers(case, task, event)
        }
        EventBody::Completed { .. } => {
            let task = accepted_holder(case, me, "complete")?;
            answers(case, task, event)
        }
        EventBody::SentBack { .. } => {
            let task = holder(case, me, "send back")?;
            answers(case, task, event)
        }
        EventBody::InfoRequested { .. } => {
            accepted_holder(case, me, "request info")?;
            addressed_to(case, event, Some(&case.origin))
        }
        EventBody::Resolved { resolution, .. } => {
            if *me != case.origin {
                return Err(Refusal::NotOrigin {
                    case_id,
                    origin: case.origin.clone(),
                    action: "resolve",
                });
            }
            if *resolution == Resolution::Approved && !case.tasks.is_empty() {
                return Err(Refusal::OpenTasksRemain {
                    case_id,
                    open: case.tasks.keys().cloned().collect(),
                });
            }
            addressed_to(case, event, None)
        }
        EventBody::TaskClosed { .. } => Err(Refusal::NothingToNotify {
            case_id,
            agency: event.to.clone(),
        }),
        EventBody::Transferred {
            registry_version,
            due_at,
            ..
        } => transfer(case, event, registry_version, *due_at),
        EventBody::TakenBack { .. } => super::take_back::authorize_take_back(case, event),
    }
}

/// The case's half of a transfer's checks (the registry's is `authorize_transfer`): the writer
/// holds a task, names someone else, and carries that task's hand-off and due time unchanged.
fn transfer(
    case: &CaseState,
    event: &CaseEvent,
    registry_version: &str,
    due_at: OffsetDateTime,
) -> Result<(), Refusal> {
    let (me, case_id) = (&event.from, case.case_id);
    let task = holder(case, me, "transfer")?;
    let to = event.to.as_ref().ok_or(Refusal::NoReceiver { case_id })?;
    if to == me {
        return Err(Refusal::HandOffToSelf { agency: me.clone() });
    }
    if registry_version.is_empty() {
        return Err(Refusal::Empty {
            field: "registry_version",
        });
    }
    let why = if event.causation != Some(task.handoff_event) {
        Some("its causation_id is not the event that gave the task to its holder")
    } else if due_at != task.due_at {
        Some("its due_at is not the task's")
    } else {
        None
    };
    match why {
        Some(why) => Err(Refusal::TransferMismatch { case_id, why }),
        None => Ok(()),
    }
}

/// May the writer of `event` write it on `case`, which is resolved: only the origin's
/// `task_closed` notice to an agency whose open task the resolution closed, once per agency,
/// repeating the resolution and caused by it. Anything else is refused as on a resolved case.
pub fn authorize_after_resolution(case: &CaseState, event: &CaseEvent) -> Result<(), Refusal> {
    let case_id = case.case_id;
    let (EventBody::TaskClosed { resolution, note }, Some((resolved, _)), Some((cause, said))) =
        (&event.body, case.resolution, case.resolved.as_ref())
    else {
        return Err(Refusal::CaseResolved { case_id });
    };
    check_time(case.last_event_at, event.occurred_at)?;
    if event.from != case.origin {
        return Err(Refusal::NotOrigin {
            case_id,
            origin: case.origin.clone(),
            action: "notify the closed tasks of",
        });
    }
    let to = event
        .to
        .as_ref()
        .filter(|to| {
            case.past_tasks
                .iter()
                .any(|p| p.task.agency == **to && p.end == TaskEnd::ClosedByResolution)
        })
        .ok_or_else(|| Refusal::NothingToNotify {
            case_id,
            agency: event.to.clone(),
        })?;
    if case.notified.contains(to) {
        return Err(Refusal::AlreadyNotified {
            case_id,
            agency: to.clone(),
        });
    }
    let why = if *resolution != resolved {
        Some("its resolution differs")
    } else if note != said {
        Some("its note differs")
    } else if event.causation != Some(*cause) {
        Some("its causation_id is not the resolved event")
    } else {
        None
    };
    match why {
        Some(why) => Err(Refusal::NoticeMismatch { case_id, why }),
        None => Ok(()),
    }
}

/// May the writer of an `opened` event open cases: a current front office of the registry.
pub fn authorize_open(event: &CaseEvent, registry: &Registry) -> Result<(), Refusal> {
    let me = &event.from;
    let acting = registry
        .agency(me)
        .ok_or_else(|| Refusal::UnknownActingAgency { agency: me.clone() })?;
    if acting.kind != AgencyKind::FrontOffice {
        return Err(Refusal::NotAFrontOffice {
            agency: me.clone(),
            kind: acting.kind.as_str(),
        });
    }
    Ok(())
}

fn check_time(previous: OffsetDateTime, at: OffsetDateTime) -> Result<(), Refusal> {
    if at < previous - MAX_CLOCK_SKEW {
        return Err(Refusal::TimeRunsBackwards { previous, at });
    }
    Ok(())
}

fn holder<'a>(
    case: &'a CaseState,
    me: &AgencyCode,
    action: &'static str,
) -> Result<&'a Task, Refusal> {
    case.tasks.get(me).ok_or_else(|| Refusal::NoTask {
        case_id: case.case_id,
        agency: me.clone(),
        action,
    })
}

fn accepted_holder<'a>(
    case: &'a CaseState,
    me: &AgencyCode,
    action: &'static str,
) -> Result<&'a Task, Refusal> {
    let task = holder(case, me, action)?;
    if task.state != TaskState::Accepted {
        return Err(Refusal::TaskNotAccepted {
            case_id: case.case_id,
            agency: me.clone(),
        });
    }
    Ok(task)
}

/// Accepted, completed and sent back go to whoever handed the task over, or to the agency that
/// does its work once the registry ended it. Which agency that is only the registry knows, so
/// here any receiver but the writer passes when it is not the sender, and `authorize_answer`
/// (every reader holding a registry runs it) narrows it to the sender's successor.
fn answers(case: &CaseState, task: &Task, event: &CaseEvent) -> Result<(), Refusal> {
    match event.to.as_ref() {
        Some(to) if *to != task.handed_by && *to != event.from => Ok(()),
        _ => addressed_to(case, event, Some(&task.handed_by)),
    }
}

fn addressed_to(
    case: &CaseState,
    event: &CaseEvent,
    expected: Option<&AgencyCode>,
) -> Result<(), Refusal> {
    if event.to.as_ref() == expected {
        return Ok(());
    }
    Err(Refusal::WrongReceiver {
        case_id: case.case_id,
        kind: event.body.kind(),
        expected: expected.cloned(),
        found: event.to.clone(),
    })
}
