//! The audit chain against a real stream: signed histories verify; forged, altered, removed and
//! reordered events are named.

use std::path::PathBuf;

use onedoor_bus::{
    AuditProblem, CaseLog, Signer, StoredEvent, StreamSettings, WriteRequest, ensure_stream,
    verify_case,
};
use onedoor_case::{Action, AgencyCode, AgencyKey, CaseId, Registry, ServiceCode};
use onedoor_proto::v1;
use onedoor_testkit::TestNats;
use prost::Message as _;

const FRONT: &str = "ODSC-VTE-SAYSETTHA";

fn code(text: &str) -> AgencyCode {
    AgencyCode::parse(text).expect("valid code")
}

/// The shipped registry plus one key per acting agency; returns the signers.
fn registry_with_keys(agencies: &[&str]) -> (Registry, Vec<Signer>) {
    let mut registry = Registry::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2025.toml"),
    )
    .expect("registry");
    let mut signers = Vec::new();
    for agency in agencies {
        let signer = Signer::generate(format!("{agency}-2026-01"));
        let key = AgencyKey {
            id: signer.key_id().to_owned(),
            public_key: signer.public_key(),
            valid_from: time::macros::date!(2026 - 01 - 01),
            valid_until: None,
        };
        registry.add_key(&code(agency), key).expect("key added");
        signers.push(signer);
    }
    (registry, signers)
}

fn request(case_id: CaseId, agency: &str, action: Action) -> WriteRequest {
    onedoor_testkit::bus::write_request(case_id, agency, action, time::OffsetDateTime::now_utc())
}

fn hand_off(to: &str) -> Action {
    Action::HandOff {
        to: code(to),
        instructions: "x".into(),
        documents: vec![],
        due_working_days: None,
    }
}

/// Writes open → hand-off → accept → hand-on with each agency's own signed log.
async fn signed_case(
    nats: &TestNats,
    registry: &Registry,
    signers: &[Signer],
) -> anyhow::Result<(CaseId, CaseLog)> {
    let js = nats.jetstream().await?;
    ensure_stream(&js, &StreamSettings::development()).await?;
    let front = CaseLog::open(js.clone())
        .await?
        .with_signer(signers[0].clone());
    let moic = CaseLog::open(js.clone())
        .await?
        .with_signer(signers[1].clone());
    let case_id = CaseId::generate();
    let open = Action::Open {
        service: ServiceCode::parse("enterprise-registration")?,
        citizen_ref: "R".into(),
        summary: "s".into(),
        documents: vec![],
    };
    front
        .execute(&request(case_id, FRONT, open), registry)
        .await?;
    front
        .execute(&request(case_id, FRONT, hand_off("MOIC")), registry)
        .await?;
    moic.execute(&request(case_id, "MOIC", Action::Accept), registry)
        .await?;
    moic.execute(&request(case_id, "MOIC", hand_off("MOF")), registry)
        .await?;
    Ok((case_id, CaseLog::open(js).await?))
}

fn alter_summary(stored: &StoredEvent) -> StoredEvent {
    let mut wire = stored.wire.clone();
    if let Some(v1::case_event::Body::Opened(body)) = wire.body.as_mut() {
        body.summary = "altered".into();
    }
    let payload = bytes::Bytes::from(wire.encode_to_vec());
    onedoor_bus::case_log::decode_stored(stored.sequence, payload).expect("still decodes")
}

#[tokio::test]
async fn a_signed_history_verifies_and_tampering_is_named() -> anyhow::Result<()> {
    let nats = TestNats::start().await?;
    let (registry, signers) = registry_with_keys(&[FRONT, "MOIC"]);
    let (case_id, log) = signed_case(&nats, &registry, &signers).await?;
    let events = log.load(case_id).await?;
    assert_eq!(events.len(), 4);
    verify_case(&events, &registry)?;

    // An altered payload: its signature no longer matches.
    let mut altered = events.clone();
    altered[0] = alter_summary(&events[0]);
    let failure = verify_case(&altered, &registry).expect_err("altered");
    assert_eq!(
        (failure.version, failure.problem),
        (1, AuditProblem::BadSignature)
    );

    // A removed event: the next one's prev_hash points at something else.
    let mut removed = events.clone();
    removed.remove(1);
    let failure = verify_case(&removed, &registry).expect_err("removed");
    assert_eq!(
        (failure.version, failure.problem),
        (3, AuditProblem::BrokenChain)
    );

    // Reordered events break the chain at the first moved one.
    let mut reordered = events.clone();
    reordered.swap(2, 3);
    let failure = verify_case(&reordered, &registry).expect_err("reordered");
    assert_eq!(failure.problem, AuditProblem::BrokenChain);
    assert!(failure.to_string().contains(&failure.event_id), "{failure}");
    Ok(())
}

#[tokio::test]
async fn an_event_signed_with_a_key_the_registry_does_not_list_is_a_forgery() -> anyhow::Result<()>
{
    let nats = TestNats::start().await?;
    let (registry, signers) = registry_with_keys(&[FRONT, "MOIC"]);
    let (case_id, log) = signed_case(&nats, &registry, &signers).await?;
    // Someone holding NATS access but not MOF's key writes "as MOF", with a well-formed chain.
    let forger = Signer::from_seed("MOF-2026-01", [9u8; 32]);
    let forged_log = CaseLog::open(nats.jetstream().await?)
        .await?
        .with_signer(forger);
    forged_log
        .execute(&request(case_id, "MOF", Action::Accept), &registry)
        .await?;

    let events = log.load(case_id).await?;
    let failure = verify_case(&events, &registry).expect_err("forged");
    assert_eq!(failure.version, 5);
    assert!(
        matches!(failure.problem, AuditProblem::UnknownKey { .. }),
        "{failure}"
    );

    // With MOF's real key registered under that id, the forged signature itself fails.
    let mut with_mof = registry.clone();
    let real_mof = Signer::generate("MOF-2026-01");
    with_mof
        .add_key(
            &code("MOF"),
            AgencyKey {
                id: real_mof.key_id().into(),
                public_key: real_mof.public_key(),
                valid_from: time::macros::date!(2026 - 01 - 01),
                valid_until: None,
            },
        )
        .map_err(anyhow::Error::msg)?;
    let failure = verify_case(&events, &with_mof).expect_err("forged");
    assert_eq!(failure.problem, AuditProblem::BadSignature);
    Ok(())
}

#[tokio::test]
async fn unsigned_events_and_expired_keys_fail_verification() -> anyhow::Result<()> {
    let nats = TestNats::start().await?;
    let (mut registry, signers) = registry_with_keys(&[FRONT, "MOIC"]);
    let js = nats.jetstream().await?;
    ensure_stream(&js, &StreamSettings::development()).await?;
    let unsigned = CaseLog::open(js.clone()).await?;
    let case_id = CaseId::generate();
    let open = Action::Open {
        service: ServiceCode::parse("enterprise-registration")?,
        citizen_ref: "R".into(),
        summary: String::new(),
        documents: vec![],
    };
    unsigned
        .execute(&request(case_id, FRONT, open), &registry)
        .await?;
    let failure = verify_case(&unsigned.load(case_id).await?, &registry).expect_err("unsigned");
    assert_eq!(failure.problem, AuditProblem::NotSigned);

    let (other_case, log) = signed_case(&nats, &registry, &signers).await?;
    let events = log.load(other_case).await?;
    // Say the front office's key expired yesterday: what it signed today is not valid.
    let today = time::OffsetDateTime::now_utc().date();
    let front = registry
        .agencies
        .get_mut(&code(FRONT))
        .expect("front office");
    front.keys[0].valid_from = today - time::Duration::days(10);
    front.keys[0].valid_until = Some(today - time::Duration::days(1));
    let failure = verify_case(&events, &registry).expect_err("expired");
    assert!(
        matches!(failure.problem, AuditProblem::KeyNotValid { .. }),
        "{failure}"
    );
    Ok(())
}

#[test]
fn signers_do_not_print_their_keys() {
    let signer = Signer::from_seed("MOF-1", [7u8; 32]);
    let shown = format!("{signer:?}");
    assert_eq!(shown, "Signer(MOF-1, ****)");
    assert!(!shown.contains(&signer.seed_file_text().trim().to_string()));
}

/// Checking in batches names exactly the events one-by-one checking names: a bad signature
/// fails its batch, and the batch is then checked event by event.
#[tokio::test]
async fn batch_checks_name_exactly_the_bad_signatures() -> anyhow::Result<()> {
    let nats = TestNats::start().await?;
    let (registry, signers) = registry_with_keys(&[FRONT, "MOIC"]);
    let mut events = Vec::new();
    for _ in 0..20 {
        let (case_id, log) = signed_case(&nats, &registry, &signers).await?;
        events.extend(log.load(case_id).await?);
    }
    // 20 cases of 4 events, seven times over: more than one batch of 512.
    events = std::iter::repeat_n(events, 7).flatten().collect();
    // Opening events (every fourth) altered in the first batch and in the second.
    let bad = [4, 516];
    for index in bad {
        events[index] = alter_summary(&events[index]);
    }
    let refs: Vec<&StoredEvent> = events.iter().collect();
    let verified = onedoor_bus::audit::verify_signatures(&refs, &registry);
    let one_by_one: Vec<bool> = events
        .iter()
        .map(|stored| onedoor_bus::audit::verify_signature(stored, &registry).is_ok())
        .collect();
    assert_eq!(verified, one_by_one);
    let failing: Vec<usize> = (0..verified.len()).filter(|&i| !verified[i]).collect();
    assert_eq!(failing, bad);
    Ok(())
}
