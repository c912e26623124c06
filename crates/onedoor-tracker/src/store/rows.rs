//! Writing the rows of the cases a transaction moved, once per case, at its commit.
//!
//! Each write is conditional on the case row still being at the version the transaction
//! started from and nothing later being stored; a case where that fails (another writer moved
//! it), or that must be verified again, is verified again from everything stored of it
//! (`reverify`), and its messages' outcomes are what that verification found.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use onedoor_bus::RawMessage;
use onedoor_case::Registry;
use sqlx::{Any, Transaction};

use super::bulk::{self, TaskRow};
use super::cache::CachedCase;
use super::reverify::reverify;
use super::to_i64;
use super::verifying::CaseEntry;
use super::write::{Applied, cached};
use crate::error::TrackerError;
use crate::view::{Projected, TaskRecord};

/// Cache changes made inside a transaction; they reach the shared cache only after the commit.
pub(super) type CacheChanges = HashMap<String, Option<Arc<CachedCase>>>;

/// A moved case with its rows made, ready to be written.
struct Ready {
    base: Option<Arc<CachedCase>>,
    latest: Arc<CachedCase>,
    messages: Vec<(usize, u64)>,
}

/// A case to verify again: the messages not stored yet, and the transaction's messages whose
/// outcome the verification decides.
type Again = (String, Vec<RawMessage>, Vec<(usize, u64)>);

/// Writes the rows of every case the transaction moved; returns the cache changes.
pub(super) async fn write_moved(
    tx: &mut Transaction<'static, Any>,
    cases: HashMap<String, CaseEntry>,
    registry: Option<&Registry>,
    outcomes: &mut [Applied],
) -> Result<CacheChanges, TrackerError> {
    let mut changes = CacheChanges::new();
    let mut again: Vec<Again> = Vec::new();
    let mut ready: Vec<(String, Ready)> = Vec::new();
    for (case_id, entry) in cases {
        if let Some(raws) = entry.again {
            again.push((case_id, raws, entry.messages));
            continue;
        }
        match into_ready(entry) {
            Settled::Ready(r) => ready.push((case_id, r)),
            Settled::Seen(Some(seen)) => {
                changes.insert(case_id, Some(seen));
            }
            Settled::Seen(None) => {}
        }
    }
    let written = write_ready(tx, &ready).await?;
    for (case_id, r) in ready {
        if written.contains(&case_id) {
            changes.insert(case_id, Some(r.latest));
        } else {
            again.push((case_id, Vec::new(), r.messages));
        }
    }
    for (case_id, raws, messages) in again {
        let (found, entry) = reverify(tx, &case_id, raws, registry).await?;
        for (index, sequence) in messages {
            if let (Some(outcome), Some(applied)) = (outcomes.get_mut(index), found.get(&sequence))
            {
                *outcome = applied.clone();
            }
        }
        changes.insert(case_id, entry.map(Arc::new));
    }
    Ok(changes)
}

enum Settled {
    Ready(Ready),
    /// Nothing accepted; the case's cached entry, moved past the messages seen (if it has one).
    Seen(Option<Arc<CachedCase>>),
}

fn into_ready(entry: CaseEntry) -> Settled {
    let base_seq = entry.base.as_ref().map_or(0, |b| b.last_seq);
    let (Some(state), Some(last_hash), true) =
        (entry.verifier.state, entry.verifier.last_hash, entry.moved)
    else {
        // Quarantined messages still move the last sequence seen: a message below it that
        // arrives later must be recognised as late.
        let seen = entry
            .base
            .filter(|_| entry.last_seq > base_seq)
            .map(|base| {
                Arc::new(CachedCase {
                    last_seq: entry.last_seq,
                    ..(*base).clone()
                })
            });
        return Settled::Seen(seen);
    };
    let trace_id = entry.trace_id.unwrap_or_default();
    let updated_at = entry.updated_at.unwrap_or(state.opened_at);
    let latest = cached(state, &trace_id, updated_at, last_hash, entry.last_seq);
    Settled::Ready(Ready {
        base: entry.base,
        latest: Arc::new(latest),
        messages: entry.messages,
    })
}

/// Writes the ready cases' rows where each case row is still at its base version (or, for a
/// case opened here, absent with nothing later stored); returns the case ids written.
async fn write_ready(
    tx: &mut Transaction<'static, Any>,
    ready: &[(String, Ready)],
) -> Result<HashSet<String>, TrackerError> {
    let mut updates: Vec<(&Projected, i64)> = Vec::new();
    let mut opened: Vec<(&Projected, i64)> = Vec::new();
    for (_, r) in ready {
        let version = to_i64(r.latest.state.version, "case_version")?;
        match &r.base {
            Some(base) => updates.push((
                &r.latest.projected,
                to_i64(base.state.version, "case_version")?,
            )),
            None => opened.push((&r.latest.projected, version)),
        }
    }
    let mut written = bulk::update_cases(tx, &updates).await?;
    let later = bulk::cases_with_later_events(tx, &opened).await?;
    let fresh: Vec<&Projected> = opened
        .iter()
        .filter(|(projected, _)| !later.contains(&projected.case.case_id))
        .map(|(projected, _)| *projected)
        .collect();
    written.extend(bulk::write_cases(tx, &fresh, false).await?);
    let mut upserts = Vec::new();
    for (case_id, r) in ready {
        if !written.contains(case_id) {
            continue;
        }
        let projected = &r.latest.projected;
        let previous: &[TaskRecord] = r.base.as_ref().map_or(&[], |b| &b.projected.tasks);
        // A task whose case's earliest due time moved is re-written by the update's trigger.
        upserts.extend(TaskRow::of(projected, |task| !previous.contains(task)));
        for old in previous {
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
    }
    bulk::upsert_tasks(tx, &upserts).await?;
    Ok(written)
}

pub(super) fn resolution_name(status: onedoor_case::CaseStatus) -> Option<String> {
    match status {
        onedoor_case::CaseStatus::Resolved(r) => Some(r.as_str().to_owned()),
        _ => None,
    }
}

pub(super) async fn commit(tx: Transaction<'static, Any>) -> Result<(), TrackerError> {
    tx.commit()
        .await
        .map_err(TrackerError::db("committing a transaction"))
}

/// Writes a case's rows whole: the case row replaced, its tasks cleared and written again.
pub(super) async fn write_rows(
    tx: &mut Transaction<'static, Any>,
    projected: &Projected,
) -> Result<(), TrackerError> {
    let case = &projected.case;
    bulk::write_cases(tx, &[projected], true).await?;
    sqlx::query("DELETE FROM tasks WHERE case_id = $1")
        .bind(&case.case_id)
        .execute(&mut **tx)
        .await
        .map_err(TrackerError::db("clearing a case's tasks"))?;
    bulk::upsert_tasks(tx, &TaskRow::of(projected, |_| true)).await
}
