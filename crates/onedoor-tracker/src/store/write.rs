//! Storing messages and their cases' rows.
//!
//! Every message is verified before anything of it is stored, by the one verification every
//! reader of a case uses (`onedoor_bus::verify`: decoding, subject against payload, signature,
//! hash chain to the last *accepted* event, the case rules). Only accepted events go into
//! `events`, each at its version; a message that fails goes into `rejected_messages` under the
//! case its *subject* names, with its reason and payload. So a message published on a case's
//! subject, however hostile, never takes a version the valid event after it needs, and the
//! case's view goes on from its last good event.
//!
//! - Applying a message twice changes nothing: its stream sequence is stored already.
//! - Messages usually arrive in stream order. One that arrives after a later message of its
//!   case (a redelivery after a restart) may change what that later one verifies as; the case
//!   is then verified again from everything stored of it (`reverify`), in stream order, as
//!   any reader of the stream would. The same happens when another writer moved the case.
//! - The views are what a rebuild gives.
//!
//! A batch of messages shares one transaction: its accepted events go in with one multi-row
//! insert, each case is verified onto the state folded so far (from the cache, or read back
//! for a batch's cases at once), and the rows of the cases it moved are written once per case
//! at the commit (`rows`).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use onedoor_bus::audit::{SignatureCheck, verify_checks};
use onedoor_bus::{QuarantineReason, RawMessage, StoredEvent};
use onedoor_case::{LiveRegistry, Registry};
use sqlx::{Any, Connection as _, Transaction};

use super::cache::CachedCase;
use super::rejected::{Rejection, record_rejected};
use super::verifying::{CaseEntry, Verdict};
use super::{Store, bulk, rows, to_i64};
use crate::error::TrackerError;
use crate::view::Projected;

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
    /// The message was stored already: nothing changed.
    Duplicate,
    /// The message was not believed and is listed in `rejected_messages`, under `case_id`
    /// when its subject names a case.
    Rejected {
        case_id: Option<String>,
        /// `QuarantineReason::label`: undecodable, subject_mismatch, bad_signature,
        /// broken_chain or rules.
        label: &'static str,
        reason: String,
    },
}

/// One stream message for [`Store::apply_batch`], with the subject it was published on: the
/// subject, never the payload, says which case it belongs to.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    /// A message that decodes as a case event.
    Event {
        subject: &'a str,
        stored: &'a StoredEvent,
    },
    /// A message that does not decode.
    Undecodable {
        sequence: u64,
        subject: &'a str,
        payload: &'a Bytes,
        why: &'a str,
    },
}

impl<'a> Incoming<'a> {
    pub fn sequence(&self) -> u64 {
        match self {
            Incoming::Event { stored, .. } => stored.sequence,
            Incoming::Undecodable { sequence, .. } => *sequence,
        }
    }

    pub fn subject(&self) -> &'a str {
        match self {
            Incoming::Event { subject, .. } | Incoming::Undecodable { subject, .. } => subject,
        }
    }

    /// The message as it came from the stream.
    pub(super) fn raw(&self) -> RawMessage {
        let payload = match self {
            Incoming::Event { stored, .. } => stored.payload.clone(),
            Incoming::Undecodable { payload, .. } => (*payload).clone(),
        };
        RawMessage {
            sequence: self.sequence(),
            subject: self.subject().to_owned(),
            payload,
        }
    }
}

impl Store {
    /// Stores one decoded event from stream sequence `stored.sequence`, as if published on the
    /// subject its payload names (for callers that made the event themselves).
    pub async fn apply(&self, stored: &StoredEvent) -> Result<Applied, TrackerError> {
        let subject = onedoor_bus::subjects::event_subject(&stored.event)
            .map_err(|e| TrackerError::invalid("event", e.to_string()))?;
        let mut applied = self
            .apply_batch(&[Incoming::Event {
                subject: &subject,
                stored,
            }])
            .await?;
        applied.pop().ok_or_else(|| TrackerError::Corrupt {
            what: "a batch of one".into(),
            why: "no outcome".into(),
        })
    }

    /// Stores messages in order, in one transaction: all of them or (on an error) none. Returns
    /// what each one did, in the same order: the outcome of storing them one by one.
    pub async fn apply_batch(
        &self,
        messages: &[Incoming<'_>],
    ) -> Result<Vec<Applied>, TrackerError> {
        let checked = self.check(messages).await;
        self.apply_checked(messages, checked).await
    }

    /// Checks the signatures of `messages`' events ahead of [`Store::apply_checked`], when
    /// this store checks signatures: a check costs more than storing the event and needs no
    /// database, so a caller can check one batch while the previous one is being written.
    pub async fn check(&self, messages: &[Incoming<'_>]) -> Checked {
        match &self.audit {
            Some(live) => {
                let (generation, registry) = live.current_with_generation();
                Checked(check_signatures(messages, &registry).await, generation)
            }
            None => Checked(vec![None; messages.len()], 0),
        }
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
            cases: HashMap::new(),
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
            rows::write_rows(&mut tx, projected).await?;
        }
        rows::commit(tx).await
    }
}

/// The outcome of [`Store::check`]: per message, whether its event's signature verified
/// (`None`: not checked ahead, the verification checks it inline if needed).
#[derive(Debug, Clone, Default)]
pub struct Checked(Vec<Option<bool>>, u64);

/// Batches of messages stored in one transaction, as [`Store::apply_checked`] stores one: all
/// of them or (on an error, or when dropped uncommitted) none. The rows of the cases the
/// batches move are written once, at [`Writing::commit`], however many of the batches moved
/// each case: a rebuild that keeps a transaction open over many batches writes most cases once
/// instead of once per batch they appear in.
pub struct Writing {
    store: Store,
    tx: Transaction<'static, Any>,
    /// Every case this transaction met, by case id.
    cases: HashMap<String, CaseEntry>,
    /// What each message stored so far did, in order; a case verified again at the commit
    /// may still change its messages' outcomes.
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

    /// Verifies and stores `messages` in order; `checked` comes from [`Store::check`] on the
    /// same messages.
    pub async fn apply(
        &mut self,
        messages: &[Incoming<'_>],
        checked: Checked,
    ) -> Result<(), TrackerError> {
        let mut signatures = checked.0;
        let (generation, registry) = match &self.store.audit {
            Some(live) => {
                let (generation, registry) = live.current_with_generation();
                (generation, Some(registry))
            }
            None => (0, None),
        };
        // Checks that do not line up with the messages, or were made under a registry since
        // replaced, are not used; they are made inline.
        if signatures.len() != messages.len() || checked.1 != generation {
            signatures = vec![None; messages.len()];
        }
        super::verifying::load_cases(&mut self.tx, &self.store.cache, &mut self.cases, messages)
            .await?;
        // Accepted events not inserted yet: they go in together.
        let mut accepted: Vec<(usize, &StoredEvent, &str)> = Vec::new();
        self.outcomes.reserve(messages.len());
        for (message, signature_ok) in messages.iter().zip(signatures) {
            let index = self.outcomes.len();
            let Some(case_id) = onedoor_bus::subject_case_id(message.subject()) else {
                let outcome = self.not_a_case(message).await?;
                self.outcomes.push(outcome);
                continue;
            };
            let key = case_id.to_string();
            let Some(entry) = self.cases.get_mut(&key) else {
                return Err(TrackerError::Corrupt {
                    what: format!("case {key}"),
                    why: "not loaded before its messages".into(),
                });
            };
            let verdict = entry.judge(case_id, message, registry.as_deref(), signature_ok, index);
            let outcome = match verdict {
                Verdict::Accepted { version } => {
                    if let Incoming::Event { stored, subject } = message {
                        accepted.push((index, stored, subject));
                    }
                    Applied::Projected {
                        case_id: key,
                        version,
                        problem: None,
                    }
                }
                Verdict::Quarantined(reason) => {
                    let rejection = Rejection::of(message, Some(&key), &reason);
                    record_rejected(&mut self.tx, &rejection).await?;
                    rejection.applied()
                }
                Verdict::Settled(outcome) => outcome,
                Verdict::Earlier => {
                    // Whatever is stored must be in the database to tell a redelivery from
                    // a late arrival.
                    self.insert(&mut accepted).await?;
                    match self.cases.get_mut(&key) {
                        Some(entry) => entry.earlier(&mut self.tx, &key, message, index).await?,
                        None => Applied::Duplicate,
                    }
                }
            };
            self.outcomes.push(outcome);
        }
        self.insert(&mut accepted).await
    }

    /// A message whose subject names no case: nothing of it can be believed.
    async fn not_a_case(&mut self, message: &Incoming<'_>) -> Result<Applied, TrackerError> {
        let reason = QuarantineReason::SubjectMismatch {
            subject: message.subject().to_owned(),
            expected: "a case subject (onedoor.v1.case.<case_id>.<from>.<to>)".to_owned(),
        };
        let rejection = Rejection::of(message, None, &reason);
        record_rejected(&mut self.tx, &rejection).await?;
        Ok(rejection.applied())
    }

    /// Inserts the accepted events; one another writer stored first sends its case through a
    /// fresh verification at the commit.
    async fn insert(
        &mut self,
        accepted: &mut Vec<(usize, &StoredEvent, &str)>,
    ) -> Result<(), TrackerError> {
        if accepted.is_empty() {
            return Ok(());
        }
        let events: Vec<&StoredEvent> = accepted.iter().map(|(_, stored, _)| *stored).collect();
        let inserted = bulk::insert_events(&mut self.tx, &events).await?;
        for (index, stored, subject) in accepted.drain(..) {
            let event_id = stored.event.event_id.to_string();
            if inserted.contains(&event_id) {
                continue;
            }
            let key = stored.event.case_id.to_string();
            let Some(entry) = self.cases.get_mut(&key) else {
                continue;
            };
            // Stored by another writer behind this one's cache: the case is verified again
            // from what is stored, and this message changed nothing.
            let holder: Option<i64> =
                sqlx::query_scalar("SELECT stream_seq FROM events WHERE event_id = $1")
                    .bind(&event_id)
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err(TrackerError::db("looking up an event"))?;
            if holder == Some(sequence_i64(stored.sequence)?) {
                entry.messages.retain(|(i, _)| *i != index);
                if let Some(outcome) = self.outcomes.get_mut(index) {
                    *outcome = Applied::Duplicate;
                }
                entry.again.get_or_insert_with(Vec::new);
            } else {
                entry.verify_again(Incoming::Event { subject, stored }.raw());
            }
        }
        Ok(())
    }

    /// Writes the moved cases' rows and commits; returns what each message stored did.
    pub async fn commit(self) -> Result<Vec<Applied>, TrackerError> {
        let Writing {
            store,
            mut tx,
            cases,
            mut outcomes,
        } = self;
        let registry = store.audit.as_ref().map(LiveRegistry::current);
        let changes = rows::write_moved(&mut tx, cases, registry.as_deref(), &mut outcomes).await?;
        rows::commit(tx).await?;
        store.cache.merge(changes);
        Ok(outcomes)
    }
}

/// Below this many events, signatures are checked inline as each event is verified.
const PARALLEL_CHECK_MIN: usize = 16;

/// Checks the events' signatures before the transaction, on two blocking threads: a check
/// costs more than storing the event and needs no database. `None` for a message that is not
/// an event, or when the batch is small (then the verification checks inline).
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
            Incoming::Event { stored, .. } => Some((i, SignatureCheck::of(stored, registry))),
            Incoming::Undecodable { .. } => None,
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

/// The cached state of a case whose rows were just written from `state`.
pub(super) fn cached(
    state: onedoor_case::CaseState,
    trace_id: &str,
    updated_at: time::OffsetDateTime,
    last_hash: [u8; 32],
    last_seq: u64,
) -> CachedCase {
    let projected = Projected::from_state(&state, trace_id, updated_at);
    CachedCase {
        state,
        projected,
        last_hash,
        last_seq,
    }
}

pub(super) fn sequence_i64(sequence: u64) -> Result<i64, TrackerError> {
    to_i64(sequence, "stream sequence")
}
