//! Hostile messages on a case, published as MOIC's credentials allow (on MOIC's own subjects,
//! `onedoor.v1.case.<case>.MOIC.<to>`): none is acted on, each is named, the case goes on.

use onedoor_bus::snapshot::payload_digest;
use onedoor_proto::v1;
use onedoor_proto::v1::case_event::Body;
use std::collections::HashMap;

use async_nats::jetstream;
use onedoor_bus::{CaseLog, Signer};
use onedoor_natsauth::Identity;
use onedoor_testkit::adapter::RunningAdapter;
use onedoor_testkit::{
    FRONT, SecuredBus, TestAgency, TestBus, code, next_inbox_item, registry_with_keys,
};
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
fn next_after(
    signers: &Signers,
    template: &v1::CaseEvent,
    last: &[u8],
    version: u64,
) -> v1::CaseEvent {
    let mut wire = template.clone();
    wire.event_id = onedoor_case::EventId::generate().to_string();
    wire.case_version = version;
    wire.prev_hash = payload_digest(last).to_vec();
    wire.to_agency = FRONT.into();
    wire.body = Some(Body::InfoRequested(v1::InfoRequested {
        question: "copy of the lease?".into(),
    }));
    sign(signers, "MOIC", &mut wire);
    wire
}

fn sign(signers: &Signers, agency: &str, wire: &mut v1::CaseEvent) {
    signers
        .get(agency)
        .expect("a signer for the agency")
        .sign(wire);
}

fn hostile_messages(
    signers: &Signers,
    template: &v1::CaseEvent,
    last: &[u8],
    version: u64,
) -> Vec<Hostile> {
    let honest = next_after(signers, template, last, version);
    let mut forged = honest.clone();
    forged.from_agency = "MOF".into();
    sign(signers, "MOIC", &mut forged);
    let mut bad_signature = honest.clone();
    bad_signature.signature[0] ^= 0xff;
    let mut broken_chain = honest.clone();
    broken_chain.prev_hash = vec![0; 32];
    sign(signers, "MOIC", &mut broken_chain);
    let mut resolves = honest.clone();
    resolves.to_agency = String::new();
    resolves.body = Some(Body::Resolved(v1::CaseResolved {
        resolution: v1::Resolution::Denied.into(),
        note: "not mine to resolve".into(),
    }));
    sign(signers, "MOIC", &mut resolves);
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

type Signers = HashMap<String, Signer>;

/// The parties' systems, what MOIC's credentials publish with, a reader of the stream, and
/// the agencies' signing keys.
struct World {
    front: TestAgency,
    mof: TestAgency,
    moic: TestAgency,
    moic_js: jetstream::Context,
    reader: CaseLog,
    signers: Signers,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_moics_own_nats_credentials_hostile_messages_are_quarantined() -> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    let (registry, signers) = registry_with_keys();
    let mut adapters = Vec::new();
    for agency in [FRONT, "MOF", "MOIC"] {
        let signer = signers.get(agency).cloned();
        let config = bus.adapter_config(agency, registry.clone(), signer)?;
        adapters.push(RunningAdapter::start(config).await?);
    }
    let moic_session = bus.connect(&Identity::Agency(code("MOIC"))).await?;
    let world = World {
        front: adapters[0].agency(FRONT).await?,
        mof: adapters[1].agency("MOF").await?,
        moic: adapters[2].agency("MOIC").await?,
        moic_js: moic_session.js.clone(),
        reader: CaseLog::open(bus.operator_js().await?).await?,
        signers,
    };
    hostile_messages_are_quarantined_and_the_case_goes_on(world).await?;
    for adapter in adapters {
        adapter.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_an_open_bus_hostile_messages_are_quarantined() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOF", "MOIC"]).await?;
    let world = World {
        front: bus.agency(FRONT).await?,
        mof: bus.agency("MOF").await?,
        moic: bus.agency("MOIC").await?,
        moic_js: bus.js.clone(),
        reader: bus.log.clone(),
        signers: bus.signers.clone(),
    };
    hostile_messages_are_quarantined_and_the_case_goes_on(world).await
}

async fn hostile_messages_are_quarantined_and_the_case_goes_on(world: World) -> anyhow::Result<()> {
    let World {
        mut front,
        mut mof,
        mut moic,
        moic_js,
        reader,
        signers,
    } = world;
    let case = front.open_case("enterprise-registration").await?.case_id;
    front.hand_off(&case, "MOF").await?;
    front.hand_off(&case, "MOIC").await?;
    let accepted = moic.accept(&case).await?;
    let before = front.get_case(&case).await?;
    let template = before.events.last().cloned().expect("MOIC's acceptance");
    assert_eq!(template.event_id, accepted.event_id);

    let case_id = onedoor_case::CaseId::parse(&case)?;
    let last = reader
        .load(case_id)
        .await?
        .last()
        .map(|s| s.payload.clone())
        .expect("events");
    let hostile = hostile_messages(&signers, &template, &last, before.version + 1);
    let mut sequences = Vec::new();
    for message in &hostile {
        let subject = format!("onedoor.v1.case.{case}.{}", message.subject_tail);
        let ack = moic_js
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
