//! The case rules: may this agency do this to this case now? Pure: the same state, command and
//! registry always give the same answer, so the adapter (before writing) and any test agree.

use super::command::{Action, Command};
use super::event::{CaseEvent, EventBody, Resolution};
use super::state::{CaseState, TaskState};
use crate::codes::{AgencyCode, ServiceCode};
use crate::ids::{CaseId, EventId};
use crate::limits;
use crate::registry::{AgencyKind, Registry};

/// The broad class of a refusal, so the gRPC layer maps it to a status code in one table
/// without this crate knowing about gRPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalClass {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    FailedPrecondition,
}

/// Why a command was refused. Messages are for the ministry developer who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("agency {agency} is not in the registry")]
    UnknownActingAgency { agency: AgencyCode },
    #[error("only a front office opens cases; {agency} is a {kind}")]
    NotAFrontOffice {
        agency: AgencyCode,
        kind: &'static str,
    },
    #[error("front office {agency} was merged into {successor} and opens no new cases")]
    ActingAgencyMerged {
        agency: AgencyCode,
        successor: AgencyCode,
    },
    #[error("service {service} is not in the catalogue")]
    UnknownService { service: ServiceCode },
    #[error("case {case_id} does not exist")]
    CaseNotFound { case_id: CaseId },
    #[error("case {case_id} already exists")]
    CaseExists { case_id: CaseId },
    #[error("case {case_id} is resolved; nothing more can happen to it")]
    CaseResolved { case_id: CaseId },
    #[error("only the originating front office {origin} may {action} case {case_id}")]
    NotOrigin {
        case_id: CaseId,
        origin: AgencyCode,
        action: &'static str,
    },
    #[error("{agency} holds no open task on case {case_id}, so it cannot {action}")]
    NoTask {
        case_id: CaseId,
        agency: AgencyCode,
        action: &'static str,
    },
    #[error("{agency}'s task on case {case_id} is not accepted yet; call Accept first")]
    TaskNotAccepted { case_id: CaseId, agency: AgencyCode },
    #[error("{agency} already accepted its task on case {case_id}")]
    TaskAlreadyAccepted { case_id: CaseId, agency: AgencyCode },
    #[error("an agency cannot hand a case to itself ({agency})")]
    HandOffToSelf { agency: AgencyCode },
    #[error("agency {agency} is not in the registry")]
    UnknownReceiver { agency: AgencyCode },
    #[error("agency {agency} was merged into {successor}; hand off to {successor}")]
    ReceiverMerged {
        agency: AgencyCode,
        successor: AgencyCode,
    },
    #[error("{agency} is a front office; hand-offs go to ministries and other bodies")]
    ReceiverIsFrontOffice { agency: AgencyCode },
    #[error("{agency} already holds an open task on case {case_id}")]
    TaskAlreadyOpen { case_id: CaseId, agency: AgencyCode },
    #[error("case {case_id} cannot be approved while {} still hold tasks", open.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", "))]
    OpenTasksRemain {
        case_id: CaseId,
        open: Vec<AgencyCode>,
    },
    #[error("{field} is {found} bytes; the limit is {max}")]
    TooLong {
        field: &'static str,
        max: usize,
        found: usize,
    },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
}

impl Refusal {
    pub fn class(&self) -> RefusalClass {
        use Refusal::*;
        match self {
            UnknownService { .. }
            | HandOffToSelf { .. }
            | UnknownReceiver { .. }
            | ReceiverMerged { .. }
            | ReceiverIsFrontOffice { .. }
            | TooLong { .. }
            | Empty { .. } => RefusalClass::InvalidArgument,
            CaseNotFound { .. } => RefusalClass::NotFound,
            CaseExists { .. } => RefusalClass::AlreadyExists,
            UnknownActingAgency { .. }
            | NotAFrontOffice { .. }
            | ActingAgencyMerged { .. }
            | NotOrigin { .. }
            | NoTask { .. } => RefusalClass::PermissionDenied,
            CaseResolved { .. }
            | TaskNotAccepted { .. }
            | TaskAlreadyAccepted { .. }
            | TaskAlreadyOpen { .. }
            | OpenTasksRemain { .. } => RefusalClass::FailedPrecondition,
        }
    }
}

fn limit(field: &'static str, text: &str, max: usize) -> Result<(), Refusal> {
    if text.len() > max {
        return Err(Refusal::TooLong {
            field,
            max,
            found: text.len(),
        });
    }
    Ok(())
}

fn required(field: &'static str, text: &str, max: usize) -> Result<(), Refusal> {
    if text.trim().is_empty() {
        return Err(Refusal::Empty { field });
    }
    limit(field, text, max)
}

/// Size and presence checks that need no state: done first, so a malformed request is
/// `INVALID_ARGUMENT` whatever the case's state.
pub fn check_input(command: &Command) -> Result<(), Refusal> {
    limit("actor", &command.actor, limits::ACTOR_MAX_BYTES)?;
    match &command.action {
        Action::Open {
            citizen_ref,
            summary,
            ..
        } => {
            required("citizen_ref", citizen_ref, limits::CITIZEN_REF_MAX_BYTES)?;
            limit("summary", summary, limits::SUMMARY_MAX_BYTES)
        }
        Action::HandOff { instructions, .. } => {
            limit("instructions", instructions, limits::TEXT_MAX_BYTES)
        }
        Action::Accept => Ok(()),
        Action::Complete { outcome, note } => {
            required("outcome", outcome, limits::OUTCOME_MAX_BYTES)?;
            limit("note", note, limits::TEXT_MAX_BYTES)
        }
        Action::SendBack { reason } => required("reason", reason, limits::TEXT_MAX_BYTES),
        Action::RequestInfo { question } => required("question", question, limits::TEXT_MAX_BYTES),
        Action::Resolve { note, .. } => limit("note", note, limits::TEXT_MAX_BYTES),
    }
}

/// Decides `command` against the case's current state (`None`: the case does not exist yet)
/// and returns the one event to append, with the next version. Refuses without side effects.
pub fn decide(
    state: Option<&CaseState>,
    case_id: CaseId,
    event_id: EventId,
    command: &Command,
    registry: &Registry,
) -> Result<CaseEvent, Refusal> {
    check_input(command)?;
    let me = &command.agency;
    let acting = registry
        .agency(me)
        .ok_or_else(|| Refusal::UnknownActingAgency { agency: me.clone() })?;

    let (to, body) = match (&command.action, state) {
        (
            Action::Open {
                service,
                citizen_ref,
                summary,
            },
            None,
        ) => {
            if acting.kind != AgencyKind::FrontOffice {
                return Err(Refusal::NotAFrontOffice {
                    agency: me.clone(),
                    kind: acting.kind.as_str(),
                });
            }
            if let Some(successor) = &acting.merged_into {
                return Err(Refusal::ActingAgencyMerged {
                    agency: me.clone(),
                    successor: successor.clone(),
                });
            }
            if registry.service(service).is_none() {
                return Err(Refusal::UnknownService {
                    service: service.clone(),
                });
            }
            let body = EventBody::Opened {
                service: service.clone(),
                citizen_ref: citizen_ref.clone(),
                summary: summary.clone(),
            };
            (None, body)
        }
        (Action::Open { .. }, Some(_)) => return Err(Refusal::CaseExists { case_id }),
        (_, None) => return Err(Refusal::CaseNotFound { case_id }),
        (_, Some(case)) if case.is_resolved() => return Err(Refusal::CaseResolved { case_id }),
        (action, Some(case)) => decide_on_open_case(case, action, command, registry)?,
    };
    Ok(CaseEvent {
        event_id,
        case_id,
        version: state.map_or(1, |s| s.version + 1),
        occurred_at: command.at,
        from: me.clone(),
        to,
        actor: command.actor.clone(),
        body,
    })
}

fn decide_on_open_case(
    case: &CaseState,
    action: &Action,
    command: &Command,
    registry: &Registry,
) -> Result<(Option<AgencyCode>, EventBody), Refusal> {
    let me = &command.agency;
    let case_id = case.case_id;
    let my_task = case.tasks.get(me);
    let holder = |action: &'static str| {
        my_task.ok_or_else(|| Refusal::NoTask {
            case_id,
            agency: me.clone(),
            action,
        })
    };
    let accepted_holder = |action: &'static str| {
        let task = holder(action)?;
        if task.state != TaskState::Accepted {
            return Err(Refusal::TaskNotAccepted {
                case_id,
                agency: me.clone(),
            });
        }
        Ok(task)
    };

    Ok(match action {
        Action::Open { .. } => return Err(Refusal::CaseExists { case_id }),
        Action::HandOff { to, instructions } => {
            if *me != case.origin {
                accepted_holder("hand on")?;
            }
            if to == me {
                return Err(Refusal::HandOffToSelf { agency: me.clone() });
            }
            let receiver = registry
                .agency(to)
                .ok_or_else(|| Refusal::UnknownReceiver { agency: to.clone() })?;
            if let Some(successor) = registry.successor_of(to).filter(|s| *s != to) {
                return Err(Refusal::ReceiverMerged {
                    agency: to.clone(),
                    successor: successor.clone(),
                });
            }
            if receiver.kind == AgencyKind::FrontOffice {
                return Err(Refusal::ReceiverIsFrontOffice { agency: to.clone() });
            }
            if case.tasks.contains_key(to) {
                return Err(Refusal::TaskAlreadyOpen {
                    case_id,
                    agency: to.clone(),
                });
            }
            let working_days = registry
                .service(&case.service)
                .and_then(|service| service.step_for(to))
                .map_or(registry.default_step_working_days, |step| step.working_days);
            let due_at = registry.calendar.due_at(command.at, working_days);
            (
                Some(to.clone()),
                EventBody::HandedOff {
                    instructions: instructions.clone(),
                    due_at,
                },
            )
        }
        Action::Accept => {
            let task = holder("accept")?;
            if task.state == TaskState::Accepted {
                return Err(Refusal::TaskAlreadyAccepted {
                    case_id,
                    agency: me.clone(),
                });
            }
            (Some(task.handed_by.clone()), EventBody::Accepted)
        }
        Action::Complete { outcome, note } => {
            let task = accepted_holder("complete")?;
            (
                Some(task.handed_by.clone()),
                EventBody::Completed {
                    outcome: outcome.clone(),
                    note: note.clone(),
                },
            )
        }
        Action::SendBack { reason } => {
            // A pending task may be sent back unread: "wrong agency" needs no acceptance.
            let task = holder("send back")?;
            (
                Some(task.handed_by.clone()),
                EventBody::SentBack {
                    reason: reason.clone(),
                },
            )
        }
        Action::RequestInfo { question } => {
            accepted_holder("request info")?;
            (
                Some(case.origin.clone()),
                EventBody::InfoRequested {
                    question: question.clone(),
                },
            )
        }
        Action::Resolve { resolution, note } => {
            if *me != case.origin {
                return Err(Refusal::NotOrigin {
                    case_id,
                    origin: case.origin.clone(),
                    action: "resolve",
                });
            }
            // Approval means every agency agreed; denial or withdrawal may cut open tasks short.
            if *resolution == Resolution::Approved && !case.tasks.is_empty() {
                return Err(Refusal::OpenTasksRemain {
                    case_id,
                    open: case.tasks.keys().cloned().collect(),
                });
            }
            (
                None,
                EventBody::Resolved {
                    resolution: *resolution,
                    note: note.clone(),
                },
            )
        }
    })
}
