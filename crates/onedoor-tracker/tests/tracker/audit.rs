//! Tamper evidence on ingest: with agency keys in the registry, the tracker checks every
//! message's signature before believing it; a forged event is quarantined under its case, and
//! the case stands at its last good event.

use std::sync::Arc;

use onedoor_bus::{CaseLog, Signer};
use onedoor_case::{Action, CaseId, ServiceCode};
use onedoor_tracker::{ManualClock, Store};

use onedoor_testkit::{DEADLINE, FRONT, MONDAY, RunningTracker, TestBus, TestDb, code, eventually};

#[tokio::test]
async fn a_forged_event_is_quarantined_on_its_case_and_a_signed_case_is_not() -> anyhow::Result<()>
{
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
    // The bus's own log does not check signatures, so it counts the forgery: wait for what
    // the tracker must show instead.
    eventually("both cases projected", DEADLINE, || async {
        let version = |case: CaseId| {
            let store = &store;
            async move {
                anyhow::Ok(
                    store
                        .case(&case.to_string())
                        .await?
                        .map_or(0, |c| c.version),
                )
            }
        };
        let seen = (version(good).await?, version(bad).await?);
        let rejected = store.rejected_for_case(&bad.to_string()).await?.len();
        Ok((seen == (3, 2) && rejected == 1)
            .then_some(())
            .ok_or(format!("versions {seen:?}, {rejected} rejected")))
    })
    .await?;

    let good_case = store
        .case(&good.to_string())
        .await?
        .ok_or_else(|| anyhow::anyhow!("projected"))?;
    assert_eq!((good_case.problem, good_case.version), (None, 3));
    assert!(store.rejected_for_case(&good.to_string()).await?.is_empty());
    let bad_case = store
        .case(&bad.to_string())
        .await?
        .ok_or_else(|| anyhow::anyhow!("projected"))?;
    assert_eq!(
        (bad_case.problem, bad_case.version),
        (None, 2),
        "the case stands at its hand-off"
    );
    let rejected = store.rejected_for_case(&bad.to_string()).await?;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].stream_sequence, forged.sequence);
    assert_eq!(rejected[0].label.as_deref(), Some("bad_signature"));
    assert_eq!(rejected[0].sender(), Some("MOIC"));
    tracker.stop().await?;
    Ok(())
}
