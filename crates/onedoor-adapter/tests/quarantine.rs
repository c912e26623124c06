//! Hostile messages on a case, published as MOIC's credentials allow (on MOIC's own subjects,
//! `onedoor.v1.case.<case>.MOIC.<to>`): none is acted on, each is named, the case goes on.

use onedoor_bus::snapshot::payload_digest;
use onedoor_proto::v1;
use onedoor_proto::v1::case_event::Body;
use onedoor_testkit::{FRONT, TestBus, next_inbox_item};
use prost::Message as _;
use prost::bytes::Bytes;

/// One hostile message: the subject suffix after the case id, the payload, the reason the
/// readers must give.
struct Hostile {
    subject_tail: &'static str,
    payload: Bytes,
    reason: &'static str,
}

/// The next event MOIC could write after `last`: a copy of MOIC's own acceptance with a new
/// id and version, chained to `last` and signed with MOIC's key.
fn next_after(bus: &TestBus, template: &v1::CaseEvent, last: &[u8], version: u64) -> v1::CaseEvent {
    let mut wire = template.clone();
    wire.event_id = onedoor_case::EventId::generate().to_string();
    wire.case_version = version;
    wire.prev_hash = payload_digest(last).to_vec();
    wire.to_agency = FRONT.into();
    wire.body = Some(Body::InfoRequested(v1::InfoRequested {
        question: "copy of the lease?".into(),
    }));
    sign(bus, "MOIC", &mut wire);
    wire
}

fn sign(bus: &TestBus, agency: &str, wire: &mut v1::CaseEvent) {
    bus.signers
        .get(agency)
        .expect("a signer for the agency")
        .sign(wire);
}

fn hostile_messages(
    bus: &TestBus,
    template: &v1::CaseEvent,
    last: &[u8],
    version: u64,
) -> Vec<Hostile> {
    let honest = next_after(bus, template, last, version);
    let mut forged = honest.clone();
    forged.from_agency = "MOF".into();
    sign(bus, "MOIC", &mut forged);
    let mut bad_signature = honest.clone();
    bad_signature.signature[0] ^= 0xff;
    let mut broken_chain = honest.clone();
    broken_chain.prev_hash = vec![0; 32];
    sign(bus, "MOIC", &mut broken_chain);
    let mut resolves = honest.clone();
    resolves.to_agency = String::new();
    resolves.body = Some(Body::Resolved(v1::CaseResolved {
        resolution: v1::Resolution::Denied.into(),
        note: "not mine to resolve".into(),
    }));
    sign(bus, "MOIC", &mut resolves);
    let encode = |w: &v1::CaseEvent| Bytes::from(w.encode_to_vec());
    let to_front = "MOIC.ODSC-VTE-SAYSETTHA";
    [
        (to_front, encode(&forged), "subject_mismatch"),
        (to_front, encode(&bad_signature), "bad_signature"),
        (to_front, encode(&broken_chain), "broken_chain"),
        ("MOIC._", encode(&resolves), "rules"),
        (
            "MOIC.MOF",
            Bytes::from_static(b"\xff\xfenot an event"),
            "undecodable",
        ),
    ]
    .into_iter()
    .map(|(subject_tail, payload, reason)| Hostile {
        subject_tail,
        payload,
        reason,
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_are_quarantined_and_the_case_goes_on() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOF", "MOIC"]).await?;
    let (mut front, mut mof, mut moic) = (
        bus.agency(FRONT).await?,
        bus.agency("MOF").await?,
        bus.agency("MOIC").await?,
    );
    let case = front.open_case("enterprise-registration").await?.case_id;
    front.hand_off(&case, "MOF").await?;
    front.hand_off(&case, "MOIC").await?;
    let accepted = moic.accept(&case).await?;
    let before = front.get_case(&case).await?;
    let template = before.events.last().cloned().expect("MOIC's acceptance");
    assert_eq!(template.event_id, accepted.event_id);

    let case_id = onedoor_case::CaseId::parse(&case)?;
    let last = bus
        .log
        .load(case_id)
        .await?
        .last()
        .map(|s| s.payload.clone())
        .expect("events");
    let hostile = hostile_messages(&bus, &template, &last, before.version + 1);
    let mut sequences = Vec::new();
    for message in &hostile {
        let subject = format!("onedoor.v1.case.{case}.{}", message.subject_tail);
        let ack = bus
            .js
            .publish(subject, message.payload.clone())
            .await?
            .await?;
        sequences.push(ack.sequence);
    }

    // The front office's inbox holds the hand-off answers only: MOIC's acceptance, then the
    // valid step below; none of the hostile messages addressed to it comes through.
    let mut inbox = front.inbox(0).await?;
    let first = next_inbox_item(&mut inbox).await;
    assert_eq!(first.event.expect("event").event_id, accepted.event_id);
    front.ack(&[&accepted.event_id]).await?;

    let view = front.get_case(&case).await?;
    assert_eq!(
        view.version, before.version,
        "no hostile event is in the state"
    );
    assert_eq!(view.events.len(), before.events.len());
    assert_eq!(view.status, before.status);
    let named: Vec<(u64, &str)> = view
        .quarantined
        .iter()
        .map(|q| (q.stream_sequence, q.reason.as_str()))
        .collect();
    let expected: Vec<(u64, &str)> = sequences
        .iter()
        .copied()
        .zip(hostile.iter().map(|h| h.reason))
        .collect();
    assert_eq!(named, expected, "{:#?}", view.quarantined);

    // The case stays usable: MOF's and MOIC's next steps succeed.
    mof.accept(&case).await?;
    let completed = moic.complete(&case).await?;
    assert_eq!(completed.case_version, before.version + 2);
    let item = next_inbox_item(&mut inbox).await;
    let event = item.event.expect("event");
    assert!(
        !sequences.contains(&item.stream_sequence),
        "a quarantined message was delivered: {event:?}"
    );
    let after = front.get_case(&case).await?;
    assert_eq!(after.version, before.version + 2);
    assert_eq!(
        after.quarantined, view.quarantined,
        "still named after the case moved on"
    );
    Ok(())
}
