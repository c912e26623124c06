//! What the next message of a case is verified against: the case as stored (from the cache,
//! or read back for all of a batch's cases at once), moved on by each message accepted in the
//! transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use onedoor_bus::case_log::decode_stored;
use onedoor_bus::snapshot::payload_digest;
use onedoor_bus::verify::CaseVerifier;
use onedoor_bus::{QuarantineReason, RawMessage, StoredEvent};
use onedoor_case::{CaseId, CaseState, Registry};
use sqlx::{Any, Transaction};
use time::OffsetDateTime;

use super::cache::{CachedCase, CaseCache};
use super::write::{Applied, Incoming, cached, sequence_i64};
use super::{bulk, column};
use crate::error::TrackerError;

/// What the verification of one message decided.
pub(super) enum Verdict {
    /// Believed: stored at this version.
    Accepted { version: u64 },
    /// Not believed, for this reason.
    Quarantined(QuarantineReason),
    /// Left to the case's verification at the commit; the outcome is a placeholder.
    Settled(Applied),
    /// Not after the case's last stored message: a redelivery, or one that arrived late.
    Earlier,
}

/// One case as a transaction moves it.
pub(super) struct CaseEntry {
    /// The case as stored when the transaction first met it; `None` while it has no accepted
    /// event.
    pub base: Option<Arc<CachedCase>>,
    /// The state and chain the next message must fold onto and link to.
    pub verifier: CaseVerifier,
    pub trace_id: Option<String>,
    /// When the last accepted event happened: the case row's `updated_at`.
    pub updated_at: Option<OffsetDateTime>,
    /// The highest stream sequence of the case's messages met so far.
    pub last_seq: u64,
    /// Whether this transaction accepted an event of the case: its rows must be written.
    pub moved: bool,
    /// This transaction's messages of the case whose outcome a fresh verification at the
    /// commit would decide: (outcome index, stream sequence).
    pub messages: Vec<(usize, u64)>,
    /// Set when the case must be verified again at the commit from everything stored of it,
    /// with these messages, not stored yet.
    pub again: Option<Vec<RawMessage>>,
}

impl CaseEntry {
    fn new(base: Option<Arc<CachedCase>>, last_seq: u64) -> Self {
        let verifier = CaseVerifier {
            state: base.as_ref().map(|b| b.state.clone()),
            last_hash: base.as_ref().map(|b| b.last_hash),
        };
        CaseEntry {
            trace_id: base.as_ref().map(|b| b.projected.case.trace_id.clone()),
            updated_at: base.as_ref().map(|b| b.projected.case.updated_at),
            base,
            verifier,
            last_seq,
            moved: false,
            messages: Vec::new(),
            again: None,
        }
    }

    /// Verifies the next message of the case, at outcome `index`.
    pub fn judge(
        &mut self,
        case_id: CaseId,
        message: &Incoming<'_>,
        registry: Option<&Registry>,
        signature_ok: Option<bool>,
        index: usize,
    ) -> Verdict {
        let sequence = message.sequence();
        if sequence <= self.last_seq {
            return Verdict::Earlier;
        }
        self.last_seq = sequence;
        self.messages.push((index, sequence));
        if let Some(again) = &mut self.again {
            again.push(message.raw());
            return Verdict::Settled(Applied::Duplicate);
        }
        let (subject, stored) = match message {
            Incoming::Event { subject, stored } => (*subject, *stored),
            Incoming::Undecodable { why, .. } => {
                return Verdict::Quarantined(QuarantineReason::Undecodable((*why).to_owned()));
            }
        };
        match self
            .verifier
            .check_decoded(case_id, subject, stored, registry, signature_ok)
        {
            Ok(()) => {
                self.moved = true;
                if self.trace_id.is_none() {
                    self.trace_id = Some(stored.envelope.trace_id.clone());
                }
                self.updated_at = Some(stored.event.occurred_at);
                Verdict::Accepted {
                    version: stored.event.version,
                }
            }
            Err(reason) => Verdict::Quarantined(reason),
        }
    }

    /// A message at or below the case's last stream sequence: nothing when it is stored (or
    /// waiting to be) already; otherwise it arrived late, and the case is verified again at
    /// the commit.
    pub async fn earlier(
        &mut self,
        tx: &mut Transaction<'static, Any>,
        case_id: &str,
        message: &Incoming<'_>,
        index: usize,
    ) -> Result<Applied, TrackerError> {
        let waiting = self.again.iter().flatten();
        if waiting
            .clone()
            .any(|raw| raw.sequence == message.sequence())
        {
            return Ok(Applied::Duplicate);
        }
        let sequence = sequence_i64(message.sequence())?;
        let stored: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM events WHERE case_id = $1 AND stream_seq = $2 \
             UNION ALL SELECT 1 FROM rejected_messages WHERE stream_seq = $3",
        )
        .bind(case_id)
        .bind(sequence)
        .bind(sequence)
        .fetch_optional(&mut **tx)
        .await
        .map_err(TrackerError::db("looking up a message"))?;
        if stored.is_some() {
            return Ok(Applied::Duplicate);
        }
        tracing::info!(
            case_id,
            stream_sequence = sequence,
            "a message arrived after a later one of its case; verifying the case again"
        );
        self.verify_again(message.raw());
        self.messages.push((index, message.sequence()));
        Ok(Applied::Duplicate)
    }

    /// Sends the case through a fresh verification at the commit, with `raw` among its
    /// messages.
    pub fn verify_again(&mut self, raw: RawMessage) {
        self.again.get_or_insert_with(Vec::new).push(raw);
    }
}

/// Makes sure `cases` holds every case `messages`' subjects name: from the cache, else read
/// back (all the missing cases in two statements, which find nothing for new cases).
pub(super) async fn load_cases(
    tx: &mut Transaction<'static, Any>,
    cache: &CaseCache,
    cases: &mut HashMap<String, CaseEntry>,
    messages: &[Incoming<'_>],
) -> Result<(), TrackerError> {
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    for message in messages {
        let Some(case_id) = onedoor_bus::subject_case_id(message.subject()) else {
            continue;
        };
        let key = case_id.to_string();
        if cases.contains_key(&key) || !seen.insert(key.clone()) {
            continue;
        }
        match cache.get(&key) {
            Some(entry) => {
                let last_seq = entry.last_seq;
                cases.insert(key, CaseEntry::new(Some(entry), last_seq));
            }
            None => missing.push(key),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let mut events: HashMap<String, Vec<StoredEvent>> = HashMap::new();
    for row in bulk::events_of_cases(tx, &missing).await? {
        let case_id: String = column(&row, "case_id")?;
        let sequence: i64 = column(&row, "stream_seq")?;
        let payload: Vec<u8> = column(&row, "payload")?;
        // Stored payloads were decoded before they were stored; failing now means the
        // database was changed under us.
        let stored = decode_stored(sequence.unsigned_abs(), payload.into()).map_err(|e| {
            TrackerError::Corrupt {
                what: format!("an event of case {case_id}"),
                why: e.to_string(),
            }
        })?;
        events.entry(case_id).or_default().push(stored);
    }
    let rejected = bulk::last_rejected_of_cases(tx, &missing).await?;
    for key in missing {
        let history = events.remove(&key).unwrap_or_default();
        let last_rejected = rejected.get(&key).copied().unwrap_or(0);
        cases.insert(key, stored_case(history, last_rejected));
    }
    Ok(())
}

/// A case read back: its stored events (by version) folded. They were verified on the way in;
/// a history that does not fold (stored before the tracker verified) is verified again.
fn stored_case(history: Vec<StoredEvent>, last_rejected: u64) -> CaseEntry {
    let last_seq = history
        .iter()
        .map(|s| s.sequence)
        .max()
        .unwrap_or(0)
        .max(last_rejected);
    let Some(last) = history.last() else {
        return CaseEntry::new(None, last_seq);
    };
    let gapless = history
        .iter()
        .enumerate()
        .all(|(i, s)| s.event.version == i as u64 + 1);
    let folded = CaseState::fold(history.iter().map(|s| &s.event));
    match folded {
        Ok(Some(state)) if gapless => {
            let trace_id = history[0].envelope.trace_id.clone();
            let entry = cached(
                state,
                &trace_id,
                last.event.occurred_at,
                payload_digest(&last.payload),
                last_seq,
            );
            CaseEntry::new(Some(Arc::new(entry)), last_seq)
        }
        _ => {
            let mut entry = CaseEntry::new(None, last_seq);
            entry.again = Some(Vec::new());
            entry
        }
    }
}
