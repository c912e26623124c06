//! Tamper evidence on ingest: with agency keys in the registry, the tracker checks every case's
//! signatures and hash chain as it projects it, and shows a forged event as the case's problem.

use std::sync::Arc;

use onedoor_bus::{CaseLog, Signer, WriteRequest};
use onedoor_case::{Action, AgencyKey, CaseId, Command, EventId, ServiceCode};
use onedoor_tracker::{ManualClock, Store};

use onedoor_testkit::{
    FRONT, MONDAY, RunningTracker, TestBus, TestDb, code, shipped_registry, wait_until_projected,
};

fn request(case_id: CaseId, agency: &str, action: Action) -> WriteRequest {
    WriteRequest {
        case_id,
        event_id: EventId::generate(),
        command: Command {
            agency: code(agency),
            actor: "u".into(),
            at: MONDAY,
            action,
        },
        idempotency_key: EventId::generate().to_string(),
        caller_trace: None,
    }
}

#[tokio::test]
async fn a_forged_event_is_flagged_on_its_case_and_a_signed_case_is_not() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let mut registry = shipped_registry();
    let mut signers = Vec::new();
    for agency in [FRONT, "MOIC"] {
        let signer = Signer::generate(format!("{agency}-k1"));
        let key = AgencyKey {
            id: signer.key_id().into(),
            public_key: signer.public_key(),
            valid_from: time::macros::date!(2020 - 01 - 01),
            valid_until: None,
        };
        registry
            .add_key(&code(agency), key)
            .map_err(anyhow::Error::msg)?;
        signers.push(signer);
    }
    let js = bus.nats.jetstream().await?;
    let front = CaseLog::open(js.clone())
        .await?
        .with_signer(signers[0].clone());
    let moic = CaseLog::open(js.clone())
        .await?
        .with_signer(signers[1].clone());
    let forger = CaseLog::open(js)
        .await?
        .with_signer(Signer::generate("MOIC-k1"));

    let open = || Action::Open {
        service: ServiceCode::parse("enterprise-registration").expect("valid"),
        citizen_ref: "R".into(),
        summary: String::new(),
        documents: vec![],
    };
    let hand_off = || Action::HandOff {
        to: code("MOIC"),
        instructions: String::new(),
        documents: vec![],
        due_working_days: None,
    };
    let (good, bad) = (CaseId::generate(), CaseId::generate());
    for case_id in [good, bad] {
        front
            .execute(&request(case_id, FRONT, open()), &registry)
            .await?;
        front
            .execute(&request(case_id, FRONT, hand_off()), &registry)
            .await?;
    }
    moic.execute(&request(good, "MOIC", Action::Accept), &registry)
        .await?;
    // Same key id as MOIC's real key, different key: a forgery that looks right.
    let forged = forger
        .execute(&request(bad, "MOIC", Action::Accept), &registry)
        .await?;

    let db = TestDb::sqlite();
    let mut config = bus.tracker_config(&db, Arc::new(ManualClock::new(MONDAY)));
    config.registry = Arc::new(registry);
    config.verify_signatures = true;
    let tracker = RunningTracker::start(config).await?;
    let store = Store::connect(&db.url()).await?;
    wait_until_projected(&bus, &store, &[good, bad]).await?;

    let good_case = store
        .case(&good.to_string())
        .await?
        .ok_or_else(|| anyhow::anyhow!("projected"))?;
    assert_eq!(good_case.problem, None);
    let bad_case = store
        .case(&bad.to_string())
        .await?
        .ok_or_else(|| anyhow::anyhow!("projected"))?;
    let problem = bad_case.problem.unwrap_or_default();
    assert!(problem.starts_with("audit:"), "{problem}");
    assert!(
        problem.contains(&forged.event.event_id.to_string()) && problem.contains("signature"),
        "{problem}"
    );
    tracker.stop().await?;
    Ok(())
}
