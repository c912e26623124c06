//! Verifying a case again from everything stored of it: its accepted events and the messages
//! quarantined under it, with messages not stored yet, in stream order, as any reader of the
//! stream verifies it. The way out when messages of a case arrived out of stream order (a
//! redelivery after a restart) or another writer moved it.

use std::collections::{BTreeMap, HashMap};

use onedoor_bus::snapshot::payload_digest;
use onedoor_bus::verify::CaseVerifier;
use onedoor_bus::{RawMessage, StoredEvent};
use onedoor_case::{CaseId, Registry};
use sqlx::{Any, Transaction};

use super::cache::CachedCase;
use super::rejected::{Rejection, record_rejected};
use super::write::{Applied, cached};
use super::{bulk, column, rows};
use crate::error::TrackerError;

/// Verifies `case_id` again with `extra` (messages not stored yet) and rewrites its events,
/// quarantined messages and rows. Returns each message's outcome by stream sequence, and the
/// case to cache (`None` when no event of it is believed).
pub(super) async fn reverify(
    tx: &mut Transaction<'static, Any>,
    case_id: &str,
    extra: Vec<RawMessage>,
    registry: Option<&Registry>,
) -> Result<(HashMap<u64, Applied>, Option<CachedCase>), TrackerError> {
    let case = CaseId::parse(case_id).map_err(|e| TrackerError::Corrupt {
        what: format!("case id {case_id}"),
        why: e.to_string(),
    })?;
    let (mut messages, recorded) = stored_messages(tx, case_id).await?;
    for raw in extra {
        messages.entry(raw.sequence).or_insert(raw);
    }
    clear(tx, case_id, ["events", "rejected_messages"]).await?;
    let mut verifier = CaseVerifier::default();
    let mut found = HashMap::with_capacity(messages.len());
    let mut accepted: Vec<StoredEvent> = Vec::new();
    let last_seq = messages.keys().next_back().copied().unwrap_or(0);
    for (sequence, raw) in messages {
        let (subject, payload) = (raw.subject.clone(), raw.payload.clone());
        match verifier.check(case, raw, registry) {
            Ok(stored) => {
                found.insert(
                    sequence,
                    Applied::Projected {
                        case_id: case_id.to_owned(),
                        version: stored.event.version,
                        problem: None,
                    },
                );
                accepted.push(stored);
            }
            Err(quarantined) => {
                let rejection = Rejection {
                    sequence,
                    subject,
                    case_id: Some(case_id.to_owned()),
                    label: quarantined.reason.label(),
                    reason: quarantined.reason.to_string(),
                    payload,
                    recorded_at_ns: recorded.get(&sequence).copied(),
                };
                record_rejected(tx, &rejection).await?;
                found.insert(sequence, rejection.applied());
            }
        }
    }
    bulk::insert_events(tx, &accepted.iter().collect::<Vec<_>>()).await?;
    at_last_version(&mut found, verifier.state.as_ref().map_or(0, |s| s.version));
    let (Some(state), Some(first), Some(last)) =
        (verifier.state, accepted.first(), accepted.last())
    else {
        // Nothing of it is believed: there is no case to show.
        clear(tx, case_id, ["tasks", "cases"]).await?;
        return Ok((found, None));
    };
    let entry = cached(
        state,
        &first.envelope.trace_id,
        last.event.occurred_at,
        payload_digest(&last.payload),
        last_seq,
    );
    rows::write_rows(tx, &entry.projected).await?;
    Ok((found, Some(entry)))
}

/// Deletes the case's rows from `tables`.
async fn clear(
    tx: &mut Transaction<'static, Any>,
    case_id: &str,
    tables: [&'static str; 2],
) -> Result<(), TrackerError> {
    for table in tables {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE case_id = $1"
        )))
        .bind(case_id)
        .execute(&mut **tx)
        .await
        .map_err(TrackerError::db("clearing a case to verify it again"))?;
    }
    Ok(())
}

/// Every accepted message's outcome is the view it leads to: the case's last version.
fn at_last_version(found: &mut HashMap<u64, Applied>, version: u64) {
    for applied in found.values_mut() {
        if let Applied::Projected { version: v, .. } = applied {
            *v = version;
        }
    }
}

/// Every stored message of the case by stream sequence (accepted events, and quarantined
/// messages whose payload was kept), and when each quarantined one was first recorded.
async fn stored_messages(
    tx: &mut Transaction<'static, Any>,
    case_id: &str,
) -> Result<(BTreeMap<u64, RawMessage>, HashMap<u64, i64>), TrackerError> {
    let mut messages = BTreeMap::new();
    let events = sqlx::query(
        "SELECT stream_seq, from_agency, to_agency, payload FROM events WHERE case_id = $1",
    )
    .bind(case_id)
    .fetch_all(&mut **tx)
    .await
    .map_err(TrackerError::db("reading a case's events"))?;
    for row in &events {
        let sequence = column::<i64>(row, "stream_seq")?.unsigned_abs();
        let from: String = column(row, "from_agency")?;
        let to: Option<String> = column(row, "to_agency")?;
        // An accepted event was published on the subject its payload names.
        let subject =
            onedoor_bus::subjects::case_subject(case_id, &from, to.as_deref()).map_err(|e| {
                TrackerError::Corrupt {
                    what: format!("an event of case {case_id}"),
                    why: e.to_string(),
                }
            })?;
        let payload: Vec<u8> = column(row, "payload")?;
        messages.insert(
            sequence,
            RawMessage {
                sequence,
                subject,
                payload: payload.into(),
            },
        );
    }
    let mut recorded = HashMap::new();
    let rejected = sqlx::query(
        "SELECT stream_seq, subject, payload, recorded_at_ns FROM rejected_messages \
         WHERE case_id = $1",
    )
    .bind(case_id)
    .fetch_all(&mut **tx)
    .await
    .map_err(TrackerError::db("reading a case's rejected messages"))?;
    for row in &rejected {
        let sequence = column::<i64>(row, "stream_seq")?.unsigned_abs();
        recorded.insert(sequence, column::<i64>(row, "recorded_at_ns")?);
        let payload: Option<Vec<u8>> = column(row, "payload")?;
        messages.entry(sequence).or_insert(RawMessage {
            sequence,
            subject: column(row, "subject")?,
            payload: payload.unwrap_or_default().into(),
        });
    }
    Ok((messages, recorded))
}
