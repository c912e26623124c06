//! What an agency asks to do to a case. Commands are checked by [`super::decide`] against the
//! case's state and the registry before anything is written.

use time::OffsetDateTime;

use super::document::DocumentRef;
use super::event::Resolution;
use crate::codes::{AgencyCode, ServiceCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Open {
        service: ServiceCode,
        citizen_ref: String,
        summary: String,
        documents: Vec<DocumentRef>,
    },
    HandOff {
        to: AgencyCode,
        instructions: String,
        documents: Vec<DocumentRef>,
        /// Overrides the catalogue's time limit for this task (1..=DUE_WORKING_DAYS_MAX).
        due_working_days: Option<u32>,
    },
    Accept,
    Complete {
        outcome: String,
        note: String,
        documents: Vec<DocumentRef>,
    },
    SendBack {
        reason: String,
    },
    RequestInfo {
        question: String,
    },
    Resolve {
        resolution: Resolution,
        note: String,
    },
    /// Tell `to`, whose open task the resolution closed, that the case is resolved. Not a
    /// caller's request: the origin's adapter issues it for each such agency after resolving.
    NotifyClosed {
        to: AgencyCode,
    },
    /// Move the acting agency's open task to its successor in `registry` (the one decided
    /// with). Not a caller's request: `onedoor registry apply --execute` issues it, as the
    /// operator, for each open task of an agency the registry ends.
    Transfer,
    /// Take back the open task the acting agency handed to `holder`, with a reason.
    TakeBack {
        holder: AgencyCode,
        reason: String,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Open { .. } => "open",
            Action::HandOff { .. } => "hand off",
            Action::Accept => "accept",
            Action::Complete { .. } => "complete",
            Action::SendBack { .. } => "send back",
            Action::RequestInfo { .. } => "request info",
            Action::Resolve { .. } => "resolve",
            Action::NotifyClosed { .. } => "notify closed task",
            Action::Transfer => "transfer",
            Action::TakeBack { .. } => "take back",
        }
    }
}

/// One agency's request: who acts (always the adapter's own agency), which officer, when, and
/// what. `at` comes from the adapter's clock and becomes the event's `occurred_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub agency: AgencyCode,
    pub actor: String,
    pub at: OffsetDateTime,
    pub action: Action,
}
