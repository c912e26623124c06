//! A write cannot be hijacked: on a real nats-server with the generated permissions, MOIC (with
//! its own credentials) stores messages under the event id MOF's next write will use, and MOF
//! gets ALREADY_EXISTS naming its idempotency key, never a receipt for an event it did not
//! write. And MOIC cannot even learn that id: it is keyed by MOF's secret.

use async_nats::HeaderMap;
use onedoor_adapter::idempotency::IdKey;
use onedoor_bus::case_log::NATS_MSG_ID;
use onedoor_bus::{BusError, CaseLog, Signer, WriteRequest};
use onedoor_case::{Action, AgencyCode, CaseId, EventId};
use onedoor_grpc::status::bus_code;
use onedoor_natsauth::Identity;
use onedoor_proto::v1;
use onedoor_testkit::secured::REQUEST_TIMEOUT;
use onedoor_testkit::{FRONT, SecuredBus, TestBus};
use sha2_hmac::{Digest as _, Sha256};
use tonic::Code;

fn code(text: &str) -> AgencyCode {
    AgencyCode::parse(text).expect("valid agency code")
}

/// The event id as onedoor derived it before ids were keyed: a hash of public inputs, which
/// any agency could compute for MOF.
fn unkeyed_event_id(agency: &str, key: &str, case_id: CaseId) -> EventId {
    let mut hasher = Sha256::new();
    hasher.update(b"onedoor-idempotency-v1");
    for part in ["event", agency, key, &case_id.to_string()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hasher.finalize()[..16]);
    EventId::from_ulid(ulid::Ulid::from_bytes(bytes))
}

/// MOF's accept of `case_id` under idempotency key `key`, with the id its adapter would use.
fn mof_accept(bus: &SecuredBus, ids: &IdKey, case_id: CaseId, key: &str) -> WriteRequest {
    let mut request = bus.request(case_id, "MOF", Action::Accept);
    request.event_id = ids.event_id(&code("MOF"), key, case_id);
    request.idempotency_key = key.to_owned();
    request
}

/// The write must be refused as a taken id, naming the key, and nothing stored for it.
fn assert_taken(result: Result<onedoor_bus::Written, BusError>, key: &str) {
    match result {
        Err(err @ BusError::IdTaken { .. }) => {
            assert_eq!(bus_code(&err), Code::AlreadyExists);
            assert!(err.to_string().contains(key), "{err}");
        }
        Err(other) => panic!("expected the id to be refused as taken, got {other}"),
        Ok(written) => panic!(
            "got a receipt (sequence {}, duplicate {}) for an event MOF did not write",
            written.sequence, written.duplicate
        ),
    }
}

#[tokio::test]
async fn another_agency_storing_under_mofs_event_id_gets_mof_no_receipt() -> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    let mof_case = bus.case_handed_to("MOF").await?;
    let moic_case = bus.case_handed_to("MOIC").await?;
    let mof_signer = Signer::generate("MOF-test");
    let ids = IdKey::from_signer(&mof_signer);
    let mof = bus.connect(&Identity::Agency(code("MOF"))).await?;
    let mof_log = CaseLog::through_reader(mof.js.clone(), code("MOF"), REQUEST_TIMEOUT)
        .with_signer(mof_signer);
    let moic = bus.connect(&Identity::Agency(code("MOIC"))).await?;

    // What MOIC can compute is not the id MOF's adapter uses.
    let target = ids.event_id(&code("MOF"), "accept-1", mof_case);
    assert_ne!(unkeyed_event_id("MOF", "accept-1", mof_case), target);

    // Had the id leaked anyway: MOIC stores a message under it on a subject it may publish to
    // (another case), and MOF's write dedupes against it.
    let mut headers = HeaderMap::new();
    headers.insert(NATS_MSG_ID, target.to_string());
    let subject = format!("onedoor.v1.case.{}.MOIC.NONE", CaseId::generate());
    moic.js
        .publish_with_headers(subject, headers, "not an event".into())
        .await?
        .await?;
    assert_taken(
        mof_log
            .execute(&mof_accept(&bus, &ids, mof_case, "accept-1"), &bus.registry)
            .await,
        "accept-1",
    );

    // A well-formed, signed MOIC event carrying MOF's next id, on a case MOIC holds.
    let target = ids.event_id(&code("MOF"), "accept-2", mof_case);
    let moic_log = CaseLog::through_reader(moic.js.clone(), code("MOIC"), REQUEST_TIMEOUT);
    let mut forged = bus.request(moic_case, "MOIC", Action::Accept);
    forged.event_id = target;
    assert!(!moic_log.execute(&forged, &bus.registry).await?.duplicate);
    assert_taken(
        mof_log
            .execute(&mof_accept(&bus, &ids, mof_case, "accept-2"), &bus.registry)
            .await,
        "accept-2",
    );

    // MOF's own write under a fresh key is stored, and its retry gets the same receipt.
    let request = mof_accept(&bus, &ids, mof_case, "accept-3");
    let written = mof_log.execute(&request, &bus.registry).await?;
    assert!(!written.duplicate);
    let fresh_log = CaseLog::through_reader(mof.js.clone(), code("MOF"), REQUEST_TIMEOUT)
        .with_signer(Signer::generate("MOF-other"));
    let retried = mof_log.execute(&request, &bus.registry).await?;
    assert!(retried.duplicate);
    assert_eq!(retried.sequence, written.sequence);
    assert_eq!(retried.event.event_id, written.event.event_id);
    // A writer holding another key (not MOF's) is not answered with MOF's event either.
    assert_taken(fresh_log.execute(&request, &bus.registry).await, "accept-3");
    Ok(())
}

/// What an integrator sees through a real adapter: the taken id answers ALREADY_EXISTS naming
/// the key, on the first try and on a retry; a fresh key is served, and its retry gets the
/// same receipt.
#[tokio::test]
async fn the_adapter_answers_already_exists_for_a_taken_id() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOF"]).await?;
    let (mut front, mut mof) = (bus.agency(FRONT).await?, bus.agency("MOF").await?);
    let case = front.open_case("enterprise-registration").await?.case_id;
    front.hand_off(&case, "MOF").await?;
    let case_id: CaseId = case.parse()?;

    let ids = IdKey::from_signer(&bus.signers["MOF"]);
    let mut headers = HeaderMap::new();
    headers.insert(
        NATS_MSG_ID,
        ids.event_id(&code("MOF"), "taken", case_id).to_string(),
    );
    let js = bus.nats.jetstream().await?;
    js.publish_with_headers(
        format!("onedoor.v1.case.{}.MOIC.NONE", CaseId::generate()),
        headers,
        "not an event".into(),
    )
    .await?
    .await?;

    let accept = |key: &str| v1::AcceptRequest {
        case_id: case.clone(),
        idempotency_key: key.into(),
        actor: "officer".into(),
    };
    for _ in 0..2 {
        let refused = mof
            .client
            .accept(accept("taken"))
            .await
            .expect_err("no receipt for a taken id");
        assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
        assert!(refused.message().contains("\"taken\""), "{refused:?}");
    }
    let first = mof.client.accept(accept("fresh")).await?.into_inner();
    let again = mof.client.accept(accept("fresh")).await?.into_inner();
    assert_eq!(again, first);
    Ok(())
}
