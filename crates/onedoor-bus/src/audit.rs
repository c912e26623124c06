//! Tamper evidence: every event is signed by its agency's Ed25519 key over its own bytes, which
//! include `prev_hash`, the SHA-256 of the case's previous stored event. A case's history is
//! therefore a hash chain: an altered, forged, removed or reordered event is detected.
//!
//! What the chain cannot show: the *last* events of a case being cut off (nothing follows them
//! to point back). The stream denies deletes and purges, and the tracker remembers the highest
//! version it saw, which together cover that gap.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use bytes::Bytes;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use onedoor_case::{CaseState, EventBody, Registry};
use onedoor_proto::v1;

use crate::case_log::StoredEvent;
use crate::write::payload_hash;

/// An agency's private signing key, with the id the registry lists its public half under.
#[derive(Clone)]
pub struct Signer {
    key_id: String,
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({}, ****)", self.key_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read signing key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("signing key file {path} must hold the base64 of a 32-byte Ed25519 seed")]
    Malformed { path: String },
}

impl Signer {
    pub fn from_seed(key_id: impl Into<String>, seed: [u8; 32]) -> Self {
        Signer {
            key_id: key_id.into(),
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// A new random key (development set-ups and tests).
    pub fn generate(key_id: impl Into<String>) -> Self {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        Self::from_seed(key_id, seed)
    }

    /// Reads a key file: one line, the base64 of the 32-byte seed.
    pub fn load(key_id: impl Into<String>, path: &Path) -> Result<Self, KeyFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
            path: shown.clone(),
            source,
        })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| KeyFileError::Malformed {
                path: shown.clone(),
            })?;
        let seed = <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| KeyFileError::Malformed { path: shown })?;
        Ok(Self::from_seed(key_id, seed))
    }

    /// The key file text for [`Signer::load`]; the caller writes it with owner-only permissions.
    pub fn seed_file_text(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key.to_bytes()) + "\n"
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs `message`: a registry publication's bytes (`crate::registry_feed`), whose
    /// domain prefix no case event's signed bytes can start with.
    pub(crate) fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    pub fn public_key_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.public_key())
    }

    /// A secret derived from the signing seed for one `purpose` (e.g. keying event ids), so
    /// that everything holding this agency's key agrees on it and nobody else can compute it;
    /// the seed itself never leaves the signer.
    pub fn derived_secret(&self, purpose: &str) -> [u8; 32] {
        use sha2::{Digest as _, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(b"onedoor-derived-secret-v1");
        hasher.update((purpose.len() as u64).to_be_bytes());
        hasher.update(purpose.as_bytes());
        hasher.update(self.key.to_bytes());
        hasher.finalize().into()
    }

    /// Did this key sign `event` as it stands (the same key id and a valid signature)?
    pub fn signed(&self, event: &v1::CaseEvent) -> bool {
        event.key_id == self.key_id
            && Signature::from_slice(&event.signature).is_ok_and(|signature| {
                self.key
                    .verifying_key()
                    .verify(&event.signing_bytes(), &signature)
                    .is_ok()
            })
    }

    /// Sets `key_id` and `signature` on a wire event; everything else must already be final.
    pub fn sign(&self, event: &mut v1::CaseEvent) {
        event.key_id = self.key_id.clone();
        event.signature.clear();
        event.signature = self.key.sign(&event.signing_bytes()).to_bytes().to_vec();
    }
}

/// The bytes a stored event's signature covers: the payload without its trailing `signature`
/// field (field 50, 64 bytes: tag `92 03`, length `40`). Cutting the stored bytes, rather than
/// re-encoding, keeps fields this version does not know inside what is verified.
fn signed_bytes(stored: &StoredEvent) -> Bytes {
    let payload = &stored.payload;
    let signature = &stored.wire.signature;
    if signature.len() == 64 && payload.len() >= 67 {
        let cut = payload.len() - 67;
        let tail = &payload[cut..];
        if tail[..3] == [0x92, 0x03, 0x40] && &tail[3..] == signature.as_slice() {
            // A view of the stored bytes: nothing is copied.
            return payload.slice(..cut);
        }
    }
    Bytes::from(stored.wire.signing_bytes())
}

/// How problems name the signer of a `task_transferred` event.
const OPERATOR: &str = "the operator";

/// What is wrong with one event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditProblem {
    #[error("the event is not signed")]
    NotSigned,
    #[error("{agency} has no key {key_id:?} in the registry")]
    UnknownKey { agency: String, key_id: String },
    #[error("key {key_id:?} of {agency} was not valid on {date}")]
    KeyNotValid {
        agency: String,
        key_id: String,
        date: String,
    },
    #[error("the signature does not match the event's bytes (altered or forged)")]
    BadSignature,
    #[error(
        "prev_hash does not match the previous event (an event was altered, removed or reordered)"
    )]
    BrokenChain,
    #[error("the first event of a case must have an empty prev_hash")]
    FirstHasPrevHash,
    #[error("the history does not follow the case rules: {0}")]
    Fold(String),
}

/// The first bad event of a case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "case {case_id}: event {event_id} (version {version}, stream sequence {sequence}): {problem}"
)]
pub struct AuditFailure {
    pub case_id: String,
    pub event_id: String,
    pub version: u64,
    pub sequence: u64,
    pub problem: AuditProblem,
}

/// Checks one event against the registry's keys.
pub fn verify_signature(stored: &StoredEvent, registry: &Registry) -> Result<(), AuditProblem> {
    let (verifying, signature) = signature_parts(stored, registry)?;
    verifying
        .verify(&signed_bytes(stored), &signature)
        .map_err(|_| AuditProblem::BadSignature)
}

/// Signatures checked together at most; a failing batch is checked again one by one. Past
/// about 95 signatures (190 points) the batch's multiplication switches to a method whose cost
/// per point falls as the batch grows: per signature, one at a time 63-73 µs, batches of 64
/// 25-30 µs, of 128 28 µs, of 512 20-24 µs, of 1024 22 µs (8,192 signatures under 18 keys,
/// release build, this 2-core machine). One bad signature costs its batch about 35 ms of
/// single checks.
const BATCH: usize = 512;

/// Whether each event's signature verifies, as [`verify_signature`] says, for many events at
/// once: the signatures are checked in batches (one multi-scalar multiplication for the
/// batch instead of one check each), and only a batch that fails is checked one by one to
/// find which event it was.
///
/// A batch accepts every signature the one-by-one check accepts. It may also accept a
/// signature crafted by the key's own holder to pass the batch equation and not the single
/// one; nobody without the private key can make either.
pub fn verify_signatures(events: &[&StoredEvent], registry: &Registry) -> Vec<bool> {
    let checks: Vec<Option<SignatureCheck>> = events
        .iter()
        .map(|stored| SignatureCheck::of(stored, registry))
        .collect();
    verify_checks(&checks)
}

/// What checking one event's signature needs, taken from the event (the bytes are a view of
/// its payload), so the check can run on another thread without a copy of the event.
#[derive(Debug, Clone)]
pub struct SignatureCheck {
    key: VerifyingKey,
    signature: Signature,
    message: Bytes,
}

impl SignatureCheck {
    /// `None` when the event cannot verify at all (not signed, unknown or expired key,
    /// malformed signature): [`verify_signature`] says why.
    pub fn of(stored: &StoredEvent, registry: &Registry) -> Option<SignatureCheck> {
        let (key, signature) = signature_parts(stored, registry).ok()?;
        Some(SignatureCheck {
            key,
            signature,
            message: signed_bytes(stored),
        })
    }
}

/// [`verify_signatures`] on checks made by [`SignatureCheck::of`]; `None` fails.
pub fn verify_checks(checks: &[Option<SignatureCheck>]) -> Vec<bool> {
    let mut verified = vec![false; checks.len()];
    let ready: Vec<(usize, &SignatureCheck)> = checks
        .iter()
        .enumerate()
        .filter_map(|(index, check)| check.as_ref().map(|check| (index, check)))
        .collect();
    for chunk in ready.chunks(BATCH) {
        let messages: Vec<&[u8]> = chunk.iter().map(|(_, c)| c.message.as_ref()).collect();
        let signatures: Vec<Signature> = chunk.iter().map(|(_, c)| c.signature).collect();
        let keys: Vec<VerifyingKey> = chunk.iter().map(|(_, c)| c.key).collect();
        let all_good = ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok();
        for (index, check) in chunk {
            verified[*index] =
                all_good || check.key.verify(&check.message, &check.signature).is_ok();
        }
    }
    verified
}

/// The key an event must verify under and its signature, or why there is none.
fn signature_parts(
    stored: &StoredEvent,
    registry: &Registry,
) -> Result<(VerifyingKey, Signature), AuditProblem> {
    let wire = &stored.wire;
    if wire.signature.is_empty() || wire.key_id.is_empty() {
        return Err(AuditProblem::NotSigned);
    }
    // A transfer is the operator's act on the old holder's subject: only an operator key
    // signs it, and an operator key signs nothing else.
    let (agency, key) = if matches!(stored.event.body, EventBody::Transferred { .. }) {
        (OPERATOR.to_owned(), registry.operator_key(&wire.key_id))
    } else {
        let from = &stored.event.from;
        (from.to_string(), registry.key(from, &wire.key_id))
    };
    let key = key.ok_or_else(|| AuditProblem::UnknownKey {
        agency: agency.clone(),
        key_id: wire.key_id.clone(),
    })?;
    let date = stored.event.occurred_at.date();
    if !key.valid_on(date) {
        return Err(AuditProblem::KeyNotValid {
            agency,
            key_id: key.id.clone(),
            date: date.to_string(),
        });
    }
    let verifying = verifying_key(&key.public_key).ok_or(AuditProblem::BadSignature)?;
    let signature =
        Signature::from_slice(&wire.signature).map_err(|_| AuditProblem::BadSignature)?;
    Ok((verifying, signature))
}

/// Keys this thread has decoded, at most this many. A registry holds a few keys per agency.
const DECODED_KEYS: usize = 256;

thread_local! {
    /// Decoding a public key (decompressing its curve point) cost nearly as much as the
    /// signature check itself, and a projection checks events of the same few dozen keys
    /// over and over. Per thread, so the threads checking a batch never wait on each other.
    static KEYS: std::cell::RefCell<std::collections::HashMap<[u8; 32], VerifyingKey>> =
        std::cell::RefCell::default();
}

/// The decoded key for `bytes`; `None` when they are not a valid Ed25519 public key.
fn verifying_key(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    KEYS.with_borrow_mut(|keys| {
        if let Some(key) = keys.get(bytes) {
            return Some(*key);
        }
        let key = VerifyingKey::from_bytes(bytes).ok()?;
        if keys.len() >= DECODED_KEYS {
            keys.clear();
        }
        keys.insert(*bytes, key);
        Some(key)
    })
}

/// Verifies a whole case: every signature, the hash chain, and the case rules' fold (gapless
/// versions, one case). Returns the first bad event.
pub fn verify_case(events: &[StoredEvent], registry: &Registry) -> Result<(), Box<AuditFailure>> {
    let mut state = None;
    for (index, stored) in events.iter().enumerate() {
        let fail = |problem| {
            Box::new(AuditFailure {
                case_id: stored.event.case_id.to_string(),
                event_id: stored.event.event_id.to_string(),
                version: stored.event.version,
                sequence: stored.sequence,
                problem,
            })
        };
        verify_signature(stored, registry).map_err(fail)?;
        match index.checked_sub(1).map(|i| &events[i]) {
            None if !stored.wire.prev_hash.is_empty() => {
                return Err(fail(AuditProblem::FirstHasPrevHash));
            }
            Some(previous) if stored.wire.prev_hash != payload_hash(&previous.payload) => {
                return Err(fail(AuditProblem::BrokenChain));
            }
            _ => {}
        }
        if let Some(before) = state.as_ref() {
            onedoor_case::authorize_in_registry(Some(before), &stored.event, registry)
                .map_err(|e| fail(AuditProblem::Fold(e.to_string())))?;
        }
        state = Some(
            CaseState::apply(state, &stored.event)
                .map_err(|e| fail(AuditProblem::Fold(e.to_string())))?,
        );
    }
    Ok(())
}
