//! A case's state as a pure fold of its events. The adapter folds a case's log before deciding
//! a command; the tracker folds the same events into its views; both use this one function.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use super::authorize::{authorize, authorize_after_resolution};
use super::decide::Refusal;
use super::event::{CaseEvent, EventBody, Resolution};
use crate::codes::{AgencyCode, ServiceCode};
use crate::ids::{CaseId, EventId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Handed over, not yet taken up by the receiving agency.
    Pending,
    Accepted,
}

/// One agency's open piece of work on a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub agency: AgencyCode,
    /// Who handed the task over; told when the task is accepted, completed or sent back.
    pub handed_by: AgencyCode,
    /// What the receiver was asked to do (the latest answer, after an info request).
    pub instructions: String,
    pub state: TaskState,
    pub handed_off_at: OffsetDateTime,
    pub accepted_at: Option<OffsetDateTime>,
    pub due_at: OffsetDateTime,
    /// The event that gave the task to its holder: its hand-off, or the `task_transferred`
    /// event that moved it there. Answers (accepted, completed, sent back) name it as cause.
    pub handoff_event: EventId,
    /// Set while the holder waits for the citizen (through the front office).
    pub info_requested: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskEnd {
    Completed,
    SentBack,
    /// Still open when the front office resolved the case (denied or withdrawn).
    ClosedByResolution,
    /// Moved by the operator to the holder's successor when a registry change ended the
    /// holder; the work goes on there.
    Transferred,
    /// Taken back by the agency that handed it over, before the holder finished it.
    TakenBack,
}

impl TaskEnd {
    /// How the task ended, in words for a refusal: "{agency}'s task was already {words}".
    pub fn words(self) -> &'static str {
        match self {
            TaskEnd::Completed => "completed",
            TaskEnd::SentBack => "sent back",
            TaskEnd::ClosedByResolution => "closed when the case was resolved",
            TaskEnd::Transferred => "transferred to its successor",
            TaskEnd::TakenBack => "taken back by its sender",
        }
    }
}

/// A task that has ended, kept for the timeline and time-held figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastTask {
    pub task: Task,
    pub ended_at: OffsetDateTime,
    pub end: TaskEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseStatus {
    /// No agency holds a task: just opened, or every task has ended and the front office decides.
    AtFrontOffice,
    /// At least one agency holds a task.
    InProgress,
    /// An agency waits for more from the citizen.
    AwaitingInfo,
    Resolved(Resolution),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseState {
    pub case_id: CaseId,
    /// Version of the last event folded in.
    pub version: u64,
    pub last_event_id: EventId,
    /// Time of the last event folded in: the next may not fall further behind than the skew.
    pub last_event_at: OffsetDateTime,
    /// The `opened` event: cause of hand-offs by the origin and of the resolution.
    pub opened_event: EventId,
    pub service: ServiceCode,
    pub origin: AgencyCode,
    pub citizen_ref: String,
    pub summary: String,
    pub opened_at: OffsetDateTime,
    /// Open tasks, by holding agency (one open task per agency at a time).
    pub tasks: BTreeMap<AgencyCode, Task>,
    pub past_tasks: Vec<PastTask>,
    pub resolution: Option<(Resolution, OffsetDateTime)>,
    /// The `resolved` event and its note: what each `task_closed` notice repeats and follows.
    pub resolved: Option<(EventId, String)>,
    /// Agencies already told by a `task_closed` event that the resolution closed their task.
    pub notified: BTreeSet<AgencyCode>,
}

/// An event that cannot follow the ones before it. Events written through [`super::decide`]
/// never cause one; seeing one means the log was written by something else or tampered with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    #[error("event {event_id} belongs to case {found}, not {expected}")]
    WrongCase {
        event_id: EventId,
        expected: CaseId,
        found: CaseId,
    },
    #[error("event {event_id} has version {found}, expected {expected}")]
    VersionGap {
        event_id: EventId,
        expected: u64,
        found: u64,
    },
    #[error("the first event of case {case_id} is {kind}, not opened")]
    NotOpenedFirst { case_id: CaseId, kind: &'static str },
    #[error("event {event_id} ({kind}) on case {case_id} is not allowed: {refusal}")]
    Unauthorized {
        event_id: EventId,
        case_id: CaseId,
        kind: &'static str,
        refusal: Box<Refusal>,
    },
    #[error("event {event_id} ({kind}) does not fit case {case_id}: {why}")]
    Inconsistent {
        event_id: EventId,
        case_id: CaseId,
        kind: &'static str,
        why: String,
    },
}

impl CaseState {
    pub fn status(&self) -> CaseStatus {
        if let Some((resolution, _)) = self.resolution {
            return CaseStatus::Resolved(resolution);
        }
        if self.tasks.values().any(|t| t.info_requested.is_some()) {
            return CaseStatus::AwaitingInfo;
        }
        if self.tasks.is_empty() {
            CaseStatus::AtFrontOffice
        } else {
            CaseStatus::InProgress
        }
    }

    pub fn is_resolved(&self) -> bool {
        self.resolution.is_some()
    }

    /// Folds a whole history; `Ok(None)` for no events.
    pub fn fold<'a>(
        events: impl IntoIterator<Item = &'a CaseEvent>,
    ) -> Result<Option<CaseState>, FoldError> {
        let mut state = None;
        for event in events {
            state = Some(Self::apply(state, event)?);
        }
        Ok(state)
    }

    /// Applies one event to the state before it (`None` before the opening event).
    pub fn apply(state: Option<CaseState>, event: &CaseEvent) -> Result<CaseState, FoldError> {
        match state {
            None => Self::opened(event),
            Some(mut state) => {
                state.apply_next(event)?;
                Ok(state)
            }
        }
    }

    /// [`CaseState::apply`] in place. A refused event leaves `state` exactly as it was: every
    /// check comes before the first change. That is what lets a verifier try each message of
    /// a long history without copying the state (and its past tasks) first, which made
    /// verifying a case cost the square of its length.
    pub fn apply_in_place(
        state: &mut Option<CaseState>,
        event: &CaseEvent,
    ) -> Result<(), FoldError> {
        match state {
            None => {
                *state = Some(Self::opened(event)?);
                Ok(())
            }
            Some(state) => state.apply_next(event),
        }
    }

    fn opened(event: &CaseEvent) -> Result<CaseState, FoldError> {
        let EventBody::Opened {
            service,
            citizen_ref,
            summary,
            ..
        } = &event.body
        else {
            return Err(FoldError::NotOpenedFirst {
                case_id: event.case_id,
                kind: event.body.kind(),
            });
        };
        if event.version != 1 {
            return Err(FoldError::VersionGap {
                event_id: event.event_id,
                expected: 1,
                found: event.version,
            });
        }
        Ok(CaseState {
            case_id: event.case_id,
            version: 1,
            last_event_id: event.event_id,
            last_event_at: event.occurred_at,
            opened_event: event.event_id,
            service: service.clone(),
            origin: event.from.clone(),
            citizen_ref: citizen_ref.clone(),
            summary: summary.clone(),
            opened_at: event.occurred_at,
            tasks: BTreeMap::new(),
            past_tasks: Vec::new(),
            resolution: None,
            resolved: None,
            notified: BTreeSet::new(),
        })
    }

    /// Agencies whose open task the resolution closed and that no `task_closed` event has told
    /// yet, in code order: the notices the origin's adapter still owes.
    pub fn unnotified_closed_tasks(&self) -> Vec<AgencyCode> {
        if !self.is_resolved() {
            return Vec::new();
        }
        let closed: BTreeSet<&AgencyCode> = self
            .past_tasks
            .iter()
            .filter(|p| p.end == TaskEnd::ClosedByResolution)
            .map(|p| &p.task.agency)
            .collect();
        closed
            .into_iter()
            .filter(|agency| !self.notified.contains(*agency))
            .cloned()
            .collect()
    }

    fn apply_next(&mut self, event: &CaseEvent) -> Result<(), FoldError> {
        self.check_follows(event)?;
        let resolved = self.is_resolved();
        let allowed = if resolved {
            authorize_after_resolution(self, event)
        } else {
            authorize(self, event)
        };
        allowed.map_err(|refusal| FoldError::Unauthorized {
            event_id: event.event_id,
            case_id: event.case_id,
            kind: event.body.kind(),
            refusal: Box::new(refusal),
        })?;
        let applied = match (&event.body, event.to.as_ref()) {
            (EventBody::TaskClosed { .. }, Some(to)) if resolved => {
                self.notified.insert(to.clone());
                Ok(())
            }
            _ if resolved => Err("the case is already resolved".to_owned()),
            _ => self.apply_body(event),
        };
        applied.map_err(|why| FoldError::Inconsistent {
            event_id: event.event_id,
            case_id: event.case_id,
            kind: event.body.kind(),
            why,
        })?;
        self.version = event.version;
        self.last_event_id = event.event_id;
        self.last_event_at = event.occurred_at;
        Ok(())
    }

    /// The event belongs to this case and is its next version.
    fn check_follows(&self, event: &CaseEvent) -> Result<(), FoldError> {
        if event.case_id != self.case_id {
            return Err(FoldError::WrongCase {
                event_id: event.event_id,
                expected: self.case_id,
                found: event.case_id,
            });
        }
        if event.version != self.version + 1 {
            return Err(FoldError::VersionGap {
                event_id: event.event_id,
                expected: self.version + 1,
                found: event.version,
            });
        }
        Ok(())
    }

    /// Applies what the event says to the tasks; `Err` says why the history is inconsistent.
    fn apply_body(&mut self, event: &CaseEvent) -> Result<(), String> {
        let at = event.occurred_at;
        match &event.body {
            EventBody::Opened { .. } => Err("the case is already open".into()),
            EventBody::HandedOff {
                due_at,
                instructions,
                ..
            } => self.apply_handoff(event, *due_at, instructions),
            EventBody::Accepted => {
                let task = self.task_of(&event.from)?;
                if task.state != TaskState::Pending {
                    return Err("the task was already accepted".into());
                }
                task.state = TaskState::Accepted;
                task.accepted_at = Some(at);
                Ok(())
            }
            EventBody::InfoRequested { question } => {
                self.task_of(&event.from)?.info_requested = Some(question.clone());
                Ok(())
            }
            EventBody::Completed { .. } | EventBody::SentBack { .. } => {
                let end = if matches!(event.body, EventBody::Completed { .. }) {
                    TaskEnd::Completed
                } else {
                    TaskEnd::SentBack
                };
                let task = self
                    .tasks
                    .remove(&event.from)
                    .ok_or_else(|| format!("{} holds no task", event.from))?;
                self.past_tasks.push(PastTask {
                    task,
                    ended_at: at,
                    end,
                });
                Ok(())
            }
            EventBody::TaskClosed { .. } => Err("the case is not resolved".into()),
            EventBody::Transferred { .. } => self.apply_transfer(event),
            EventBody::TakenBack { .. } => super::take_back::apply_take_back(self, event),
            EventBody::Resolved { resolution, note } => {
                if event.from != self.origin {
                    return Err(format!("only the origin {} resolves", self.origin));
                }
                for (_, task) in std::mem::take(&mut self.tasks) {
                    self.past_tasks.push(PastTask {
                        task,
                        ended_at: at,
                        end: TaskEnd::ClosedByResolution,
                    });
                }
                self.resolution = Some((*resolution, at));
                self.resolved = Some((event.event_id, note.clone()));
                Ok(())
            }
        }
    }

    /// The holder's task ends as transferred; the successor holds it from now, not yet
    /// accepted, with the same sender, instructions, due time and open info request. A
    /// successor already holding a task on the case keeps its own: the work is one now.
    fn apply_transfer(&mut self, event: &CaseEvent) -> Result<(), String> {
        let to = event
            .to
            .clone()
            .ok_or_else(|| "a transfer names no successor".to_owned())?;
        let task = self
            .tasks
            .remove(&event.from)
            .ok_or_else(|| format!("{} holds no task", event.from))?;
        if let std::collections::btree_map::Entry::Vacant(slot) = self.tasks.entry(to.clone()) {
            slot.insert(Task {
                agency: to,
                state: TaskState::Pending,
                handed_off_at: event.occurred_at,
                accepted_at: None,
                handoff_event: event.event_id,
                ..task.clone()
            });
        }
        self.past_tasks.push(PastTask {
            task,
            ended_at: event.occurred_at,
            end: TaskEnd::Transferred,
        });
        Ok(())
    }

    fn task_of(&mut self, agency: &AgencyCode) -> Result<&mut Task, String> {
        self.tasks
            .get_mut(agency)
            .ok_or_else(|| format!("{agency} holds no task"))
    }

    fn apply_handoff(
        &mut self,
        event: &CaseEvent,
        due_at: OffsetDateTime,
        instructions: &str,
    ) -> Result<(), String> {
        let to = event
            .to
            .clone()
            .ok_or_else(|| "a hand-off names no receiver".to_owned())?;
        if let Some(task) = self.tasks.get_mut(&to) {
            // Only the origin's answer to an open info request may reach an agency that
            // already holds a task.
            if event.from != self.origin || task.info_requested.is_none() {
                return Err(format!("{to} already holds an open task"));
            }
            task.info_requested = None;
            task.due_at = due_at;
            task.instructions = instructions.to_owned();
            return Ok(());
        }
        self.tasks.insert(
            to.clone(),
            Task {
                agency: to,
                handed_by: event.from.clone(),
                instructions: instructions.to_owned(),
                state: TaskState::Pending,
                handed_off_at: event.occurred_at,
                accepted_at: None,
                due_at,
                handoff_event: event.event_id,
                info_requested: None,
            },
        );
        Ok(())
    }
}
