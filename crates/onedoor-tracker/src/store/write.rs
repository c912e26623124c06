//! Storing an event and recomputing its case's rows.
//!
//! The rows are never patched event by event. Each stored event makes the tracker re-fold the
//! case's gapless prefix of versions (1, 2, 3, … up to the first missing one) with the case
//! rules and rewrite the case's rows, inside one transaction with the insert. So:
//! - applying an event twice changes nothing (its id is already stored: nothing is re-folded);
//! - events that arrive out of order (a redelivery overtaking) wait in `events` until the gap
//!   before them is filled, and then count exactly once;
//! - the views are always the pure fold of stored events, which is what a rebuild gives.

use onedoor_bus::StoredEvent;
use onedoor_bus::case_log::decode_stored;
use onedoor_case::Registry;
use onedoor_case::{CaseState, FoldError};
use sqlx::{Any, Transaction};
use time::OffsetDateTime;

use super::{Store, column, to_i64, to_ns};
use crate::error::TrackerError;
use crate::view::{
    Projected, TaskRecord, search_text, status_name, task_end_name, task_state_name,
};

/// What storing one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The case's view now includes everything up to `version`.
    Projected {
        case_id: String,
        version: u64,
        /// Set when a stored event of the case does not fold; the view stops before it.
        problem: Option<String>,
    },
    /// Stored, but an earlier version of the case is still missing; the view waits for it.
    Waiting { case_id: String, version: u64 },
    /// The event id was already stored: nothing changed.
    Duplicate,
    /// The message was not usable and is listed in `rejected_messages`.
    Rejected { reason: String },
}

impl Store {
    /// Stores one decoded event from stream sequence `stored.sequence` and recomputes its case.
    pub async fn apply(&self, stored: &StoredEvent) -> Result<Applied, TrackerError> {
        let event = &stored.event;
        let case_id = event.case_id.to_string();
        let event_id = event.event_id.to_string();
        let version = to_i64(event.version, "case_version")?;
        let sequence = to_i64(stored.sequence, "stream sequence")?;
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(TrackerError::db("beginning a transaction"))?;
        let inserted = sqlx::query(
            "INSERT INTO events (event_id, case_id, version, stream_seq, occurred_at_ns, kind, \
             from_agency, to_agency, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&event_id)
        .bind(&case_id)
        .bind(version)
        .bind(sequence)
        .bind(to_ns(event.occurred_at))
        .bind(event.body.kind())
        .bind(event.from.as_str())
        .bind(event.to.as_ref().map(|a| a.as_str().to_owned()))
        .bind(stored.payload.to_vec())
        .execute(&mut *tx)
        .await
        .map_err(TrackerError::db("storing an event"))?
        .rows_affected();

        if inserted == 0 {
            let known: Option<String> =
                sqlx::query_scalar("SELECT event_id FROM events WHERE event_id = $1")
                    .bind(&event_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(TrackerError::db("looking up an event"))?;
            if known.is_some() {
                tx.rollback()
                    .await
                    .map_err(TrackerError::db("ending a transaction"))?;
                return Ok(Applied::Duplicate);
            }
            // Another event holds this case version. Appends are serialised per case by the
            // server, so this is a log written around the contract: keep the first, show this.
            let holder: Option<String> = sqlx::query_scalar(
                "SELECT event_id FROM events WHERE case_id = $1 AND version = $2",
            )
            .bind(&case_id)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(TrackerError::db("looking up an event"))?;
            let reason = format!(
                "event {event_id} claims version {version} of case {case_id}, which event {} already holds",
                holder.as_deref().unwrap_or("(unknown)")
            );
            record_rejected(&mut tx, sequence, &subject_of(stored), &reason).await?;
            commit(tx).await?;
            return Ok(Applied::Rejected { reason });
        }

        let applied = reproject(&mut tx, &case_id, event.version, self.audit.as_deref()).await?;
        commit(tx).await?;
        Ok(applied)
    }

    /// Writes case views made elsewhere by the case rules (`Projected::from_state`) in one
    /// transaction, without their events: a bulk load for benchmarks of the read side, which
    /// reads only these rows. Not a projection: `events` stays as it was.
    pub async fn write_views(&self, views: &[Projected]) -> Result<(), TrackerError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(TrackerError::db("beginning a transaction"))?;
        for projected in views {
            write_rows(&mut tx, projected).await?;
        }
        commit(tx).await
    }

    /// Records a message that is not a usable event, once per stream sequence.
    pub async fn reject(
        &self,
        sequence: u64,
        subject: &str,
        reason: &str,
    ) -> Result<(), TrackerError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(TrackerError::db("beginning a transaction"))?;
        record_rejected(
            &mut tx,
            to_i64(sequence, "stream sequence")?,
            subject,
            reason,
        )
        .await?;
        commit(tx).await
    }
}

async fn commit(tx: Transaction<'static, Any>) -> Result<(), TrackerError> {
    tx.commit()
        .await
        .map_err(TrackerError::db("committing a transaction"))
}

fn subject_of(stored: &StoredEvent) -> String {
    let event = &stored.event;
    onedoor_bus::subjects::case_subject(
        &event.case_id.to_string(),
        event.from.as_str(),
        event.to.as_ref().map(|a| a.as_str()),
    )
    .unwrap_or_default()
}

async fn record_rejected(
    tx: &mut Transaction<'static, Any>,
    sequence: i64,
    subject: &str,
    reason: &str,
) -> Result<(), TrackerError> {
    tracing::warn!(
        stream_sequence = sequence,
        subject,
        reason,
        "message rejected"
    );
    sqlx::query(
        "INSERT INTO rejected_messages (stream_seq, subject, reason, recorded_at_ns) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(sequence)
    .bind(subject)
    .bind(reason)
    .bind(to_ns(OffsetDateTime::now_utc()))
    .execute(&mut **tx)
    .await
    .map_err(TrackerError::db("recording a rejected message"))?;
    Ok(())
}

/// The event id a fold error names; `None` when it is about the first event.
fn failing_event(error: &FoldError) -> Option<String> {
    match error {
        FoldError::WrongCase { event_id, .. }
        | FoldError::VersionGap { event_id, .. }
        | FoldError::Inconsistent { event_id, .. } => Some(event_id.to_string()),
        FoldError::NotOpenedFirst { .. } => None,
    }
}

/// Re-folds the case's gapless prefix and rewrites its rows. `arrived` is the version of the
/// event just stored, to tell "the view moved" from "still waiting for a gap".
async fn reproject(
    tx: &mut Transaction<'static, Any>,
    case_id: &str,
    arrived: u64,
    audit: Option<&Registry>,
) -> Result<Applied, TrackerError> {
    let rows = sqlx::query(
        "SELECT version, stream_seq, payload FROM events WHERE case_id = $1 ORDER BY version",
    )
    .bind(case_id)
    .fetch_all(&mut **tx)
    .await
    .map_err(TrackerError::db("reading a case's events"))?;
    let mut prefix: Vec<StoredEvent> = Vec::with_capacity(rows.len());
    for row in &rows {
        let version: i64 = column(row, "version")?;
        if version != prefix.len() as i64 + 1 {
            break;
        }
        let sequence: i64 = column(row, "stream_seq")?;
        let payload: Vec<u8> = column(row, "payload")?;
        // Stored payloads were decoded once before they were stored; failing now means the
        // database was changed under us.
        let stored = decode_stored(sequence.unsigned_abs(), payload.into()).map_err(|e| {
            TrackerError::Corrupt {
                what: format!("event at version {version} of case {case_id}"),
                why: e.to_string(),
            }
        })?;
        prefix.push(stored);
    }
    if (prefix.len() as u64) < arrived {
        return Ok(Applied::Waiting {
            case_id: case_id.to_owned(),
            version: arrived,
        });
    }

    // The case rules decide what the case looks like. An event that does not fold stops the
    // view just before it; it is shown as the case's problem and as a rejected message.
    let (state, problem) = match CaseState::fold(prefix.iter().map(|s| &s.event)) {
        Ok(state) => (state, None),
        Err(error) => {
            let failing = failing_event(&error);
            let good = failing
                .and_then(|id| {
                    prefix
                        .iter()
                        .position(|s| s.event.event_id.to_string() == id)
                })
                .unwrap_or(0);
            let bad = &prefix[good];
            let reason = error.to_string();
            record_rejected(
                tx,
                to_i64(bad.sequence, "stream sequence")?,
                &subject_of(bad),
                &reason,
            )
            .await?;
            let state = CaseState::fold(prefix[..good].iter().map(|s| &s.event)).map_err(|e| {
                TrackerError::Corrupt {
                    what: format!("case {case_id}"),
                    why: format!("its history folds only partly: {e}"),
                }
            })?;
            (state, Some(reason))
        }
    };
    // A history that folds may still be forged or altered: with keys to check against, the
    // first bad signature or broken link is the case's problem (shown to staff, counted).
    let problem = match (problem, audit) {
        (None, Some(registry)) => match onedoor_bus::verify_case(&prefix, registry) {
            Ok(()) => None,
            Err(failure) => {
                metrics::counter!(crate::metrics::AUDIT_FAILURES).increment(1);
                tracing::error!(%failure, "case history fails verification");
                Some(format!("audit: {failure}"))
            }
        },
        (problem, _) => problem,
    };
    let Some(state) = state else {
        // Not even the opening folds: there is no case to show.
        return Ok(Applied::Rejected {
            reason: problem.unwrap_or_else(|| format!("case {case_id} has no opening event")),
        });
    };
    let trace_id = prefix
        .first()
        .map(|s| s.envelope.trace_id.clone())
        .unwrap_or_default();
    let updated_at = prefix
        .get(state.version.saturating_sub(1) as usize)
        .map_or(state.opened_at, |s| s.event.occurred_at);
    let mut projected = Projected::from_state(&state, &trace_id, updated_at);
    projected.case.problem = problem.clone();
    write_rows(tx, &projected).await?;
    Ok(Applied::Projected {
        case_id: case_id.to_owned(),
        version: state.version,
        problem,
    })
}

async fn write_rows(
    tx: &mut Transaction<'static, Any>,
    projected: &Projected,
) -> Result<(), TrackerError> {
    let case = &projected.case;
    let resolution = match case.status {
        onedoor_case::CaseStatus::Resolved(r) => Some(r.as_str().to_owned()),
        _ => None,
    };
    sqlx::query(
        "INSERT INTO cases (case_id, service, origin_agency, status, resolution, citizen_ref, \
         summary, search_text, trace_id, opened_at_ns, resolved_at_ns, updated_at_ns, version, \
         open_tasks, next_due_ns, problem) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (case_id) DO UPDATE SET service = excluded.service, \
         origin_agency = excluded.origin_agency, status = excluded.status, \
         resolution = excluded.resolution, citizen_ref = excluded.citizen_ref, \
         summary = excluded.summary, search_text = excluded.search_text, \
         trace_id = excluded.trace_id, opened_at_ns = excluded.opened_at_ns, \
         resolved_at_ns = excluded.resolved_at_ns, updated_at_ns = excluded.updated_at_ns, \
         version = excluded.version, open_tasks = excluded.open_tasks, \
         next_due_ns = excluded.next_due_ns, problem = excluded.problem",
    )
    .bind(&case.case_id)
    .bind(&case.service)
    .bind(&case.origin_agency)
    .bind(status_name(case.status))
    .bind(resolution)
    .bind(&case.citizen_ref)
    .bind(&case.summary)
    .bind(search_text(case))
    .bind(&case.trace_id)
    .bind(to_ns(case.opened_at))
    .bind(case.resolved_at.map(to_ns))
    .bind(to_ns(case.updated_at))
    .bind(to_i64(case.version, "case_version")?)
    .bind(projected.open_tasks().count() as i64)
    .bind(projected.next_due().map(to_ns))
    .bind(case.problem.clone())
    .execute(&mut **tx)
    .await
    .map_err(TrackerError::db("writing a case view"))?;

    sqlx::query("DELETE FROM tasks WHERE case_id = $1")
        .bind(&case.case_id)
        .execute(&mut **tx)
        .await
        .map_err(TrackerError::db("clearing a case's tasks"))?;
    for task in &projected.tasks {
        insert_task(tx, task).await?;
    }
    Ok(())
}

async fn insert_task(
    tx: &mut Transaction<'static, Any>,
    task: &TaskRecord,
) -> Result<(), TrackerError> {
    sqlx::query(
        "INSERT INTO tasks (case_id, handoff_event_id, agency, handed_by, service, state, \
         instructions, open_question, handed_off_at_ns, accepted_at_ns, due_at_ns, ended_at_ns, \
         ended_by, is_open) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&task.case_id)
    .bind(&task.handoff_event_id)
    .bind(&task.agency)
    .bind(&task.handed_by)
    .bind(&task.service)
    .bind(task_state_name(task.state))
    .bind(&task.instructions)
    .bind(task.open_question.clone())
    .bind(to_ns(task.handed_off_at))
    .bind(task.accepted_at.map(to_ns))
    .bind(to_ns(task.due_at))
    .bind(task.ended.map(|(at, _)| to_ns(at)))
    .bind(task.ended.map(|(_, end)| task_end_name(end).to_owned()))
    .bind(i64::from(task.is_open()))
    .execute(&mut **tx)
    .await
    .map_err(TrackerError::db("writing a task"))?;
    Ok(())
}
