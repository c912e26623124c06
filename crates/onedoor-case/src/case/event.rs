//! What happened to a case: the domain form of the contract's `CaseEvent`, without the wire
//! envelope (trace context, signature, hash chain), which the bus and the adapter add.

use time::OffsetDateTime;

use super::document::DocumentRef;
use crate::codes::{AgencyCode, ServiceCode};
use crate::ids::{CaseId, EventId};

/// How the originating front office closed a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    Approved,
    Denied,
    Withdrawn,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Approved => "approved",
            Resolution::Denied => "denied",
            Resolution::Withdrawn => "withdrawn",
        }
    }
}

/// Why the operator moved an open task to another agency: the registry ended its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferReason {
    /// The holder was merged into its successor.
    Merged,
    /// The holder continues under a new code.
    Renamed,
}

impl TransferReason {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferReason::Merged => "merged",
            TransferReason::Renamed => "renamed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventBody {
    Opened {
        service: ServiceCode,
        citizen_ref: String,
        summary: String,
        documents: Vec<DocumentRef>,
    },
    /// `due_at` is fixed when the task is created, from the registry as it was then, so a later
    /// registry edit never moves a deadline already promised. A hand-off from the origin to an
    /// agency that asked for more information is the answer: it keeps that agency's task open,
    /// clears the request and restarts its clock from `due_at`.
    HandedOff {
        instructions: String,
        due_at: OffsetDateTime,
        documents: Vec<DocumentRef>,
    },
    Accepted,
    Completed {
        outcome: String,
        note: String,
        documents: Vec<DocumentRef>,
    },
    SentBack {
        reason: String,
    },
    InfoRequested {
        question: String,
    },
    Resolved {
        resolution: Resolution,
        note: String,
    },
    /// The origin tells one agency that its open task ended with the resolution: the inbox
    /// filter only sees events addressed to an agency, and `resolved` names no receiver. It
    /// repeats the resolution so the receiver needs no second read.
    TaskClosed {
        resolution: Resolution,
        note: String,
    },
    /// The operator moved `from`'s open task to `to`, its successor under registry
    /// `registry_version`. `due_at` repeats the task's due time, which does not move: the
    /// citizen's clock belongs to the case, not to whoever holds it.
    Transferred {
        registry_version: String,
        reason: TransferReason,
        due_at: OffsetDateTime,
    },
    /// The agency that handed `to` its open task took it back before `to` finished it; the
    /// task ends. Caused by the event that gave `to` the task.
    TakenBack {
        reason: String,
    },
}

impl EventBody {
    /// Snake-case kind, as in the CloudEvents type `la.gov.onedoor.case.<kind>.v1`.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Opened { .. } => "opened",
            EventBody::HandedOff { .. } => "handed_off",
            EventBody::Accepted => "accepted",
            EventBody::Completed { .. } => "completed",
            EventBody::SentBack { .. } => "sent_back",
            EventBody::InfoRequested { .. } => "info_requested",
            EventBody::Resolved { .. } => "resolved",
            EventBody::TaskClosed { .. } => "task_closed",
            EventBody::Transferred { .. } => "task_transferred",
            EventBody::TakenBack { .. } => "task_taken_back",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseEvent {
    pub event_id: EventId,
    pub case_id: CaseId,
    /// 1 for the opening event, then +1 per event, no gaps.
    pub version: u64,
    pub occurred_at: OffsetDateTime,
    /// The acting agency.
    pub from: AgencyCode,
    /// The agency that must act on or be told of the event (see the contract); `None` for
    /// opened and resolved.
    pub to: Option<AgencyCode>,
    pub actor: String,
    /// The event this one follows from (see the contract's `causation_id`): the task's
    /// hand-off for accepted/completed/sent back; the writer's own task's hand-off (or the
    /// opening) for handed off and info requested; the opening for resolved; the resolution
    /// for task closed; the taken-back task's hand-off (or transfer) for task taken back;
    /// `None` for opened.
    pub causation: Option<EventId>,
    pub body: EventBody,
}
