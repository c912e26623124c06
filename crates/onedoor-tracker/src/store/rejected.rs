//! Messages not believed (`rejected_messages`): recorded under the case their subject names,
//! with their payload so the case can be verified again, and read back per case for staff.

use bytes::Bytes;
use onedoor_bus::QuarantineReason;
use sqlx::{Any, Transaction};
use time::OffsetDateTime;

use super::write::{Applied, Incoming, sequence_i64};
use super::{Store, column, from_ns, to_ns};
use crate::error::TrackerError;

/// One message to record as not believed.
pub(super) struct Rejection {
    pub sequence: u64,
    pub subject: String,
    /// The case the subject names; `None` when it names none.
    pub case_id: Option<String>,
    pub label: &'static str,
    pub reason: String,
    pub payload: Bytes,
    /// When it was first recorded (a case verified again keeps the first time).
    pub recorded_at_ns: Option<i64>,
}

impl Rejection {
    pub fn of(message: &Incoming<'_>, case_id: Option<&str>, reason: &QuarantineReason) -> Self {
        Rejection {
            sequence: message.sequence(),
            subject: message.subject().to_owned(),
            case_id: case_id.map(str::to_owned),
            label: reason.label(),
            reason: reason.to_string(),
            payload: message.raw().payload,
            recorded_at_ns: None,
        }
    }

    pub fn applied(&self) -> Applied {
        Applied::Rejected {
            case_id: self.case_id.clone(),
            label: self.label,
            reason: self.reason.clone(),
        }
    }
}

/// Records `rejection`, once per stream sequence.
pub(super) async fn record_rejected(
    tx: &mut Transaction<'static, Any>,
    rejection: &Rejection,
) -> Result<(), TrackerError> {
    tracing::warn!(
        stream_sequence = rejection.sequence,
        subject = %rejection.subject,
        reason = %rejection.reason,
        "message quarantined"
    );
    sqlx::query(
        "INSERT INTO rejected_messages (stream_seq, subject, reason, recorded_at_ns, case_id, \
         label, payload) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(sequence_i64(rejection.sequence)?)
    .bind(rejection.subject.as_str())
    .bind(rejection.reason.as_str())
    .bind(
        rejection
            .recorded_at_ns
            .unwrap_or_else(|| to_ns(OffsetDateTime::now_utc())),
    )
    .bind(rejection.case_id.as_deref())
    .bind(rejection.label)
    .bind(&rejection.payload[..])
    .execute(&mut **tx)
    .await
    .map_err(TrackerError::db("recording a rejected message"))?;
    Ok(())
}

/// A message the projection did not believe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedMessage {
    pub stream_sequence: u64,
    pub subject: String,
    /// The case its subject names; `None` for a subject that names none, and for messages
    /// recorded before the tracker kept it (a rebuild fills it in).
    pub case_id: Option<String>,
    /// undecodable, subject_mismatch, bad_signature, broken_chain or rules; `None` for
    /// messages recorded before the tracker kept it.
    pub label: Option<String>,
    /// The reason in words.
    pub reason: String,
    pub recorded_at: OffsetDateTime,
}

impl RejectedMessage {
    /// The agency that published it, as its subject says (`onedoor.v1.case.<case>.<from>.<to>`):
    /// the broker lets an agency publish only as itself, so this is who sent it, whatever the
    /// payload claims.
    pub fn sender(&self) -> Option<&str> {
        let rest = self
            .subject
            .strip_prefix(onedoor_bus::subjects::CASE_SUBJECT_PREFIX)?
            .strip_prefix('.')?;
        let mut tokens = rest.split('.');
        let (_case, from, _to) = (tokens.next()?, tokens.next()?, tokens.next()?);
        tokens.next().is_none().then_some(from)
    }
}

const COLUMNS: &str = "stream_seq, subject, case_id, label, reason, recorded_at_ns";

impl Store {
    /// Messages the projection did not believe, oldest first.
    pub async fn rejected_messages(&self) -> Result<Vec<RejectedMessage>, TrackerError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM rejected_messages ORDER BY stream_seq"
        )))
        .fetch_all(self.pool())
        .await
        .map_err(TrackerError::db("reading rejected messages"))?;
        rows.iter().map(rejected_message).collect()
    }

    /// The messages on `case_id`'s subjects that were not believed, oldest first.
    pub async fn rejected_for_case(
        &self,
        case_id: &str,
    ) -> Result<Vec<RejectedMessage>, TrackerError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM rejected_messages WHERE case_id = $1 ORDER BY stream_seq"
        )))
        .bind(case_id)
        .fetch_all(self.pool())
        .await
        .map_err(TrackerError::db("reading a case's rejected messages"))?;
        rows.iter().map(rejected_message).collect()
    }
}

fn rejected_message(row: &sqlx::any::AnyRow) -> Result<RejectedMessage, TrackerError> {
    Ok(RejectedMessage {
        stream_sequence: column::<i64>(row, "stream_seq")?.unsigned_abs(),
        subject: column(row, "subject")?,
        case_id: column(row, "case_id")?,
        label: column(row, "label")?,
        reason: column(row, "reason")?,
        recorded_at: from_ns(column(row, "recorded_at_ns")?)?,
    })
}
