//! Idempotency without a lookup table, with ids nobody else can predict: ids are an HMAC of
//! the caller's key under a secret only the writing agency holds, so a retried request maps to
//! the same event id on any of that agency's adapters, and the case's own log says whether it
//! was written.
//!
//! - OpenCase: case id = HMAC(secret, agency, key); event id = HMAC(secret, agency, key, case).
//! - other writes: event id = HMAC(secret, agency, key, case id).
//!
//! The secret is derived from the agency's signing key ([`IdKey::from_signer`]), which every
//! adapter of the agency holds and no other agency does. Without the secret another agency
//! cannot know the event id (JetStream's `Nats-Msg-Id`) a write will use, so it cannot publish
//! first under that id to make the write vanish behind a dedupe. The gateway still compares the
//! stored event with the request on every dedupe, which catches a collision however it came.
//!
//! Why not time-ordered ULIDs: a retry cannot know when the first attempt ran, so a time prefix
//! would have to come from the caller or from a lookup, and a retry on another adapter would get
//! a new id. All 128 bits come from the HMAC instead; the ids are valid ULIDs that do not sort
//! by time, and nothing in onedoor orders by id (timelines use `case_version`).
//!
//! Because the event id includes the case id, a key reused on another case is a new request
//! (not a clash of event ids), and the memory lasts as long as the case does, with no expiring
//! table and no extra round trip. A new signing key gives new ids: a retry sent across a key
//! rotation is written as a second request.

use std::fmt;

use hmac::{KeyInit as _, Mac as _};
use onedoor_bus::Signer;
use onedoor_case::{Action, AgencyCode, CaseEvent, CaseId, Command, EventBody, EventId};
use ulid::Ulid;

type HmacSha256 = hmac::Hmac<sha2_hmac::Sha256>;

/// What [`Signer::derived_secret`] is asked for; changing it changes every id.
const PURPOSE: &str = "onedoor-idempotency-v2";

/// The secret that keys one agency's ids, ready to MAC with.
#[derive(Clone)]
pub struct IdKey(HmacSha256);

impl fmt::Debug for IdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdKey(****)")
    }
}

impl IdKey {
    /// The agency's id secret, derived from its signing key.
    pub fn from_signer(signer: &Signer) -> Self {
        Self::new(signer.derived_secret(PURPOSE))
    }

    /// For an adapter without a signing key (development only): ids keyed by the agency code
    /// alone, which anyone can compute. The compare on dedupe still refuses a hijack.
    pub fn unkeyed(agency: &AgencyCode) -> Self {
        let mut secret = [0u8; 32];
        let code = agency.as_str().as_bytes();
        let len = code.len().min(secret.len());
        secret[..len].copy_from_slice(&code[..len]);
        Self::new(secret)
    }

    fn new(secret: [u8; 32]) -> Self {
        // HMAC pads a short key with zeros to the hash's block size; padding it here gives the
        // same MAC through the infallible constructor.
        let mut block = hmac::digest::Key::<HmacSha256>::default();
        block[..secret.len()].copy_from_slice(&secret);
        IdKey(HmacSha256::new(&block))
    }

    fn derive(&self, parts: &[&str]) -> Ulid {
        let mut mac = self.0.clone();
        for part in parts {
            // Length-prefixed, so ("ab","c") and ("a","bc") differ.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Ulid::from_bytes(bytes)
    }

    pub fn case_id_for_open(&self, agency: &AgencyCode, key: &str) -> CaseId {
        CaseId::from_ulid(self.derive(&["case", agency.as_str(), key]))
    }

    pub fn event_id(&self, agency: &AgencyCode, key: &str, case_id: CaseId) -> EventId {
        EventId::from_ulid(self.derive(&["event", agency.as_str(), key, &case_id.to_string()]))
    }
}

/// Does the stored event record this very request? Compares what the caller chose (kind,
/// receiver, texts, documents, actor), not what the adapter computed (time, due time).
pub fn same_request(stored: &CaseEvent, command: &Command) -> bool {
    if stored.from != command.agency || stored.actor != command.actor {
        return false;
    }
    match (&stored.body, &command.action) {
        (
            EventBody::Opened {
                service,
                citizen_ref,
                summary,
                documents,
            },
            Action::Open {
                service: s,
                citizen_ref: c,
                summary: m,
                documents: d,
            },
        ) => service == s && citizen_ref == c && summary == m && documents == d,
        (
            EventBody::HandedOff {
                instructions,
                documents,
                ..
            },
            Action::HandOff {
                to,
                instructions: i,
                documents: d,
                ..
            },
        ) => stored.to.as_ref() == Some(to) && instructions == i && documents == d,
        (EventBody::Accepted, Action::Accept) => true,
        (
            EventBody::Completed {
                outcome,
                note,
                documents,
            },
            Action::Complete {
                outcome: o,
                note: n,
                documents: d,
            },
        ) => outcome == o && note == n && documents == d,
        (EventBody::SentBack { reason }, Action::SendBack { reason: r }) => reason == r,
        (EventBody::InfoRequested { question }, Action::RequestInfo { question: q }) => {
            question == q
        }
        (
            EventBody::Resolved { resolution, note },
            Action::Resolve {
                resolution: r,
                note: n,
            },
        ) => resolution == r && note == n,
        (EventBody::TaskClosed { .. }, Action::NotifyClosed { to }) => {
            stored.to.as_ref() == Some(to)
        }
        (EventBody::Transferred { .. }, Action::Transfer) => true,
        (EventBody::TakenBack { reason }, Action::TakeBack { holder, reason: r }) => {
            stored.to.as_ref() == Some(holder) && reason == r
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> AgencyCode {
        AgencyCode::parse(text).expect("valid")
    }

    fn key(seed: u8) -> IdKey {
        IdKey::from_signer(&Signer::from_seed("test-key", [seed; 32]))
    }

    #[test]
    fn the_same_key_gives_the_same_ids_and_other_inputs_do_not() {
        let front = code("ODSC-VTE-SAYSETTHA");
        let ids = key(1);
        let case = ids.case_id_for_open(&front, "k1");
        assert_eq!(case, ids.case_id_for_open(&front, "k1"));
        assert_ne!(case, ids.case_id_for_open(&front, "k2"));
        assert_ne!(case, ids.case_id_for_open(&code("ODSC-CPS-PAKSE"), "k1"));
        let event = ids.event_id(&front, "k1", case);
        assert_eq!(event, ids.event_id(&front, "k1", case));
        assert_ne!(event, ids.event_id(&front, "k1", CaseId::generate()));
    }

    #[test]
    fn every_adapter_with_the_agency_key_agrees_and_no_other_key_does() {
        let mof = code("MOF");
        let case = CaseId::generate();
        let one = Signer::from_seed("MOF-2026-01", [7; 32]);
        let other_adapter = Signer::from_seed("MOF-2026-01", [7; 32]);
        let expected = IdKey::from_signer(&one).event_id(&mof, "k", case);
        assert_eq!(
            IdKey::from_signer(&other_adapter).event_id(&mof, "k", case),
            expected
        );
        // Another agency's key and the unkeyed fallback both miss.
        assert_ne!(key(8).event_id(&mof, "k", case), expected);
        assert_ne!(IdKey::unkeyed(&mof).event_id(&mof, "k", case), expected);
    }

    #[test]
    fn derived_ids_print_as_canonical_ulids() {
        let id = key(2).case_id_for_open(&code("MOF"), "x").to_string();
        assert_eq!(CaseId::parse(&id).map(|c| c.to_string()), Ok(id));
    }

    #[test]
    fn the_padded_key_gives_plain_hmac_sha256() {
        // RFC 4231, test case 2 (key "Jefe"), through the same padding as `IdKey::new`.
        let mut secret = [0u8; 32];
        secret[..4].copy_from_slice(b"Jefe");
        let mut mac = IdKey::new(secret).0;
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
