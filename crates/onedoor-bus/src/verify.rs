//! One verification for every reader of a case (adapter reads and writes, inbox deliveries,
//! the tracker, the audit): a stored message is believed only if it decodes, its subject names
//! the case, writer and receiver its payload names, its signature verifies under the writer's
//! key valid at the event's time, its `prev_hash` chains to the last *accepted* event, and the
//! case rules let its writer write it. Anything else is quarantined: skipped for the fold and
//! reported with its stream sequence and a typed reason, so one hostile or broken message never
//! makes the case unreadable.
//!
//! Unsigned events are quarantined whenever a registry is given, as is an event signed with a
//! key the registry does not list: `up` signs every event, so an unsigned one was not written
//! by an adapter. Without a registry (test set-ups that do not sign) signatures are not checked;
//! everything else is.

use bytes::Bytes;
use onedoor_case::{CaseId, CaseState, FoldError, Refusal, Registry, authorize_in_registry};

use crate::audit::{AuditProblem, verify_signature};
use crate::case_log::{StoredEvent, decode_stored};
use crate::snapshot::payload_digest;
use crate::subjects;

/// A message as read from the stream, before anything about it is believed.
#[derive(Debug, Clone)]
pub struct RawMessage {
    pub sequence: u64,
    pub subject: String,
    pub payload: Bytes,
}

/// Why a message was not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuarantineReason {
    #[error("undecodable: {0}")]
    Undecodable(String),
    #[error("subject {subject} does not match the payload's {expected}")]
    SubjectMismatch { subject: String, expected: String },
    #[error("signature: {0}")]
    Signature(AuditProblem),
    #[error("prev_hash does not chain to the last accepted event")]
    BrokenChain,
    #[error("not allowed: {0}")]
    Rules(String),
}

impl QuarantineReason {
    /// A short fixed label, for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            QuarantineReason::Undecodable(_) => "undecodable",
            QuarantineReason::SubjectMismatch { .. } => "subject_mismatch",
            QuarantineReason::Signature(_) => "bad_signature",
            QuarantineReason::BrokenChain => "broken_chain",
            QuarantineReason::Rules(_) => "rules",
        }
    }
}

/// One message of a case that was not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream sequence {sequence} ({subject}): {reason}")]
pub struct Quarantined {
    pub sequence: u64,
    pub subject: String,
    pub reason: QuarantineReason,
}

/// A case's messages, sorted into believed and quarantined.
#[derive(Debug, Clone, Default)]
pub struct Verified {
    pub accepted: Vec<StoredEvent>,
    pub quarantined: Vec<Quarantined>,
}

/// What the next message of one case must chain to and fold onto; advanced only by accepted
/// messages.
#[derive(Debug, Clone, Default)]
pub struct CaseVerifier {
    pub state: Option<CaseState>,
    pub last_hash: Option<[u8; 32]>,
}

impl CaseVerifier {
    /// Checks the next message of `case_id`; on success the verifier has moved past it.
    pub fn check(
        &mut self,
        case_id: CaseId,
        raw: RawMessage,
        registry: Option<&Registry>,
    ) -> Result<StoredEvent, Quarantined> {
        let (sequence, subject) = (raw.sequence, raw.subject.clone());
        let quarantine = |reason| Quarantined {
            sequence,
            subject: subject.clone(),
            reason,
        };
        let stored = decode_stored(raw.sequence, raw.payload)
            .map_err(|e| quarantine(QuarantineReason::Undecodable(e.to_string())))?;
        self.check_decoded(case_id, &raw.subject, &stored, registry, None)
            .map_err(quarantine)?;
        Ok(stored)
    }

    /// [`CaseVerifier::check`] for a message already decoded (`decode_stored`) from `subject`,
    /// the same checks in the same order. `signature_ok` is a signature check the caller made
    /// ahead (many at once, see `audit::verify_checks`); anything but `Some(true)` is checked
    /// here, which also names the problem.
    pub fn check_decoded(
        &mut self,
        case_id: CaseId,
        subject: &str,
        stored: &StoredEvent,
        registry: Option<&Registry>,
        signature_ok: Option<bool>,
    ) -> Result<(), QuarantineReason> {
        check_subject(case_id, subject, stored)?;
        if let Some(registry) = registry
            && signature_ok != Some(true)
        {
            verify_signature(stored, registry).map_err(QuarantineReason::Signature)?;
        }
        let expected_prev = self.last_hash.map(|h| h.to_vec()).unwrap_or_default();
        if stored.wire.prev_hash != expected_prev {
            return Err(QuarantineReason::BrokenChain);
        }
        self.advance_state(stored, registry)?;
        self.last_hash = Some(payload_digest(&stored.payload));
        Ok(())
    }

    /// Folds the event in; a refused one leaves the state as it was.
    fn advance_state(
        &mut self,
        stored: &StoredEvent,
        registry: Option<&Registry>,
    ) -> Result<(), QuarantineReason> {
        let rules = |e: FoldError| QuarantineReason::Rules(e.to_string());
        // Every check before the fold: a refused event must leave the state as it was.
        if let Some(registry) = registry {
            authorize_in_registry(self.state.as_ref(), &stored.event, registry)
                .map_err(|r: Refusal| QuarantineReason::Rules(r.to_string()))?;
        }
        CaseState::apply_in_place(&mut self.state, &stored.event).map_err(rules)
    }
}

/// The subject a writer published on must be the one its payload implies: the broker only
/// lets an agency publish as itself, so this is what ties the payload's `from_agency` to the
/// credentials that wrote it.
fn check_subject(
    case_id: CaseId,
    subject: &str,
    stored: &StoredEvent,
) -> Result<(), QuarantineReason> {
    let expected = subjects::event_subject(&stored.event)
        .map_err(|e| QuarantineReason::Undecodable(e.to_string()))?;
    if stored.event.case_id != case_id || subject != expected {
        return Err(QuarantineReason::SubjectMismatch {
            subject: subject.to_owned(),
            expected,
        });
    }
    Ok(())
}

/// The case id a case subject (`onedoor.v1.case.<case>.<from>.<to>`) names; `None` for a
/// subject of another shape or a malformed id.
pub fn subject_case_id(subject: &str) -> Option<CaseId> {
    let rest = subject
        .strip_prefix(subjects::CASE_SUBJECT_PREFIX)?
        .strip_prefix('.')?;
    let mut tokens = rest.split('.');
    let case = tokens.next()?;
    (tokens.count() == 2).then_some(())?;
    CaseId::parse(case).ok()
}

/// Sorts one case's messages, in stream order, into believed and quarantined.
pub fn verify_history(
    case_id: CaseId,
    messages: impl IntoIterator<Item = RawMessage>,
    registry: Option<&Registry>,
) -> Verified {
    let mut verifier = CaseVerifier::default();
    let mut verified = Verified::default();
    for raw in messages {
        match verifier.check(case_id, raw, registry) {
            Ok(stored) => verified.accepted.push(stored),
            Err(quarantined) => verified.quarantined.push(quarantined),
        }
    }
    verified
}
