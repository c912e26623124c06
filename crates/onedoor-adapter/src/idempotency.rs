//! Idempotency without a lookup table: ids are derived from the caller's key, so a retried
//! request maps to the same event id, and the case's own log says whether it was written.
//!
//! - OpenCase: case id = H(agency, key); event id = H(agency, key, case id).
//! - other writes: event id = H(agency, key, case id).
//!
//! Because the event id includes the case id, a key reused on another case is a new request
//! (not a clash of event ids), and the memory lasts as long as the case does, with no expiring
//! table and no extra round trip. The price: these ids are hashes, so unlike generated ULIDs they
//! do not sort by time; nothing in onedoor orders by id (timelines use `case_version`).

use onedoor_case::{Action, AgencyCode, CaseEvent, CaseId, Command, EventBody, EventId};
use sha2::{Digest as _, Sha256};
use ulid::Ulid;

fn derive(parts: &[&str]) -> Ulid {
    let mut hasher = Sha256::new();
    hasher.update(b"onedoor-idempotency-v1");
    for part in parts {
        // Length-prefixed, so ("ab","c") and ("a","bc") differ.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Ulid::from_bytes(bytes)
}

pub fn case_id_for_open(agency: &AgencyCode, key: &str) -> CaseId {
    CaseId::from_ulid(derive(&["case", agency.as_str(), key]))
}

pub fn event_id(agency: &AgencyCode, key: &str, case_id: CaseId) -> EventId {
    EventId::from_ulid(derive(&[
        "event",
        agency.as_str(),
        key,
        &case_id.to_string(),
    ]))
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
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> AgencyCode {
        AgencyCode::parse(text).expect("valid")
    }

    #[test]
    fn the_same_key_gives_the_same_ids_and_other_inputs_do_not() {
        let front = code("ODSC-VTE-SAYSETTHA");
        let case = case_id_for_open(&front, "k1");
        assert_eq!(case, case_id_for_open(&front, "k1"));
        assert_ne!(case, case_id_for_open(&front, "k2"));
        assert_ne!(case, case_id_for_open(&code("ODSC-CPS-PAKSE"), "k1"));
        let event = event_id(&front, "k1", case);
        assert_eq!(event, event_id(&front, "k1", case));
        assert_ne!(event, event_id(&front, "k1", CaseId::generate()));
    }

    #[test]
    fn derived_ids_print_as_canonical_ulids() {
        let id = case_id_for_open(&code("MOF"), "x").to_string();
        assert_eq!(CaseId::parse(&id).map(|c| c.to_string()), Ok(id));
    }
}
