//! The hand-written helpers on CaseEvent, and the event's wire form.

use onedoor_proto::event::{EVENT_KINDS, kind_from_ce_type};
use onedoor_proto::v1::case_event::Body;
use onedoor_proto::v1::{
    CaseEvent, CaseOpened, CaseResolved, DocumentRef, HandedOff, InfoRequested, Resolution,
    TaskAccepted, TaskClosed, TaskCompleted, TaskSentBack, TaskTakenBack, TaskTransferred,
    TransferReason,
};
use prost::Message as _;

/// One body of every kind. The match in `kind_of` below has no wildcard, so a
/// new oneof variant does not compile until it is listed here.
fn every_body() -> Vec<Body> {
    let document = DocumentRef {
        name: "enterprise-certificate.pdf".into(),
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        uri: "https://docs.moic.gov.la/cert/01JD8Z6Q4W3X9K2M5N7P8R0S1T".into(),
        media_type: "application/pdf".into(),
        size_bytes: 183_204,
    };
    vec![
        Body::Opened(CaseOpened {
            service: "enterprise-registration".into(),
            citizen_ref: "VTE-SAY-2026-000123".into(),
            summary: "ຈົດທະບຽນວິສາຫະກິດ: a small trading company".into(),
            origin_agency: "ODSC-VTE-SAYSETTHA".into(),
            documents: vec![document.clone()],
        }),
        Body::HandedOff(HandedOff {
            instructions: "register the enterprise".into(),
            due_at: Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            }),
            documents: vec![],
        }),
        Body::Accepted(TaskAccepted {}),
        Body::Completed(TaskCompleted {
            outcome: "registered: enterprise code 0123456789".into(),
            note: String::new(),
            documents: vec![document],
        }),
        Body::SentBack(TaskSentBack {
            reason: "missing papers: site plan".into(),
        }),
        Body::InfoRequested(InfoRequested {
            question: "Which province is the head office in?".into(),
        }),
        Body::Resolved(CaseResolved {
            resolution: Resolution::Approved as i32,
            note: "approved".into(),
        }),
        Body::TaskClosed(TaskClosed {
            resolution: Resolution::Withdrawn as i32,
            note: "the citizen withdrew".into(),
        }),
        Body::TaskTransferred(TaskTransferred {
            registry_version: "2025-03".into(),
            reason: TransferReason::Merged as i32,
            due_at: Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            }),
        }),
        Body::TaskTakenBack(TaskTakenBack {
            reason: "sent to the wrong ministry: land titles are MONRE".into(),
        }),
    ]
}

fn kind_of(body: &Body) -> &'static str {
    match body {
        Body::Opened(_) => "opened",
        Body::HandedOff(_) => "handed_off",
        Body::Accepted(_) => "accepted",
        Body::Completed(_) => "completed",
        Body::SentBack(_) => "sent_back",
        Body::InfoRequested(_) => "info_requested",
        Body::Resolved(_) => "resolved",
        Body::TaskClosed(_) => "task_closed",
        Body::TaskTransferred(_) => "task_transferred",
        Body::TaskTakenBack(_) => "task_taken_back",
    }
}

fn event(body: Body) -> CaseEvent {
    CaseEvent {
        event_id: "01JD8Z6Q4W3X9K2M5N7P8R0S1T".into(),
        case_id: "01JD8Z5A1B2C3D4E5F6G7H8J9K".into(),
        case_version: 3,
        occurred_at: Some(prost_types::Timestamp {
            seconds: 1_790_000_000,
            nanos: 123_000_000,
        }),
        from_agency: "MOIC".into(),
        to_agency: "ODSC-VTE-SAYSETTHA".into(),
        actor: "moic-officer-17".into(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        span_id: "00f067aa0ba902b7".into(),
        causation_id: "01JD8Z6Q4W3X9K2M5N7P8R0S1A".into(),
        idempotency_key: "b8a2c1e0-7d1f-4c2a-9e55-0b1d2c3e4f50".into(),
        prev_hash: vec![0xab; 32],
        key_id: "MOIC-2026-01".into(),
        body: Some(body),
        signature: vec![0x5a; 64],
    }
}

#[test]
fn case_event_round_trips_through_encode_and_decode() {
    for body in every_body() {
        let original = event(body);
        let bytes = original.encode_to_vec();
        let decoded = CaseEvent::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(decoded, original);
        assert_eq!(
            decoded.encode_to_vec(),
            bytes,
            "re-encoding is byte-identical"
        );
    }
}

#[test]
fn kind_names_every_body_variant() {
    let bodies = every_body();
    assert_eq!(bodies.len(), EVENT_KINDS.len(), "one body per kind");
    let kinds: Vec<&str> = bodies.iter().map(Body::kind).collect();
    assert_eq!(kinds, EVENT_KINDS);
    for body in bodies {
        assert_eq!(body.kind(), kind_of(&body));
        assert_eq!(event(body.clone()).kind(), Some(kind_of(&body)));
    }
}

#[test]
fn ce_type_is_the_versioned_cloudevents_type_of_the_kind() {
    for body in every_body() {
        let expected = format!("la.gov.onedoor.case.{}.v1", body.kind());
        assert_eq!(body.ce_type(), expected);
        assert_eq!(event(body.clone()).ce_type(), Some(expected.as_str()));
        assert_eq!(kind_from_ce_type(&expected), Some(body.kind()));
    }
    assert_eq!(
        Body::HandedOff(HandedOff::default()).ce_type(),
        "la.gov.onedoor.case.handed_off.v1"
    );
}

#[test]
fn unknown_cloudevents_types_have_no_kind() {
    for other in [
        "",
        "la.gov.onedoor.case.v1",
        "la.gov.onedoor.case.deleted.v1",
        "la.gov.onedoor.case.opened.v2",
        "org.example.case.opened.v1",
    ] {
        assert_eq!(kind_from_ce_type(other), None, "{other:?}");
    }
}

#[test]
fn an_event_without_a_body_has_no_kind() {
    let mut empty = event(Body::Accepted(TaskAccepted {}));
    empty.body = None;
    assert_eq!(empty.kind(), None);
    assert_eq!(empty.ce_type(), None);
}

#[test]
fn signing_bytes_are_the_stored_payload_without_its_signature() {
    for body in every_body() {
        let signed = event(body);
        let payload = signed.encode_to_vec();
        let signing = signed.signing_bytes();
        assert!(payload.len() > signing.len());
        assert!(
            payload.starts_with(&signing),
            "the signature field comes last on the wire"
        );

        let mut unsigned = signed.clone();
        unsigned.signature.clear();
        assert_eq!(signing, unsigned.encode_to_vec());
        assert_eq!(unsigned.signing_bytes(), signing, "idempotent");
    }
}
