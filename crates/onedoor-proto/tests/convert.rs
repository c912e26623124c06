//! Domain events survive the wire, and malformed wire events are refused with the field named.

use std::path::PathBuf;

use onedoor_case::{
    Action, AgencyCode, CaseEvent, CaseId, CaseState, Command, DocumentRef, EventId, Registry,
    Resolution, ServiceCode, decide,
};
use onedoor_proto::convert::{Envelope, from_wire, to_wire};
use onedoor_proto::v1;
use prost::Message as _;

fn history() -> Vec<CaseEvent> {
    let registry = Registry::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2025.toml"),
    )
    .expect("registry");
    let case_id = CaseId::generate();
    let mut at = time::macros::datetime!(2026-11-23 09:15:00.123456789 +07:00);
    let document = DocumentRef {
        name: "plan.pdf".into(),
        sha256: "ab".repeat(32),
        uri: "https://docs.example.la/plan.pdf".into(),
        media_type: "application/pdf".into(),
        size_bytes: 42,
    };
    let steps: Vec<(&str, Action)> = vec![
        (
            "ODSC-VTE-SAYSETTHA",
            Action::Open {
                service: ServiceCode::parse("construction-permit").expect("valid"),
                citizen_ref: "R-1".into(),
                summary: "ເຮືອນ 2 ຊັ້ນ".into(),
                documents: vec![document.clone()],
            },
        ),
        (
            "ODSC-VTE-SAYSETTHA",
            Action::HandOff {
                to: AgencyCode::parse("MPWT").expect("valid"),
                instructions: "review".into(),
                documents: vec![document.clone()],
                due_working_days: None,
            },
        ),
        ("MPWT", Action::Accept),
        (
            "MPWT",
            Action::RequestInfo {
                question: "site plan?".into(),
            },
        ),
        (
            "MPWT",
            Action::Complete {
                outcome: "ok".into(),
                note: "n".into(),
                documents: vec![document],
            },
        ),
        (
            "ODSC-VTE-SAYSETTHA",
            Action::Resolve {
                resolution: Resolution::Approved,
                note: "done".into(),
            },
        ),
    ];
    let mut state = None;
    let mut events = Vec::new();
    for (agency, action) in steps {
        let command = Command {
            agency: AgencyCode::parse(agency).expect("valid"),
            actor: "u1".into(),
            at,
            action,
        };
        let event = decide(
            state.as_ref(),
            case_id,
            EventId::generate(),
            &command,
            &registry,
        )
        .expect("allowed");
        state = Some(CaseState::apply(state, &event).expect("folds"));
        events.push(event);
        at += time::Duration::minutes(90);
    }
    events
}

#[test]
fn every_kind_of_event_round_trips_through_protobuf() {
    for event in history() {
        let envelope = Envelope {
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            ..Envelope::default()
        };
        let bytes = to_wire(&event, envelope.clone()).encode_to_vec();
        let wire = v1::CaseEvent::decode(bytes.as_slice()).expect("decodes");
        let (back, back_envelope) = from_wire(&wire).expect("valid wire event");
        assert_eq!(back, event);
        assert_eq!(back_envelope, envelope);
    }
}

#[test]
fn malformed_wire_events_name_the_bad_field() {
    let good = to_wire(&history()[1], Envelope::default());
    type Spoil = Box<dyn Fn(&mut v1::CaseEvent)>;
    let cases: Vec<(&str, Spoil)> = vec![
        ("event_id", Box::new(|e| e.event_id = "nope".into())),
        ("case_id", Box::new(|e| e.case_id = String::new())),
        ("from_agency", Box::new(|e| e.from_agency = "mo.ic".into())),
        ("to_agency", Box::new(|e| e.to_agency = "A B".into())),
        ("occurred_at", Box::new(|e| e.occurred_at = None)),
        ("body", Box::new(|e| e.body = None)),
        ("case_version", Box::new(|e| e.case_version = 0)),
        ("causation_id", Box::new(|e| e.causation_id = "x".into())),
    ];
    for (field, spoil) in cases {
        let mut wire = good.clone();
        spoil(&mut wire);
        let err = from_wire(&wire).expect_err(field);
        assert_eq!(err.field, field, "{err}");
    }
}

#[test]
fn an_unspecified_resolution_is_refused() {
    let mut wire = to_wire(history().last().expect("resolved"), Envelope::default());
    if let Some(v1::case_event::Body::Resolved(body)) = wire.body.as_mut() {
        body.resolution = 0;
    }
    assert_eq!(
        from_wire(&wire).expect_err("unspecified").field,
        "resolved.resolution"
    );
}
