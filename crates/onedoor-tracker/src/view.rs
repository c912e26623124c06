//! What staff see, as plain values: the rows the projection stores for a case (made from the
//! case rules' fold, never from rules of our own), the wire `CaseView` built from those rows at
//! query time, and the timeline with the time each agency held each task.
//!
//! Overdue is never stored: it depends on the moment of the question, so every function that
//! says "overdue" takes `now`.

use onedoor_case::case::{Task, TaskEnd};
use onedoor_case::{CaseEvent, CaseState, CaseStatus, EventBody, Resolution, TaskState};
use onedoor_proto::convert::{resolution_to_wire, timestamp};
use onedoor_proto::v1;
use onedoor_proto::view::status_to_wire;
use time::{Duration, OffsetDateTime};

use crate::error::TrackerError;
use crate::store::RejectedMessage;

/// One case's row: the fold of its events up to `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRecord {
    pub case_id: String,
    pub service: String,
    pub origin_agency: String,
    pub status: CaseStatus,
    pub citizen_ref: String,
    pub summary: String,
    pub trace_id: String,
    pub opened_at: OffsetDateTime,
    pub resolved_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
    pub version: u64,
    /// Why the view stops before the case's last stored event (an event that does not fold).
    pub problem: Option<String>,
}

/// One task of a case, open or ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    pub case_id: String,
    /// The `handed_off` event that created the task: the task's id.
    pub handoff_event_id: String,
    pub agency: String,
    pub handed_by: String,
    /// The case's service, kept on the task so per-service statistics need no join.
    pub service: String,
    pub state: TaskState,
    pub instructions: String,
    pub open_question: Option<String>,
    pub handed_off_at: OffsetDateTime,
    pub accepted_at: Option<OffsetDateTime>,
    pub due_at: OffsetDateTime,
    /// When and how the task ended; `None` while open.
    pub ended: Option<(OffsetDateTime, TaskEnd)>,
}

impl TaskRecord {
    pub fn is_open(&self) -> bool {
        self.ended.is_none()
    }

    /// Past its due time at `now`, and still open.
    pub fn is_overdue(&self, now: OffsetDateTime) -> bool {
        self.is_open() && now > self.due_at
    }

    /// How long the agency has held (or held) the task: until it ended, or until `now`.
    pub fn held(&self, now: OffsetDateTime) -> Duration {
        let end = self.ended.map_or(now, |(at, _)| at);
        end - self.handed_off_at
    }
}

/// Everything the projection stores for one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projected {
    pub case: CaseRecord,
    /// Open tasks first (oldest hand-off first), then ended ones in the order they ended.
    pub tasks: Vec<TaskRecord>,
}

impl Projected {
    /// The rows for a folded case. `trace_id` is the case's (from its opening event);
    /// `updated_at` is when the event at `state.version` happened.
    pub fn from_state(state: &CaseState, trace_id: &str, updated_at: OffsetDateTime) -> Self {
        let case_id = state.case_id.to_string();
        let service = state.service.to_string();
        let record = |task: &Task, ended| TaskRecord {
            case_id: case_id.clone(),
            handoff_event_id: task.handoff_event.to_string(),
            agency: task.agency.to_string(),
            handed_by: task.handed_by.to_string(),
            service: service.clone(),
            state: task.state,
            instructions: task.instructions.clone(),
            open_question: task.info_requested.clone(),
            handed_off_at: task.handed_off_at,
            accepted_at: task.accepted_at,
            due_at: task.due_at,
            ended,
        };
        let mut tasks: Vec<TaskRecord> = state.tasks.values().map(|t| record(t, None)).collect();
        sort_open_tasks(&mut tasks);
        let mut ended: Vec<TaskRecord> = state
            .past_tasks
            .iter()
            .map(|past| record(&past.task, Some((past.ended_at, past.end))))
            .collect();
        sort_ended_tasks(&mut ended);
        tasks.extend(ended);
        Projected {
            case: CaseRecord {
                case_id: case_id.clone(),
                service: service.clone(),
                origin_agency: state.origin.to_string(),
                status: state.status(),
                citizen_ref: state.citizen_ref.clone(),
                summary: state.summary.clone(),
                trace_id: trace_id.to_owned(),
                opened_at: state.opened_at,
                resolved_at: state.resolution.map(|(_, at)| at),
                updated_at,
                version: state.version,
                problem: None,
            },
            tasks,
        }
    }

    /// The earliest due time among open tasks: the case is overdue once it has passed.
    pub fn next_due(&self) -> Option<OffsetDateTime> {
        self.tasks
            .iter()
            .filter(|t| t.is_open())
            .map(|t| t.due_at)
            .min()
    }

    pub fn open_tasks(&self) -> impl Iterator<Item = &TaskRecord> {
        self.tasks.iter().filter(|t| t.is_open())
    }
}

/// The contract orders open tasks "oldest hand-off first"; ULIDs break ties in creation order.
pub fn sort_open_tasks(tasks: &mut [TaskRecord]) {
    tasks.sort_by(|a, b| {
        (a.handed_off_at, &a.handoff_event_id).cmp(&(b.handed_off_at, &b.handoff_event_id))
    });
}

/// Ended tasks in the order they ended; a resolution ends several at once, so the task id
/// breaks ties.
pub fn sort_ended_tasks(tasks: &mut [TaskRecord]) {
    tasks.sort_by(|a, b| {
        (a.ended.map(|(at, _)| at), &a.handoff_event_id)
            .cmp(&(b.ended.map(|(at, _)| at), &b.handoff_event_id))
    });
}

/// Lower-cased text the ListCases text filter searches: case id, citizen reference, summary,
/// then one `agency:<code>` line per agency that opened the case, held or handed out one of
/// its tasks. Codes, not names: a name changes with the registry, a code in history does not,
/// and the store finds the codes whose names (then or now) match the text
/// ([`agency_term`]).
pub fn search_text(projected: &Projected) -> String {
    let case = &projected.case;
    let mut codes: Vec<&str> = std::iter::once(case.origin_agency.as_str())
        .chain(
            projected
                .tasks
                .iter()
                .flat_map(|t| [t.agency.as_str(), t.handed_by.as_str()]),
        )
        .collect();
    codes.sort_unstable();
    codes.dedup();
    let mut text = format!("{}\n{}\n{}\n", case.case_id, case.citizen_ref, case.summary);
    for code in codes {
        text.push_str(&agency_term(code));
    }
    text.to_lowercase()
}

/// How an agency's code stands in [`search_text`]: on a line of its own, so MOF never
/// matches MOFA.
pub fn agency_term(code: &str) -> String {
    format!("agency:{}\n", code.to_lowercase())
}

pub fn status_name(status: CaseStatus) -> &'static str {
    match status {
        CaseStatus::AtFrontOffice => "at_front_office",
        CaseStatus::InProgress => "in_progress",
        CaseStatus::AwaitingInfo => "awaiting_info",
        CaseStatus::Resolved(_) => "resolved",
    }
}

pub fn status_from_name(name: &str, resolution: Option<&str>) -> Result<CaseStatus, TrackerError> {
    let corrupt = |why: String| TrackerError::Corrupt {
        what: "case status".into(),
        why,
    };
    Ok(match name {
        "at_front_office" => CaseStatus::AtFrontOffice,
        "in_progress" => CaseStatus::InProgress,
        "awaiting_info" => CaseStatus::AwaitingInfo,
        "resolved" => CaseStatus::Resolved(match resolution {
            Some("approved") => Resolution::Approved,
            Some("denied") => Resolution::Denied,
            Some("withdrawn") => Resolution::Withdrawn,
            other => return Err(corrupt(format!("resolved with resolution {other:?}"))),
        }),
        other => return Err(corrupt(format!("unknown status {other:?}"))),
    })
}

pub fn task_state_name(state: TaskState) -> &'static str {
    match state {
        TaskState::Pending => "pending",
        TaskState::Accepted => "accepted",
    }
}

pub fn task_state_from_name(name: &str) -> Result<TaskState, TrackerError> {
    match name {
        "pending" => Ok(TaskState::Pending),
        "accepted" => Ok(TaskState::Accepted),
        other => Err(TrackerError::Corrupt {
            what: "task state".into(),
            why: format!("unknown state {other:?}"),
        }),
    }
}

pub fn task_end_name(end: TaskEnd) -> &'static str {
    match end {
        TaskEnd::Completed => "completed",
        TaskEnd::SentBack => "sent_back",
        TaskEnd::ClosedByResolution => "closed_by_resolution",
        TaskEnd::Transferred => "transferred",
        TaskEnd::TakenBack => "taken_back",
    }
}

pub fn task_end_from_name(name: &str) -> Result<TaskEnd, TrackerError> {
    match name {
        "completed" => Ok(TaskEnd::Completed),
        "sent_back" => Ok(TaskEnd::SentBack),
        "closed_by_resolution" => Ok(TaskEnd::ClosedByResolution),
        "transferred" => Ok(TaskEnd::Transferred),
        "taken_back" => Ok(TaskEnd::TakenBack),
        other => Err(TrackerError::Corrupt {
            what: "task end".into(),
            why: format!("unknown end {other:?}"),
        }),
    }
}

pub fn task_to_wire(task: &TaskRecord, now: OffsetDateTime) -> v1::Task {
    v1::Task {
        handoff_event_id: task.handoff_event_id.clone(),
        agency: task.agency.clone(),
        from_agency: task.handed_by.clone(),
        state: match task.state {
            TaskState::Pending => v1::TaskState::Pending,
            TaskState::Accepted => v1::TaskState::Accepted,
        }
        .into(),
        instructions: task.instructions.clone(),
        handed_off_at: Some(timestamp(task.handed_off_at)),
        accepted_at: task.accepted_at.map(timestamp),
        due_at: Some(timestamp(task.due_at)),
        overdue: task.is_overdue(now),
        open_question: task.open_question.clone().unwrap_or_default(),
    }
}

/// A message not believed, as `GetCase` lists it (`CaseView.quarantined`), as the adapters
/// list theirs: the reason's label, and the reason in words.
pub fn quarantined_message(rejected: &RejectedMessage) -> v1::QuarantinedMessage {
    v1::QuarantinedMessage {
        stream_sequence: rejected.stream_sequence,
        reason: rejected.label.clone().unwrap_or_default(),
        detail: rejected.reason.clone(),
    }
}

/// The wire view of a case at `now`. `open_tasks` must be the case's open tasks, oldest
/// hand-off first; `events` its timeline (empty in listings).
pub fn case_view(
    case: &CaseRecord,
    open_tasks: &[TaskRecord],
    events: Vec<v1::CaseEvent>,
    now: OffsetDateTime,
) -> v1::CaseView {
    let open_tasks: Vec<v1::Task> = open_tasks.iter().map(|t| task_to_wire(t, now)).collect();
    let resolution = match case.status {
        CaseStatus::Resolved(resolution) => resolution_to_wire(resolution),
        _ => v1::Resolution::Unspecified,
    };
    v1::CaseView {
        case_id: case.case_id.clone(),
        service: case.service.clone(),
        status: status_to_wire(case.status).into(),
        trace_id: case.trace_id.clone(),
        origin_agency: case.origin_agency.clone(),
        overdue: open_tasks.iter().any(|t| t.overdue),
        open_tasks,
        events,
        citizen_ref: case.citizen_ref.clone(),
        summary: case.summary.clone(),
        opened_at: Some(timestamp(case.opened_at)),
        resolved_at: case.resolved_at.map(timestamp),
        resolution: resolution.into(),
        version: case.version,
        quarantined: Vec::new(),
        updated_at: Some(timestamp(case.updated_at)),
        // The tracker holds national events only.
        awaiting_link_event_ids: Vec::new(),
    }
}

/// One line of a case's timeline as staff read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub version: u64,
    pub event_id: String,
    pub at: OffsetDateTime,
    pub from: String,
    pub to: Option<String>,
    /// Event kind: `opened`, `handed_off`, …
    pub kind: &'static str,
    /// The event's own words: outcome, reason, question, resolution.
    pub detail: String,
    /// On a hand-off that created a task: how that task went.
    pub task: Option<TimelineTask>,
}

/// The task a hand-off created, as it stands at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineTask {
    pub agency: String,
    /// Until the task ended, or until `now` while it is open.
    pub held: Duration,
    pub due_at: OffsetDateTime,
    /// `None` while open.
    pub ended: Option<TaskEnd>,
    pub overdue: bool,
}

/// The timeline of a folded case: one entry per event, and on each hand-off that created a
/// task, how long the receiving agency held it. Uses the fold's tasks, so the time held is what
/// the case rules say (an answer to an info request keeps the original task).
pub fn timeline(
    state: &CaseState,
    events: &[CaseEvent],
    now: OffsetDateTime,
) -> Vec<TimelineEntry> {
    let projected = Projected::from_state(state, "", now);
    events
        .iter()
        .filter(|e| e.version <= state.version)
        .map(|event| {
            let id = event.event_id.to_string();
            let task = projected
                .tasks
                .iter()
                .find(|t| t.handoff_event_id == id)
                .map(|t| TimelineTask {
                    agency: t.agency.clone(),
                    held: t.held(now),
                    due_at: t.due_at,
                    ended: t.ended.map(|(_, end)| end),
                    overdue: t.is_overdue(now),
                });
            TimelineEntry {
                version: event.version,
                event_id: id.clone(),
                at: event.occurred_at,
                from: event.from.to_string(),
                to: event.to.as_ref().map(ToString::to_string),
                kind: event.body.kind(),
                detail: detail(&event.body),
                task,
            }
        })
        .collect()
}

fn detail(body: &EventBody) -> String {
    match body {
        EventBody::Opened {
            service, summary, ..
        } => format!("{service}: {summary}"),
        EventBody::HandedOff { instructions, .. } => instructions.clone(),
        EventBody::Accepted => String::new(),
        EventBody::Completed { outcome, note, .. } if note.is_empty() => outcome.clone(),
        EventBody::Completed { outcome, note, .. } => format!("{outcome} ({note})"),
        EventBody::SentBack { reason } | EventBody::TakenBack { reason } => reason.clone(),
        EventBody::InfoRequested { question } => question.clone(),
        EventBody::Resolved { resolution, note } | EventBody::TaskClosed { resolution, note }
            if note.is_empty() =>
        {
            resolution.as_str().to_owned()
        }
        EventBody::Resolved { resolution, note } | EventBody::TaskClosed { resolution, note } => {
            format!("{} ({note})", resolution.as_str())
        }
        EventBody::Transferred {
            registry_version,
            reason,
            ..
        } => format!("{} (registry {registry_version})", reason.as_str()),
    }
}

/// Total time each agency has held tasks on the case (ended tasks, plus open ones up to `now`).
pub fn time_held_by_agency(
    projected: &Projected,
    now: OffsetDateTime,
) -> std::collections::BTreeMap<String, Duration> {
    let mut held = std::collections::BTreeMap::new();
    for task in &projected.tasks {
        *held.entry(task.agency.clone()).or_insert(Duration::ZERO) += task.held(now);
    }
    held
}
