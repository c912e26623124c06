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
        };
        let text = serde_json::to_string(&status).expect("encodes");
        assert_eq!(
            serde_json::from_str::<OfficeStatus>(&text).expect("decodes"),
            status
        );
    }
}
