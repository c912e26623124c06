//! Tamper evidence on ingest: with agency keys in the registry, the tracker checks every case's
//! signatures and hash chain as it projects it, and shows a forged event as the case's problem.

use std::sync::Arc;

use onedoor_bus::{CaseLog, Signer};
use onedoor_case::{Action, CaseId, ServiceCode};
use onedoor_tracker::{ManualClock, Store};

use onedoor_testkit::{FRONT, MONDAY, RunningTracker, TestBus, TestDb, code, wait_until_projected};

#[tokio::test]
async fn a_forged_event_is_flagged_on_its_case_and_a_signed_case_is_not() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    // The bus's registry holds a key for every agency; each agency signs with its own.
    let registry = &bus.registry;
    let js = bus.nats.jetstream().await?;
    let front = CaseLog::open(js.clone())
        .await?
        .with_signer(bus.signers[FRONT].clone());
    let moic = CaseLog::open(js.clone())
        .await?
        .with_signer(bus.signers["MOIC"].clone());
    let forger = CaseLog::open(js)
        .await?
        .with_signer(Signer::generate("MOIC-test"));

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
            .execute(&bus.request_at(case_id, FRONT, open(), MONDAY), registry)
            .await?;
        front
            .execute(
                &bus.request_at(case_id, FRONT, hand_off(), MONDAY),
                registry,
            )
            .await?;
    }
    moic.execute(
        &bus.request_at(good, "MOIC", Action::Accept, MONDAY),
        registry,
    )
    .await?;
    // Same key id as MOIC's real key, different key: a forgery that looks right.
    let forged = forger
        .execute(
            &bus.request_at(bad, "MOIC", Action::Accept, MONDAY),
            registry,
        )
        .await?;

    let db = TestDb::sqlite();
    let mut config = bus.tracker_config(&db, Arc::new(ManualClock::new(MONDAY)));
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
