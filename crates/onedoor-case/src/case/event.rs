//! What happened to a case: the domain form of the contract's `CaseEvent`, without the wire
//! envelope (trace context, signature, hash chain), which the bus and the adapter add.

use time::OffsetDateTime;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventBody {
    Opened {
        service: ServiceCode,
        citizen_ref: String,
        summary: String,
    },
    /// `due_at` is fixed when the task is created, from the registry as it was then, so a later
    /// registry edit never moves a deadline already promised.
    HandedOff {
        instructions: String,
        due_at: OffsetDateTime,
    },
    Accepted,
    Completed {
        outcome: String,
        note: String,
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
    pub body: EventBody,
}
