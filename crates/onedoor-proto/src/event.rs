//! Helpers on the generated [`CaseEvent`]: what kind of event it is, its
//! CloudEvents type, and the bytes its signature covers.
//!
//! The kind is the name of the `body` oneof field that is set (`opened`,
//! `handed_off`, …); a test checks these names against the descriptor, so they
//! cannot drift from the `.proto`.

use prost::Message as _;

use crate::v1::CaseEvent;
use crate::v1::case_event::Body;

/// Every event kind, in field-number order of the `body` oneof.
pub const EVENT_KINDS: [&str; 10] = [
    "opened",
    "handed_off",
    "accepted",
    "completed",
    "sent_back",
    "info_requested",
    "resolved",
    "task_closed",
    "task_transferred",
    "task_taken_back",
];

/// Builds a CloudEvents type from a literal kind at compile time.
macro_rules! ce_type {
    ($kind:literal) => {
        concat!("la.gov.onedoor.case.", $kind, ".v1")
    };
}

impl Body {
    /// The event kind in snake case, e.g. `handed_off`: the name of this
    /// variant's field in the `body` oneof.
    pub const fn kind(&self) -> &'static str {
        match self {
            Body::Opened(_) => "opened",
            Body::HandedOff(_) => "handed_off",
            Body::Accepted(_) => "accepted",
            Body::Completed(_) => "completed",
            Body::SentBack(_) => "sent_back",
            Body::InfoRequested(_) => "info_requested",
            Body::Resolved(_) => "resolved",
            Body::TaskClosed(_) => "task_closed",
            Body::TaskTransferred(_) => "task_transferred",
            Body::TaskTakenBack(_) => "task_taken_back",
        }
    }

    /// The CloudEvents `type` attribute (`ce-type` header) for this kind, e.g.
    /// `la.gov.onedoor.case.handed_off.v1`.
    pub const fn ce_type(&self) -> &'static str {
        match self {
            Body::Opened(_) => ce_type!("opened"),
            Body::HandedOff(_) => ce_type!("handed_off"),
            Body::Accepted(_) => ce_type!("accepted"),
            Body::Completed(_) => ce_type!("completed"),
            Body::SentBack(_) => ce_type!("sent_back"),
            Body::InfoRequested(_) => ce_type!("info_requested"),
            Body::Resolved(_) => ce_type!("resolved"),
            Body::TaskClosed(_) => ce_type!("task_closed"),
            Body::TaskTransferred(_) => ce_type!("task_transferred"),
            Body::TaskTakenBack(_) => ce_type!("task_taken_back"),
        }
    }
}

/// The kind named by a CloudEvents type, e.g. `handed_off` for
/// `la.gov.onedoor.case.handed_off.v1`; `None` for any other type.
pub fn kind_from_ce_type(ce_type: &str) -> Option<&'static str> {
    let kind = ce_type
        .strip_prefix("la.gov.onedoor.case.")?
        .strip_suffix(".v1")?;
    EVENT_KINDS.into_iter().find(|known| *known == kind)
}

impl CaseEvent {
    /// The event kind (see [`Body::kind`]), or `None` when no body is set,
    /// which no valid event allows.
    pub fn kind(&self) -> Option<&'static str> {
        self.body.as_ref().map(Body::kind)
    }

    /// The CloudEvents type (see [`Body::ce_type`]), or `None` when no body is
    /// set.
    pub fn ce_type(&self) -> Option<&'static str> {
        self.body.as_ref().map(Body::ce_type)
    }

    /// The bytes the agency signs and a verifier checks: this event's protobuf
    /// encoding with `signature` empty.
    ///
    /// `signature` has the highest field number and prost writes fields in
    /// field-number order, so these bytes are also the stored payload without
    /// its final field.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature.clear();
        unsigned.encode_to_vec()
    }
}
