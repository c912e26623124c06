//! A district office's heartbeat to the capital (`docs/district-offices.md`, "What the
//! supervisor sees"): while its adapter is connected it publishes an [`OfficeStatus`] on
//! `onedoor.v1.office.<CODE>.status` (core NATS, no stream: only the latest matters, and a
//! message lost with the link is what silence means anyway). The national tracker subscribes
//! on [`OFFICE_STATUS_SUBJECTS`]; an office it has not heard from within a bound is shown as
//! disconnected since it was last heard.
//!
//! The subject names the office and only that office's NATS user may publish on it, so the
//! subject, not the body, says who sent it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Prefix of the status subjects.
pub const OFFICE_STATUS_PREFIX: &str = "onedoor.v1.office";
/// What the tracker subscribes to: every office's status.
pub const OFFICE_STATUS_SUBJECTS: &str = "onedoor.v1.office.*.status";

/// The subject `office` publishes its status on.
pub fn office_status_subject(office: &str) -> String {
    format!("{OFFICE_STATUS_PREFIX}.{office}.status")
}

/// The office a status subject names; `None` for a subject of another shape.
pub fn office_of_status_subject(subject: &str) -> Option<&str> {
    let rest = subject
        .strip_prefix(OFFICE_STATUS_PREFIX)?
        .strip_prefix('.')?;
    let office = rest.strip_suffix(".status")?;
    (!office.is_empty() && !office.contains('.')).then_some(office)
}

/// How many waiting steps a status lists at most (the oldest): enough for the capital's
/// staff to see what a catch-up is working through, small on a weak link (about 200 bytes
/// each, and nothing when nothing waits).
pub const WAITING_LISTED: usize = 20;

/// One step waiting in the office's outbox for the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingStep {
    pub case_id: String,
    pub event_id: String,
    /// The event's kind (`opened`, `handed_off`, …: `onedoor_case::EventBody::kind`).
    pub kind: String,
    /// The agency the step is addressed to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// When the office stored it (RFC 3339, the office's clock).
    #[serde(with = "time::serde::rfc3339")]
    pub stored_at: OffsetDateTime,
}

/// One heartbeat. Field names are a contract between the office's adapter and the tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficeStatus {
    /// Events in the office's outbox, waiting for the link.
    pub pending: u64,
    /// When the oldest of them was stored at the office (RFC 3339); `None` with none waiting.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub oldest_pending: Option<OffsetDateTime>,
    /// Events the national stream refused because the case changed there, since the
    /// adapter started; each needs staff.
    pub conflicts: u64,
    /// The office's clock when it sent this (RFC 3339): shown, never trusted for liveness.
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    /// The oldest steps waiting (at most [`WAITING_LISTED`]); absent when none wait.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<WaitingStep>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_subject_names_its_office() {
        let subject = office_status_subject("ODSC-VTE-SAYSETTHA");
        assert_eq!(subject, "onedoor.v1.office.ODSC-VTE-SAYSETTHA.status");
        assert_eq!(
            office_of_status_subject(&subject),
            Some("ODSC-VTE-SAYSETTHA")
        );
        assert_eq!(office_of_status_subject("onedoor.v1.office..status"), None);
        assert_eq!(
            office_of_status_subject("onedoor.v1.office.A.B.status"),
            None
        );
        assert_eq!(office_of_status_subject("onedoor.v1.case.x.A.B"), None);
    }

    #[test]
    fn a_status_reads_back_as_written() {
        let status = OfficeStatus {
            pending: 3,
            oldest_pending: Some(time::macros::datetime!(2026-12-05 10:00 UTC)),
            conflicts: 0,
            sent_at: time::macros::datetime!(2026-12-05 10:05 UTC),
            waiting: vec![WaitingStep {
                case_id: "01KBQ0000000000000000000AA".into(),
                event_id: "01KBQ0000000000000000000AB".into(),
                kind: "handed_off".into(),
                to: Some("MOIC".into()),
                stored_at: time::macros::datetime!(2026-12-05 10:01 UTC),
            }],
        };
        let text = serde_json::to_string(&status).expect("encodes");
        assert_eq!(
            serde_json::from_str::<OfficeStatus>(&text).expect("decodes"),
            status
        );
        // A status from an office that lists nothing (or an older adapter) still reads.
        let bare =
            r#"{"pending":0,"oldest_pending":null,"conflicts":0,"sent_at":"2026-12-05T10:05:00Z"}"#;
        assert!(
            serde_json::from_str::<OfficeStatus>(bare)
                .expect("decodes")
                .waiting
                .is_empty()
        );
    }
}
