//! The case rules: may this agency do this to this case now? Pure: the same state, command and
//! registry always give the same answer, so the adapter (before writing) and any test agree.

use super::answers::{answer_receiver, authorize_in_registry};
use super::authorize::{authorize, authorize_after_resolution};
use super::command::{Action, Command};
use super::document::{DocumentRef, check_documents};
use super::event::{CaseEvent, EventBody, Resolution, TransferReason};
use super::route::check_strict_route;
use super::state::{CaseState, Task, TaskState};
use crate::codes::{AgencyCode, ServiceCode};
use crate::ids::{CaseId, EventId};
use crate::limits;
use crate::registry::{AgencyKind, Ending, Registry};
use crate::text;

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
    #[error("front office {agency} was retired and opens no new cases")]
    ActingAgencyRetired { agency: AgencyCode },
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
    #[error(
        "{agency}'s task on case {case_id} was already {end}; read the case (GetCase) before acting again"
    )]
    TaskEnded {
        case_id: CaseId,
        agency: AgencyCode,
        end: &'static str,
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
    #[error(
        "agency {agency} was retired and takes no new tasks; hand off to the agency that does its work now"
    )]
    ReceiverRetired { agency: AgencyCode },
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
    #[error("{field} {why}; newline and tab are allowed only in free text")]
    ControlCharacter {
        field: &'static str,
        why: crate::text::ForbiddenChar,
    },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} has {found} entries; the limit is {max}")]
    TooMany {
        field: &'static str,
        max: usize,
        found: usize,
    },
    #[error("document {name:?} in {field}: {why}")]
    BadDocument {
        field: &'static str,
        name: String,
        why: String,
    },
    #[error("due_working_days must be 1..={max}, found {found}")]
    BadDueDays { max: u32, found: u32 },
    #[error("a hand-off on case {case_id} names no receiver")]
    NoReceiver { case_id: CaseId },
    #[error("{kind} on case {case_id} must go to {expected:?}, not {found:?}")]
    WrongReceiver {
        case_id: CaseId,
        kind: &'static str,
        expected: Option<AgencyCode>,
        found: Option<AgencyCode>,
    },
    /// Boxed: the largest refusal, and every bus error carries a refusal.
    #[error("{0}")]
    OffRoute(Box<super::route::OffRoute>),
    #[error("no task of {} on case {case_id} was closed by its resolution, so there is nothing to tell it", agency.as_ref().map_or("any agency", |a| a.as_str()))]
    NothingToNotify {
        case_id: CaseId,
        agency: Option<AgencyCode>,
    },
    #[error("{agency} was already told that case {case_id} is resolved")]
    AlreadyNotified { case_id: CaseId, agency: AgencyCode },
    #[error("a task_closed event on case {case_id} must repeat the resolved event: {why}")]
    NoticeMismatch { case_id: CaseId, why: &'static str },
    #[error(
        "{agency} is current or retired in this registry: its tasks have no successor to move to"
    )]
    NoSuccessor { agency: AgencyCode },
    #[error("the registry names {} as {agency}'s successor, not {found}", expected.as_ref().map_or("nobody", |a| a.as_str()))]
    NotSuccessor {
        agency: AgencyCode,
        expected: Option<AgencyCode>,
        found: AgencyCode,
    },
    #[error("{agency}'s tasks move from {effective}, when the registry takes effect, not on {day}")]
    TransferTooEarly {
        agency: AgencyCode,
        effective: time::Date,
        day: time::Date,
    },
    #[error("a task_transferred event on case {case_id} must repeat the task: {why}")]
    TransferMismatch { case_id: CaseId, why: &'static str },
    #[error(
        "only {sender}, which handed {holder} its task on case {case_id}, may take it back; {agency} did not hand it over"
    )]
    NotTaskSender {
        case_id: CaseId,
        agency: AgencyCode,
        holder: AgencyCode,
        sender: AgencyCode,
    },
    #[error("{holder} holds no task on case {case_id}, so there is nothing to take back")]
    NoTaskToTakeBack { case_id: CaseId, holder: AgencyCode },
    #[error("a task_taken_back event on case {case_id} must name the task: {why}")]
    TakeBackMismatch { case_id: CaseId, why: &'static str },
    #[error(
        "time runs backwards: {at} is more than the allowed skew before the previous event at {previous}"
    )]
    TimeRunsBackwards {
        previous: time::OffsetDateTime,
        at: time::OffsetDateTime,
    },
}

impl Refusal {
    pub fn class(&self) -> RefusalClass {
        use Refusal::*;
        match self {
            UnknownService { .. }
            | HandOffToSelf { .. }
            | UnknownReceiver { .. }
            | ReceiverMerged { .. }
            | ReceiverRetired { .. }
            | ReceiverIsFrontOffice { .. }
            | TooLong { .. }
            | ControlCharacter { .. }
            | Empty { .. }
            | TooMany { .. }
            | BadDocument { .. }
            | BadDueDays { .. }
            | NoReceiver { .. }
            | NoticeMismatch { .. }
            | TransferMismatch { .. }
            | TakeBackMismatch { .. } => RefusalClass::InvalidArgument,
            CaseNotFound { .. } => RefusalClass::NotFound,
            CaseExists { .. } => RefusalClass::AlreadyExists,
            UnknownActingAgency { .. }
            | NotAFrontOffice { .. }
            | ActingAgencyMerged { .. }
            | ActingAgencyRetired { .. }
            | NotOrigin { .. }
            | NoTask { .. }
            | WrongReceiver { .. }
            | NotSuccessor { .. }
            | NotTaskSender { .. } => RefusalClass::PermissionDenied,
            CaseResolved { .. }
            | TaskNotAccepted { .. }
            | TaskEnded { .. }
            | TaskAlreadyAccepted { .. }
            | TaskAlreadyOpen { .. }
            | OpenTasksRemain { .. }
            | OffRoute(_)
            | NothingToNotify { .. }
            | AlreadyNotified { .. }
            | NoSuccessor { .. }
            | TransferTooEarly { .. }
            | NoTaskToTakeBack { .. }
            | TimeRunsBackwards { .. } => RefusalClass::FailedPrecondition,
        }
    }
}

/// Free text: within `max` bytes, no control character but newline and tab.
fn limit(field: &'static str, text: &str, max: usize) -> Result<(), Refusal> {
    text::check_free_text(text).map_err(|why| Refusal::ControlCharacter { field, why })?;
    length(field, text, max)
}

/// An identifier: within `max` bytes, no control character at all.
fn identifier(field: &'static str, text: &str, max: usize) -> Result<(), Refusal> {
    text::check_identifier(text).map_err(|why| Refusal::ControlCharacter { field, why })?;
    length(field, text, max)
}

fn length(field: &'static str, text: &str, max: usize) -> Result<(), Refusal> {
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
    identifier("actor", &command.actor, limits::ACTOR_MAX_BYTES)?;
    match &command.action {
        Action::Open {
            citizen_ref,
            summary,
            documents,
            ..
        } => {
            required("citizen_ref", citizen_ref, limits::CITIZEN_REF_MAX_BYTES)?;
            identifier("citizen_ref", citizen_ref, limits::CITIZEN_REF_MAX_BYTES)?;
            limit("summary", summary, limits::SUMMARY_MAX_BYTES)?;
            check_documents("documents", documents)
        }
        Action::HandOff {
            instructions,
            documents,
            due_working_days,
            ..
        } => {
            limit("instructions", instructions, limits::INSTRUCTIONS_MAX_BYTES)?;
            if let Some(days) = *due_working_days
                && !(1..=limits::DUE_WORKING_DAYS_MAX).contains(&days)
            {
                return Err(Refusal::BadDueDays {
                    max: limits::DUE_WORKING_DAYS_MAX,
                    found: days,
                });
            }
            check_documents("documents", documents)
        }
        Action::Accept => Ok(()),
        Action::Complete {
            outcome,
            note,
            documents,
        } => {
            required("outcome", outcome, limits::OUTCOME_MAX_BYTES)?;
            limit("note", note, limits::NOTE_MAX_BYTES)?;
            check_documents("documents", documents)
        }
        Action::SendBack { reason } => required("reason", reason, limits::REASON_MAX_BYTES),
        Action::RequestInfo { question } => {
            required("question", question, limits::QUESTION_MAX_BYTES)
        }
        Action::Resolve { note, .. } => limit("note", note, limits::NOTE_MAX_BYTES),
        Action::TakeBack { reason, .. } => required("reason", reason, limits::REASON_MAX_BYTES),
        Action::NotifyClosed { .. } | Action::Transfer => Ok(()),
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

    let decision = match (&command.action, state) {
        (
            Action::Open {
                service,
                citizen_ref,
                summary,
                documents,
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
            if !acting.is_active() {
                return Err(Refusal::ActingAgencyRetired { agency: me.clone() });
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
                documents: documents.clone(),
            };
            Decision {
                to: None,
                causation: None,
                body,
            }
        }
        (Action::Open { .. }, Some(_)) => return Err(Refusal::CaseExists { case_id }),
        (_, None) => return Err(Refusal::CaseNotFound { case_id }),
        (Action::NotifyClosed { to }, Some(case)) if case.is_resolved() => notice(case, to)?,
        (_, Some(case)) if case.is_resolved() => return Err(Refusal::CaseResolved { case_id }),
        (action, Some(case)) => decide_on_open_case(case, action, command, registry)?,
    };
    let event = CaseEvent {
        event_id,
        case_id,
        version: state.map_or(1, |s| s.version + 1),
        occurred_at: command.at,
        from: me.clone(),
        to: decision.to,
        actor: command.actor.clone(),
        causation: decision.causation,
        body: decision.body,
    };
    // The checks above give the command-specific refusals; this one is what every reader
    // applies to the stored event, so nothing is written that a reader would quarantine.
    match state {
        Some(case) if case.is_resolved() => authorize_after_resolution(case, &event)?,
        Some(case) => authorize(case, &event)?,
        None => {}
    }
    authorize_in_registry(state, &event, registry)?;
    Ok(event)
}

/// The origin's `task_closed` notice to `to`, repeating the resolution it follows.
fn notice(case: &CaseState, to: &AgencyCode) -> Result<Decision, Refusal> {
    let (Some((resolution, _)), Some((resolved, note))) = (case.resolution, case.resolved.as_ref())
    else {
        return Err(Refusal::CaseResolved {
            case_id: case.case_id,
        });
    };
    Ok(Decision {
        to: Some(to.clone()),
        causation: Some(*resolved),
        body: EventBody::TaskClosed {
            resolution,
            note: note.clone(),
        },
    })
}

struct Decision {
    to: Option<AgencyCode>,
    causation: Option<EventId>,
    body: EventBody,
}

fn decide_on_open_case(
    case: &CaseState,
    action: &Action,
    command: &Command,
    registry: &Registry,
) -> Result<Decision, Refusal> {
    let open = OpenCase {
        case,
        me: &command.agency,
        command,
        registry,
    };
    match action {
        Action::Open { .. } => Err(Refusal::CaseExists {
            case_id: case.case_id,
        }),
        Action::HandOff {
            to,
            instructions,
            documents,
            due_working_days,
        } => open.hand_off(to, instructions, documents, *due_working_days),
        Action::Accept => open.accept(),
        Action::Complete {
            outcome,
            note,
            documents,
        } => {
            let task = open.accepted_holder("complete")?;
            Ok(Decision::answer_to(
                task,
                registry,
                EventBody::Completed {
                    outcome: outcome.clone(),
                    note: note.clone(),
                    documents: documents.clone(),
                },
            ))
        }
        Action::SendBack { reason } => {
            // A pending task may be sent back unread: "wrong agency" needs no acceptance.
            let task = open.holder("send back")?;
            Ok(Decision::answer_to(
                task,
                registry,
                EventBody::SentBack {
                    reason: reason.clone(),
                },
            ))
        }
        Action::RequestInfo { question } => {
            open.accepted_holder("request info")?;
            Ok(Decision {
                to: Some(case.origin.clone()),
                causation: open.own_cause(),
                body: EventBody::InfoRequested {
                    question: question.clone(),
                },
            })
        }
        Action::Resolve { resolution, note } => open.resolve(*resolution, note),
        // Only once the case is resolved (handled before this); here no task was closed yet.
        Action::NotifyClosed { to } => Err(Refusal::NothingToNotify {
            case_id: case.case_id,
            agency: Some(to.clone()),
        }),
        Action::Transfer => open.transfer(),
        Action::TakeBack { holder, reason } => {
            let (to, cause, body) = super::take_back::take_back(case, open.me, holder, reason)?;
            Ok(Decision {
                to: Some(to),
                causation: Some(cause),
                body,
            })
        }
    }
}

impl Decision {
    /// Accepted, completed and sent back go to whoever handed the task over (or its successor
    /// once the registry ended it: the worker never names the receiver), caused by the event
    /// that gave the task.
    fn answer_to(task: &Task, registry: &Registry, body: EventBody) -> Decision {
        Decision {
            to: Some(answer_receiver(task, registry).clone()),
            causation: Some(task.handoff_event),
            body,
        }
    }
}

/// One command against a case that exists and is not resolved.
struct OpenCase<'a> {
    case: &'a CaseState,
    me: &'a AgencyCode,
    command: &'a Command,
    registry: &'a Registry,
}

impl<'a> OpenCase<'a> {
    /// The writer's open task on the case, or why it has none.
    fn holder(&self, action: &'static str) -> Result<&'a Task, Refusal> {
        let case_id = self.case.case_id;
        self.case.tasks.get(self.me).ok_or_else(|| {
            // An agency whose task already ended (often by its own concurrent write) is told
            // so: a state to re-read, not a role it never had.
            let mut past = self.case.past_tasks.iter().rev();
            match past.find(|p| p.task.agency == *self.me) {
                Some(past) => Refusal::TaskEnded {
                    case_id,
                    agency: self.me.clone(),
                    end: past.end.words(),
                },
                None => Refusal::NoTask {
                    case_id,
                    agency: self.me.clone(),
                    action,
                },
            }
        })
    }

    fn accepted_holder(&self, action: &'static str) -> Result<&'a Task, Refusal> {
        let task = self.holder(action)?;
        if task.state != TaskState::Accepted {
            return Err(Refusal::TaskNotAccepted {
                case_id: self.case.case_id,
                agency: self.me.clone(),
            });
        }
        Ok(task)
    }

    /// The writer's own task, or the opening when it holds none (the origin routing its case).
    fn own_cause(&self) -> Option<EventId> {
        let own = self.case.tasks.get(self.me);
        Some(own.map_or(self.case.opened_event, |t| t.handoff_event))
    }

    fn hand_off(
        &self,
        to: &AgencyCode,
        instructions: &str,
        documents: &[DocumentRef],
        due_working_days: Option<u32>,
    ) -> Result<Decision, Refusal> {
        if *self.me != self.case.origin {
            self.accepted_holder("hand on")?;
        }
        self.check_receiver(to)?;
        // An answer to an info request goes back to a task already on its step.
        let answers_info_request = self.case.tasks.contains_key(to);
        if let Some(service) = self.registry.service(&self.case.service)
            && service.strict_route
            && !answers_info_request
        {
            check_strict_route(self.case, service, to)?;
        }
        let working_days = due_working_days.unwrap_or_else(|| {
            self.registry
                .service(&self.case.service)
                .and_then(|service| service.step_for(to))
                .map_or(self.registry.default_step_working_days, |step| {
                    step.working_days
                })
        });
        Ok(Decision {
            to: Some(to.clone()),
            causation: self.own_cause(),
            body: EventBody::HandedOff {
                instructions: instructions.to_owned(),
                due_at: self.registry.calendar.due_at(self.command.at, working_days),
                documents: documents.to_vec(),
            },
        })
    }

    /// May `to` receive a task on this case: a known, current agency other than the writer,
    /// not a front office, holding no open task (unless this answers its info request).
    fn check_receiver(&self, to: &AgencyCode) -> Result<(), Refusal> {
        if to == self.me {
            return Err(Refusal::HandOffToSelf {
                agency: self.me.clone(),
            });
        }
        let receiver = self
            .registry
            .agency(to)
            .ok_or_else(|| Refusal::UnknownReceiver { agency: to.clone() })?;
        if let Some(successor) = self.registry.successor_of(to).filter(|s| *s != to) {
            return Err(Refusal::ReceiverMerged {
                agency: to.clone(),
                successor: successor.clone(),
            });
        }
        if !receiver.is_active() {
            return Err(Refusal::ReceiverRetired { agency: to.clone() });
        }
        if receiver.kind == AgencyKind::FrontOffice {
            return Err(Refusal::ReceiverIsFrontOffice { agency: to.clone() });
        }
        if let Some(task) = self.case.tasks.get(to) {
            let answers_info_request =
                *self.me == self.case.origin && task.info_requested.is_some();
            if !answers_info_request {
                return Err(Refusal::TaskAlreadyOpen {
                    case_id: self.case.case_id,
                    agency: to.clone(),
                });
            }
        }
        Ok(())
    }

    /// The writer's open task, moved to its successor in the registry with its due time.
    fn transfer(&self) -> Result<Decision, Refusal> {
        let task = self.holder("transfer")?;
        let ending = self.registry.agency(self.me).and_then(|a| a.ending);
        let reason = match ending {
            Some(Ending::Merged) => TransferReason::Merged,
            Some(Ending::Renamed) => TransferReason::Renamed,
            _ => {
                return Err(Refusal::NoSuccessor {
                    agency: self.me.clone(),
                });
            }
        };
        let successor = self
            .registry
            .successor_of(self.me)
            .filter(|s| *s != self.me)
            .ok_or_else(|| Refusal::NoSuccessor {
                agency: self.me.clone(),
            })?;
        Ok(Decision {
            to: Some(successor.clone()),
            causation: Some(task.handoff_event),
            body: EventBody::Transferred {
                registry_version: self.registry.version.to_string(),
                reason,
                due_at: task.due_at,
            },
        })
    }

    fn accept(&self) -> Result<Decision, Refusal> {
        let task = self.holder("accept")?;
        if task.state == TaskState::Accepted {
            return Err(Refusal::TaskAlreadyAccepted {
                case_id: self.case.case_id,
                agency: self.me.clone(),
            });
        }
        Ok(Decision::answer_to(
            task,
            self.registry,
            EventBody::Accepted,
        ))
    }

    fn resolve(&self, resolution: Resolution, note: &str) -> Result<Decision, Refusal> {
        let case_id = self.case.case_id;
        if *self.me != self.case.origin {
            return Err(Refusal::NotOrigin {
                case_id,
                origin: self.case.origin.clone(),
                action: "resolve",
            });
        }
        // Approval means every agency agreed; denial or withdrawal may cut open tasks short.
        if resolution == Resolution::Approved && !self.case.tasks.is_empty() {
            return Err(Refusal::OpenTasksRemain {
                case_id,
                open: self.case.tasks.keys().cloned().collect(),
            });
        }
        Ok(Decision {
            to: None,
            causation: Some(self.case.opened_event),
            body: EventBody::Resolved {
                resolution,
                note: note.to_owned(),
            },
        })
    }
}
