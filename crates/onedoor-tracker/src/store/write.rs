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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use onedoor_bus::StoredEvent;
use onedoor_bus::audit::{SignatureCheck, verify_checks, verify_signature};
use onedoor_bus::case_log::decode_stored;
use onedoor_bus::write::payload_hash;
use onedoor_case::Registry;
use onedoor_case::{CaseState, FoldError};
use sqlx::{Any, Connection as _, Transaction};
use time::OffsetDateTime;

use super::bulk::TaskRow;
use super::cache::{CachedCase, CaseCache};
use super::{Store, bulk, column, to_i64, to_ns};
use crate::error::TrackerError;
use crate::view::{Projected, TaskRecord};

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
    ///
    /// The outcome is that of storing the messages one by one, but the statements are few: all
    /// new events go in with one multi-row insert, each message is then folded in memory (a
    /// re-fold reads the case back, hiding the batch's events not yet reached), and the rows
    /// of the cases moved by the shortcut are written once per case at the end, with one
    /// multi-row conditional update and one multi-row task upsert.
    pub async fn apply_batch(
        &self,
        messages: &[Incoming<'_>],
    ) -> Result<Vec<Applied>, TrackerError> {
        let checked = self.check(messages).await;
        self.apply_checked(messages, checked).await
    }

    /// Checks the signatures of `messages`' events ahead of [`Store::apply_checked`], when
    /// this store audits: a check costs more than storing the event and needs no database, so
    /// a caller can check one batch while the previous one is being written.
    pub async fn check(&self, messages: &[Incoming<'_>]) -> Checked {
        Checked(match &self.audit {
            Some(registry) => check_signatures(messages, registry).await,
            None => vec![None; messages.len()],
        })
    }

    /// [`Store::apply_batch`] with the signatures already checked by [`Store::check`] on the
    /// same messages.
    pub async fn apply_checked(
        &self,
        messages: &[Incoming<'_>],
        checked: Checked,
    ) -> Result<Vec<Applied>, TrackerError> {
        let mut writing = self.begin_writing().await?;
        writing.apply(messages, checked).await?;
        writing.commit().await
    }

    /// Starts a transaction that stores several batches of messages (see [`Writing`]).
    pub async fn begin_writing(&self) -> Result<Writing, TrackerError> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(TrackerError::db("beginning a transaction"))?;
        // There, the transaction would be a savepoint whose release commits nothing, and what
        // it stored would be acknowledged and lost (see `connections`). The pool's release
        // check keeps such connections out; this is the last line.
        if conn.is_in_transaction() {
            conn.close_on_drop();
            return Err(TrackerError::Database {
                action: "beginning a transaction",
                source: sqlx::Error::BeginFailed,
            });
        }
        let tx = Transaction::begin(conn, None)
            .await
            .map_err(TrackerError::db("beginning a transaction"))?;
        Ok(Writing {
            store: self.clone(),
            tx,
            batch: Batch::default(),
            outcomes: Vec::new(),
        })
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

/// The outcome of [`Store::check`]: per message, whether its event's signature verified
/// (`None`: not checked ahead, the fold checks it inline if needed).
#[derive(Debug, Clone, Default)]
pub struct Checked(Vec<Option<bool>>);

/// Batches of messages stored in one transaction, as [`Store::apply_checked`] stores one: all
/// of them or (on an error, or when dropped uncommitted) none. The rows of the cases the
/// batches move are written once, at [`Writing::commit`], however many of the batches moved
/// each case: a rebuild that keeps a transaction open over many batches writes most cases once
/// instead of once per batch they appear in.
pub struct Writing {
    store: Store,
    tx: Transaction<'static, Any>,
    batch: Batch,
    /// What each message stored so far did, in order; a pending case's messages may still
    /// change at the commit (see `flush`).
    outcomes: Vec<Applied>,
}

impl Writing {
    /// Messages stored so far.
    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    /// Stores `messages` in order; `checked` comes from [`Store::check`] on the same messages.
    pub async fn apply(
        &mut self,
        messages: &[Incoming<'_>],
        checked: Checked,
    ) -> Result<(), TrackerError> {
        let mut signatures = checked.0;
        // Checks that do not line up with the messages are not used; the fold checks inline.
        if signatures.len() != messages.len() {
            signatures = vec![None; messages.len()];
        }
        let Writing {
            store,
            tx,
            batch,
            outcomes,
        } = self;
        let audit = store.audit.as_deref();
        let events: Vec<&StoredEvent> = messages
            .iter()
            .filter_map(|message| match message {
                Incoming::Event(stored) => Some(*stored),
                Incoming::Unusable { .. } => None,
            })
            .collect();
        // Ids stored by this batch whose message has not been reached yet.
        let mut unseen = bulk::insert_events(tx, &events).await?;
        outcomes.reserve(messages.len());
        for (message, signature_ok) in messages.iter().zip(signatures) {
            let index = outcomes.len();
            let applied = match *message {
                Incoming::Event(stored) => {
                    let check = Check {
                        audit,
                        signature_ok,
                    };
                    let event_id = stored.event.event_id.to_string();
                    if unseen.remove(&event_id) {
                        apply_stored(tx, stored, check, &store.cache, batch, &unseen, index).await?
                    } else {
                        not_stored(tx, stored, &event_id).await?
                    }
                }
                Incoming::Unusable {
                    sequence,
                    subject,
                    reason,
                } => {
                    record_rejected(tx, to_i64(sequence, "stream sequence")?, subject, reason)
                        .await?;
                    Applied::Rejected {
                        reason: reason.to_owned(),
                    }
                }
            };
            outcomes.push(applied);
        }
        Ok(())
    }

    /// Writes the moved cases' rows and commits; returns what each message stored did.
    pub async fn commit(self) -> Result<Vec<Applied>, TrackerError> {
        let Writing {
            store,
            mut tx,
            mut batch,
            mut outcomes,
        } = self;
        flush(&mut tx, &mut batch, store.audit.as_deref(), &mut outcomes).await?;
        commit(tx).await?;
        store.cache.merge(batch.changes);
        Ok(outcomes)
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
    // What each check needs, taken from the events without copying them.
    let mut checks: Vec<(usize, Option<SignatureCheck>)> = messages
        .iter()
        .enumerate()
        .filter_map(|(i, message)| match message {
            Incoming::Event(stored) => Some((i, SignatureCheck::of(stored, registry))),
            Incoming::Unusable { .. } => None,
        })
        .collect();
    if checks.len() < PARALLEL_CHECK_MIN {
        return results;
    }
    let second = checks.split_off(checks.len() / 2);
    let halves = [checks, second].map(|half| {
        tokio::task::spawn_blocking(move || {
            let (indexes, checks): (Vec<usize>, Vec<Option<SignatureCheck>>) =
                half.into_iter().unzip();
            indexes
                .into_iter()
                .zip(verify_checks(&checks))
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

/// A batch's work in progress: cache changes (they reach the shared cache only after the
/// commit) and the cases moved by the shortcut whose rows are still to be written.
#[derive(Default)]
struct Batch {
    changes: CacheChanges,
    pending: HashMap<String, Pending>,
}

/// A case folded onto its cached state by one or more of the batch's events.
struct Pending {
    /// The state the case row must still be at for the shortcut's write to apply; `None` for
    /// a case opened by this batch, whose row must not exist yet.
    base: Option<Arc<CachedCase>>,
    /// The case folded so far. Its rows are made from it once, when they are written
    /// (`flush`), not at every event. `None` only while an event is being folded onto it.
    state: Option<CaseState>,
    trace_id: String,
    /// When the last event folded in happened: the case row's `updated_at`.
    updated_at: OffsetDateTime,
    /// SHA-256 of the last folded event's payload: the next event's `prev_hash`.
    last_hash: Vec<u8>,
    /// The messages (by index) whose outcome depends on that write.
    messages: Vec<usize>,
}

impl Pending {
    /// The case with its rows made from the state folded so far.
    fn into_ready(self) -> Option<Ready> {
        let state = self.state?;
        let projected = Projected::from_state(&state, &self.trace_id, self.updated_at);
        Some(Ready {
            base: self.base,
            latest: Arc::new(CachedCase {
                state,
                projected,
                last_hash: self.last_hash,
            }),
            messages: self.messages,
        })
    }
}

/// Brings the case of `stored`, an event this batch just stored, up to date: onto the state
/// folded so far when it is the next version, else by re-folding the case from the database
/// with the batch's later events (`hidden`) left out, as if they had not arrived yet.
async fn apply_stored(
    tx: &mut Transaction<'static, Any>,
    stored: &StoredEvent,
    check: Check<'_>,
    cache: &CaseCache,
    batch: &mut Batch,
    hidden: &HashSet<String>,
    index: usize,
) -> Result<Applied, TrackerError> {
    let event = &stored.event;
    let case_id = event.case_id.to_string();
    let folded = match batch.pending.get_mut(&case_id) {
        // Beyond the next version: the event waits for the gap before it to fill, and the
        // state folded so far is still the view (dropping it would leave the case's rows
        // behind the gapless prefix until the gap fills).
        Some(pending)
            if pending
                .state
                .as_ref()
                .is_some_and(|state| event.version > state.version + 1) =>
        {
            return Ok(Applied::Waiting {
                case_id,
                version: event.version,
            });
        }
        // Folded by this transaction already: onto that state, in place.
        Some(pending) => fold_pending(pending, stored, check, index),
        None => {
            let cached = match batch.changes.get(&case_id) {
                Some(change) => change.clone(),
                None => cache.get(&case_id),
            };
            // A case's first event folds onto nothing: no read is needed to open a case,
            // which is most of a rebuild's re-folds otherwise.
            let base = match cached {
                Some(cached) if cached.state.version + 1 == event.version => Some(Some(cached)),
                None if event.version == 1 => Some(None),
                _ => None,
            };
            match base.and_then(|base| fold_first(stored, base, check, index)) {
                Some(pending) => {
                    batch.pending.insert(case_id.clone(), pending);
                    true
                }
                None => false,
            }
        }
    };
    if folded {
        return Ok(Applied::Projected {
            case_id,
            version: event.version,
            problem: None,
        });
    }
    // The re-fold rewrites the case's rows whole: a shortcut write still pending is moot.
    batch.pending.remove(&case_id);
    let (applied, entry) = reproject(tx, &case_id, event.version, check.audit, hidden).await?;
    batch.changes.insert(case_id, entry.map(Arc::new));
    Ok(applied)
}

/// The outcome for an event the batch's insert did not store: its id was already there (or
/// earlier in the batch), or another event holds its case version.
async fn not_stored(
    tx: &mut Transaction<'static, Any>,
    stored: &StoredEvent,
    event_id: &str,
) -> Result<Applied, TrackerError> {
    let event = &stored.event;
    let case_id = event.case_id.to_string();
    let version = to_i64(event.version, "case_version")?;
    let known: Option<String> =
        sqlx::query_scalar("SELECT event_id FROM events WHERE event_id = $1")
            .bind(event_id)
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
    let sequence = to_i64(stored.sequence, "stream sequence")?;
    record_rejected(tx, sequence, &subject_of(stored), &reason).await?;
    Ok(Applied::Rejected { reason })
}

/// Whether `stored` may be folded onto a state whose last event's payload hashed to
/// `last_hash`: it links to that event and its signature verifies (when checked).
fn links_and_verifies(stored: &StoredEvent, last_hash: &[u8], check: Check<'_>) -> bool {
    match check.audit {
        None => true,
        Some(registry) => {
            stored.wire.prev_hash[..] == *last_hash
                && check
                    .signature_ok
                    .unwrap_or_else(|| verify_signature(stored, registry).is_ok())
        }
    }
}

/// Folds `stored` onto its case's cached state (`None`: the case opens with it) as the first
/// of this transaction's events of the case. `None` when the shortcut does not apply (the
/// event does not fold or verify cleanly); the caller re-folds the whole case then.
fn fold_first(
    stored: &StoredEvent,
    base: Option<Arc<CachedCase>>,
    check: Check<'_>,
    index: usize,
) -> Option<Pending> {
    // The first event of a case links to nothing: its prev_hash is empty.
    let last_hash = base.as_ref().map_or(&[][..], |c| &c.last_hash[..]);
    if !links_and_verifies(stored, last_hash, check) {
        return None;
    }
    let state = CaseState::apply(base.as_ref().map(|c| c.state.clone()), &stored.event).ok()?;
    let trace_id = base
        .as_ref()
        .map_or(&stored.envelope.trace_id, |c| &c.projected.case.trace_id)
        .clone();
    Some(Pending {
        base,
        state: Some(state),
        trace_id,
        updated_at: stored.event.occurred_at,
        last_hash: payload_hash(&stored.payload),
        messages: vec![index],
    })
}

/// Folds `stored` onto the state this transaction folded so far; false when the shortcut
/// does not apply (the caller drops `pending` and re-folds the case).
fn fold_pending(
    pending: &mut Pending,
    stored: &StoredEvent,
    check: Check<'_>,
    index: usize,
) -> bool {
    let next_version = pending.state.as_ref().map(|s| s.version + 1);
    if next_version != Some(stored.event.version)
        || !links_and_verifies(stored, &pending.last_hash, check)
    {
        return false;
    }
    match CaseState::apply(pending.state.take(), &stored.event) {
        Ok(state) => {
            pending.state = Some(state);
            pending.updated_at = stored.event.occurred_at;
            pending.last_hash = payload_hash(&stored.payload);
            pending.messages.push(index);
            true
        }
        Err(_) => false,
    }
}

/// A pending case with its rows made, ready to be written.
struct Ready {
    base: Option<Arc<CachedCase>>,
    latest: Arc<CachedCase>,
    messages: Vec<usize>,
}

/// Writes the rows of the cases the shortcut moved, on the condition that each case row is
/// still at the version the cache said and nothing later is stored. A case where that fails
/// (another writer moved it) is re-folded from the database, and its messages' outcomes are
/// what that re-fold found.
async fn flush(
    tx: &mut Transaction<'static, Any>,
    batch: &mut Batch,
    audit: Option<&Registry>,
    outcomes: &mut [Applied],
) -> Result<(), TrackerError> {
    let pending: Vec<(String, Ready)> = batch
        .pending
        .drain()
        .filter_map(|(case_id, p)| p.into_ready().map(|ready| (case_id, ready)))
        .collect();
    let mut updates: Vec<(&Projected, i64)> = Vec::new();
    let mut opened: Vec<(&Projected, i64)> = Vec::new();
    for (_, p) in &pending {
        let version = to_i64(p.latest.state.version, "case_version")?;
        match &p.base {
            Some(base) => updates.push((
                &p.latest.projected,
                to_i64(base.state.version, "case_version")?,
            )),
            None => opened.push((&p.latest.projected, version)),
        }
    }
    let mut written = bulk::update_cases(tx, &updates).await?;
    // A case opened here is written only when no other writer stored a row or a later event
    // of it; otherwise it is re-folded below like any stale shortcut.
    let later = bulk::cases_with_later_events(tx, &opened).await?;
    let fresh: Vec<&Projected> = opened
        .iter()
        .filter(|(projected, _)| !later.contains(&projected.case.case_id))
        .map(|(projected, _)| *projected)
        .collect();
    written.extend(bulk::write_cases(tx, &fresh, false).await?);
    let mut upserts = Vec::new();
    for (case_id, p) in &pending {
        if !written.contains(case_id) {
            continue;
        }
        let projected = &p.latest.projected;
        let previous: &[TaskRecord] = p.base.as_ref().map_or(&[], |b| &b.projected.tasks);
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
    for (case_id, p) in pending {
        if written.contains(&case_id) {
            batch.changes.insert(case_id, Some(p.latest));
            continue;
        }
        let (applied, entry) =
            reproject(tx, &case_id, p.latest.state.version, audit, &HashSet::new()).await?;
        for index in p.messages {
            if let Some(outcome) = outcomes.get_mut(index) {
                *outcome = applied.clone();
            }
        }
        batch.changes.insert(case_id, entry.map(Arc::new));
    }
    Ok(())
}

pub(super) fn resolution_name(status: onedoor_case::CaseStatus) -> Option<String> {
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
    onedoor_bus::subjects::event_subject(&stored.event).unwrap_or_default()
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
        | FoldError::Inconsistent { event_id, .. }
        | FoldError::Unauthorized { event_id, .. } => Some(event_id.to_string()),
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
    hidden: &HashSet<String>,
) -> Result<(Applied, Option<CachedCase>), TrackerError> {
    let (prefix, complete) = gapless_prefix(tx, case_id, hidden).await?;
    if (prefix.len() as u64) < arrived {
        let waiting = Applied::Waiting {
            case_id: case_id.to_owned(),
            version: arrived,
        };
        return Ok((waiting, None));
    }
    let (state, problem) = fold_prefix(tx, case_id, &prefix).await?;
    // A history that folds may still be forged or altered: with keys to check against, the
    // first bad signature or broken link is the case's problem (shown to staff, counted).
    let problem = match (problem, audit) {
        (None, Some(registry)) => audit_problem(&prefix, registry),
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

/// The case's stored events from version 1 up to its first gap, leaving out `hidden` ones;
/// and whether that is every stored event of the case.
async fn gapless_prefix(
    tx: &mut Transaction<'static, Any>,
    case_id: &str,
    hidden: &HashSet<String>,
) -> Result<(Vec<StoredEvent>, bool), TrackerError> {
    let mut rows = sqlx::query(
        "SELECT event_id, version, stream_seq, payload FROM events WHERE case_id = $1 \
         ORDER BY version",
    )
    .bind(case_id)
    .fetch_all(&mut **tx)
    .await
    .map_err(TrackerError::db("reading a case's events"))?;
    if !hidden.is_empty() {
        let mut visible = Vec::with_capacity(rows.len());
        for row in rows {
            let event_id: String = column(&row, "event_id")?;
            if !hidden.contains(&event_id) {
                visible.push(row);
            }
        }
        rows = visible;
    }
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
    let complete = prefix.len() == rows.len();
    Ok((prefix, complete))
}

/// The case rules decide what the case looks like. An event that does not fold stops the view
/// just before it; it is returned as the case's problem and recorded as a rejected message.
async fn fold_prefix(
    tx: &mut Transaction<'static, Any>,
    case_id: &str,
    prefix: &[StoredEvent],
) -> Result<(Option<CaseState>, Option<String>), TrackerError> {
    let error = match CaseState::fold(prefix.iter().map(|s| &s.event)) {
        Ok(state) => return Ok((state, None)),
        Err(error) => error,
    };
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
    Ok((state, Some(reason)))
}

/// The first bad signature or broken link of the history, as the case's problem.
fn audit_problem(prefix: &[StoredEvent], registry: &Registry) -> Option<String> {
    match onedoor_bus::verify_case(prefix, registry) {
        Ok(()) => None,
        Err(failure) => {
            metrics::counter!(crate::metrics::AUDIT_FAILURES).increment(1);
            tracing::error!(%failure, "case history fails verification");
            Some(format!("audit: {failure}"))
        }
    }
}

async fn write_rows(
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
