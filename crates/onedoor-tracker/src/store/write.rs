//! Storing events and recomputing their cases' rows.
//!
//! The views are always the case rules' fold of each case's gapless prefix of stored versions
//! (1, 2, 3, … up to the first missing one), written in the same transaction as the events:
//! - applying an event twice changes nothing (its id is already stored: nothing is re-folded);
//! - events that arrive out of order (a redelivery overtaking) wait in `events` until the gap
//!   before them is filled, and then count exactly once;
//! - the views are what a rebuild gives.
//!
//! Two shortcuts keep that cheap. A batch of messages shares one transaction. And when an
//! event is exactly the next version of a case whose folded state is cached (`cache`), it is
//! folded onto that state and only the rows it changes are written, on the condition that the
//! case row is still at the cached version and nothing later is stored; otherwise the case's
//! whole prefix is read back and re-folded.

use std::collections::HashMap;
use std::sync::Arc;

use onedoor_bus::StoredEvent;
use onedoor_bus::audit::verify_signature;
use onedoor_bus::case_log::decode_stored;
use onedoor_bus::write::payload_hash;
use onedoor_case::Registry;
use onedoor_case::{CaseState, FoldError};
use sqlx::{Any, Transaction};
use time::OffsetDateTime;

use super::cache::{CachedCase, CaseCache};
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

/// One stream message for [`Store::apply_batch`].
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    /// A decoded case event.
    Event(&'a StoredEvent),
    /// A message that is not a usable event: recorded in `rejected_messages`.
    Unusable {
        sequence: u64,
        subject: &'a str,
        reason: &'a str,
    },
}

/// Cache changes made inside a transaction; they reach the shared cache only after the commit.
type CacheChanges = HashMap<String, Option<Arc<CachedCase>>>;

impl Store {
    /// Stores one decoded event from stream sequence `stored.sequence` and recomputes its case.
    pub async fn apply(&self, stored: &StoredEvent) -> Result<Applied, TrackerError> {
        let mut applied = self.apply_batch(&[Incoming::Event(stored)]).await?;
        applied.pop().ok_or_else(|| TrackerError::Corrupt {
            what: "a batch of one".into(),
            why: "no outcome".into(),
        })
    }

    /// Records a message that is not a usable event, once per stream sequence.
    pub async fn reject(
        &self,
        sequence: u64,
        subject: &str,
        reason: &str,
    ) -> Result<(), TrackerError> {
        self.apply_batch(&[Incoming::Unusable {
            sequence,
            subject,
            reason,
        }])
        .await
        .map(|_| ())
    }

    /// Stores messages in order, in one transaction: all of them or (on an error) none. Returns
    /// what each one did, in the same order.
    pub async fn apply_batch(
        &self,
        messages: &[Incoming<'_>],
    ) -> Result<Vec<Applied>, TrackerError> {
        let signatures = match &self.audit {
            Some(registry) => check_signatures(messages, registry).await,
            None => vec![None; messages.len()],
        };
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(TrackerError::db("beginning a transaction"))?;
        let mut changes = CacheChanges::new();
        let mut outcomes = Vec::with_capacity(messages.len());
        for (message, signature_ok) in messages.iter().zip(signatures) {
            let applied = match *message {
                Incoming::Event(stored) => {
                    let check = Check {
                        audit: self.audit.as_deref(),
                        signature_ok,
                    };
                    apply_event(&mut tx, stored, check, &self.cache, &mut changes).await?
                }
                Incoming::Unusable {
                    sequence,
                    subject,
                    reason,
                } => {
                    record_rejected(
                        &mut tx,
                        to_i64(sequence, "stream sequence")?,
                        subject,
                        reason,
                    )
                    .await?;
                    Applied::Rejected {
                        reason: reason.to_owned(),
                    }
                }
            };
            outcomes.push(applied);
        }
        commit(tx).await?;
        self.cache.merge(changes);
        Ok(outcomes)
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
}

/// Below this many events, signatures are checked inline as each event is folded.
const PARALLEL_CHECK_MIN: usize = 16;

/// Checks the events' signatures before the transaction, on two blocking threads: a check
/// costs more than storing the event and needs no database. `None` for a message that is not
/// an event, or when the batch is small (then the fold checks inline).
async fn check_signatures(
    messages: &[Incoming<'_>],
    registry: &Arc<Registry>,
) -> Vec<Option<bool>> {
    let mut results = vec![None; messages.len()];
    let mut events: Vec<(usize, StoredEvent)> = messages
        .iter()
        .enumerate()
        .filter_map(|(i, message)| match message {
            Incoming::Event(stored) => Some((i, (*stored).clone())),
            Incoming::Unusable { .. } => None,
        })
        .collect();
    if events.len() < PARALLEL_CHECK_MIN {
        return results;
    }
    let second = events.split_off(events.len() / 2);
    let halves = [events, second].map(|half| {
        let registry = registry.clone();
        tokio::task::spawn_blocking(move || {
            half.into_iter()
                .map(|(i, stored)| (i, verify_signature(&stored, &registry).is_ok()))
                .collect::<Vec<_>>()
        })
    });
    for half in halves {
        // A check that panicked is left to the inline check, which reports it properly.
        if let Ok(checked) = half.await {
            for (i, ok) in checked {
                results[i] = Some(ok);
            }
        }
    }
    results
}

/// How an event's authenticity is checked: against `audit`'s keys when set; `signature_ok`
/// is the signature check already done for it, if any.
#[derive(Clone, Copy)]
struct Check<'a> {
    audit: Option<&'a Registry>,
    signature_ok: Option<bool>,
}

/// Stores one event inside `tx` and brings its case's rows up to date.
async fn apply_event(
    tx: &mut Transaction<'static, Any>,
    stored: &StoredEvent,
    check: Check<'_>,
    cache: &CaseCache,
    changes: &mut CacheChanges,
) -> Result<Applied, TrackerError> {
    let audit = check.audit;
    let event = &stored.event;
    let case_id = event.case_id.to_string();
    let event_id = event.event_id.to_string();
    let version = to_i64(event.version, "case_version")?;
    let sequence = to_i64(stored.sequence, "stream sequence")?;
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
    .execute(&mut **tx)
    .await
    .map_err(TrackerError::db("storing an event"))?
    .rows_affected();

    if inserted == 0 {
        let known: Option<String> =
            sqlx::query_scalar("SELECT event_id FROM events WHERE event_id = $1")
                .bind(&event_id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(TrackerError::db("looking up an event"))?;
        if known.is_some() {
            return Ok(Applied::Duplicate);
        }
        // Another event holds this case version. Appends are serialised per case by the
        // server, so this is a log written around the contract: keep the first, show this.
        let holder: Option<String> =
            sqlx::query_scalar("SELECT event_id FROM events WHERE case_id = $1 AND version = $2")
                .bind(&case_id)
                .bind(version)
                .fetch_optional(&mut **tx)
                .await
                .map_err(TrackerError::db("looking up an event"))?;
        let reason = format!(
            "event {event_id} claims version {version} of case {case_id}, which event {} already holds",
            holder.as_deref().unwrap_or("(unknown)")
        );
        record_rejected(tx, sequence, &subject_of(stored), &reason).await?;
        return Ok(Applied::Rejected { reason });
    }

    let cached = match changes.get(&case_id) {
        Some(change) => change.clone(),
        None => cache.get(&case_id),
    };
    if let Some(cached) = cached.filter(|c| c.state.version + 1 == event.version)
        && let Some(next) = fold_onto(tx, stored, &cached, check).await?
    {
        let applied = Applied::Projected {
            case_id: case_id.clone(),
            version: next.state.version,
            problem: None,
        };
        changes.insert(case_id, Some(Arc::new(next)));
        return Ok(applied);
    }
    let (applied, entry) = reproject(tx, &case_id, event.version, audit).await?;
    changes.insert(case_id, entry.map(Arc::new));
    Ok(applied)
}

/// Folds `stored` onto the cached state of its case and writes what changed. `None` when the
/// shortcut does not apply (the event does not fold or verify cleanly, or the database is not
/// where the cache says); nothing was written then, and the caller re-folds the whole case.
async fn fold_onto(
    tx: &mut Transaction<'static, Any>,
    stored: &StoredEvent,
    cached: &CachedCase,
    check: Check<'_>,
) -> Result<Option<CachedCase>, TrackerError> {
    let Ok(state) = CaseState::apply(Some(cached.state.clone()), &stored.event) else {
        return Ok(None);
    };
    if let Some(registry) = check.audit
        && (stored.wire.prev_hash != cached.last_hash
            || !check
                .signature_ok
                .unwrap_or_else(|| verify_signature(stored, registry).is_ok()))
    {
        return Ok(None);
    }
    let previous = &cached.projected;
    let projected =
        Projected::from_state(&state, &previous.case.trace_id, stored.event.occurred_at);
    let case = &projected.case;
    let new_version = to_i64(case.version, "case_version")?;
    let updated = sqlx::query(
        "UPDATE cases SET status = $1, resolution = $2, resolved_at_ns = $3, updated_at_ns = $4, \
         version = $5, open_tasks = $6, next_due_ns = $7, problem = NULL \
         WHERE case_id = $8 AND version = $9 AND NOT EXISTS \
         (SELECT 1 FROM events e WHERE e.case_id = $8 AND e.version > $5)",
    )
    .bind(status_name(case.status))
    .bind(resolution_name(case.status))
    .bind(case.resolved_at.map(to_ns))
    .bind(to_ns(case.updated_at))
    .bind(new_version)
    .bind(projected.open_tasks().count() as i64)
    .bind(projected.next_due().map(to_ns))
    .bind(&case.case_id)
    .bind(to_i64(previous.case.version, "case_version")?)
    .execute(&mut **tx)
    .await
    .map_err(TrackerError::db("writing a case view"))?
    .rows_affected();
    if updated == 0 {
        return Ok(None);
    }
    for task in &projected.tasks {
        let unchanged = previous
            .tasks
            .iter()
            .any(|old| old.handoff_event_id == task.handoff_event_id && old == task);
        if !unchanged {
            upsert_task(tx, task).await?;
        }
    }
    for old in &previous.tasks {
        if !projected
            .tasks
            .iter()
            .any(|t| t.handoff_event_id == old.handoff_event_id)
        {
            sqlx::query("DELETE FROM tasks WHERE case_id = $1 AND handoff_event_id = $2")
                .bind(&old.case_id)
                .bind(&old.handoff_event_id)
                .execute(&mut **tx)
                .await
                .map_err(TrackerError::db("removing a task"))?;
        }
    }
    Ok(Some(CachedCase {
        state,
        projected,
        last_hash: payload_hash(&stored.payload),
    }))
}

fn resolution_name(status: onedoor_case::CaseStatus) -> Option<String> {
    match status {
        onedoor_case::CaseStatus::Resolved(r) => Some(r.as_str().to_owned()),
        _ => None,
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
/// event just stored, to tell "the view moved" from "still waiting for a gap". Also returns
/// the state to cache when every stored event of the case folded without a problem.
async fn reproject(
    tx: &mut Transaction<'static, Any>,
    case_id: &str,
    arrived: u64,
    audit: Option<&Registry>,
) -> Result<(Applied, Option<CachedCase>), TrackerError> {
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
        let waiting = Applied::Waiting {
            case_id: case_id.to_owned(),
            version: arrived,
        };
        return Ok((waiting, None));
    }
    let complete = prefix.len() == rows.len();

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
        let rejected = Applied::Rejected {
            reason: problem.unwrap_or_else(|| format!("case {case_id} has no opening event")),
        };
        return Ok((rejected, None));
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
    let applied = Applied::Projected {
        case_id: case_id.to_owned(),
        version: state.version,
        problem: problem.clone(),
    };
    let entry = match (problem, prefix.last()) {
        (None, Some(last)) if complete && last.event.version == state.version => Some(CachedCase {
            last_hash: payload_hash(&last.payload),
            state,
            projected,
        }),
        _ => None,
    };
    Ok((applied, entry))
}

async fn write_rows(
    tx: &mut Transaction<'static, Any>,
    projected: &Projected,
) -> Result<(), TrackerError> {
    let case = &projected.case;
    let resolution = resolution_name(case.status);
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
        upsert_task(tx, task).await?;
    }
    Ok(())
}

/// Inserts a task, or replaces the stored one with the same id.
async fn upsert_task(
    tx: &mut Transaction<'static, Any>,
    task: &TaskRecord,
) -> Result<(), TrackerError> {
    sqlx::query(
        "INSERT INTO tasks (case_id, handoff_event_id, agency, handed_by, service, state, \
         instructions, open_question, handed_off_at_ns, accepted_at_ns, due_at_ns, ended_at_ns, \
         ended_by, is_open) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (case_id, handoff_event_id) DO UPDATE SET agency = excluded.agency, \
         handed_by = excluded.handed_by, service = excluded.service, state = excluded.state, \
         instructions = excluded.instructions, open_question = excluded.open_question, \
         handed_off_at_ns = excluded.handed_off_at_ns, accepted_at_ns = excluded.accepted_at_ns, \
         due_at_ns = excluded.due_at_ns, ended_at_ns = excluded.ended_at_ns, \
         ended_by = excluded.ended_by, is_open = excluded.is_open",
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
