//! Hostile messages on a case, published on MOIC's own subjects and each claiming the version
//! the holder's valid step needs next: the tracker stores none of them as an event, lists each
//! under the case with its reason, projects the valid step, and the case goes on. A rebuild
//! gives the same.

use std::sync::Arc;

use onedoor_case::{Action, CaseId, Resolution};
use onedoor_proto::v1;
use onedoor_tracker::view::Projected;
use onedoor_tracker::{ManualClock, Store, TrackerConfig, rebuild};

use onedoor_testkit::on_both_databases;
use onedoor_testkit::{DEADLINE, FRONT, MONDAY, RunningTracker, TestBus, TestDb, eventually};

/// Waits until the tracker's view of the case reaches `version`.
async fn projected_to(store: &Store, case_id: CaseId, version: u64) -> anyhow::Result<()> {
    let case_id = case_id.to_string();
    eventually("the case projected", DEADLINE, || async {
        let have = store.case(&case_id).await?.map_or(0, |c| c.version);
        Ok((have == version)
            .then_some(())
            .ok_or(format!("at version {have}")))
    })
    .await
}

fn with_signatures(bus: &TestBus, db: &TestDb) -> TrackerConfig {
    let mut config = bus.tracker_config(db, Arc::new(ManualClock::new(MONDAY)));
    config.verify_signatures = true;
    config
}

async fn hostile_messages_never_take_the_version_the_valid_step_needs(
    db: TestDb,
) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let config = with_signatures(&bus, &db);
    let tracker = RunningTracker::start(config.clone()).await?;
    let store = Store::connect(&db.url()).await?;
    let case_id = bus.case_held_by("MOIC", MONDAY).await?;
    projected_to(&store, case_id, 3).await?;

    // Each claims version 4, chained to version 3; then MOIC's valid step takes version 4.
    let hostile = bus.hostile_from(case_id, "MOIC").await?;
    let sequences = bus.publish_hostile(&hostile).await?;
    let complete = Action::Complete {
        outcome: "approved".into(),
        note: String::new(),
        documents: vec![],
    };
    let valid = bus.act_verified(case_id, "MOIC", complete, MONDAY).await?;
    assert_eq!(valid.event.version, 4);
    projected_to(&store, case_id, 4).await?;

    let rejected = store.rejected_for_case(&case_id.to_string()).await?;
    let named: Vec<(u64, Option<&str>, Option<&str>)> = rejected
        .iter()
        .map(|r| (r.stream_sequence, r.label.as_deref(), r.sender()))
        .collect();
    let expected: Vec<(u64, Option<&str>, Option<&str>)> = sequences
        .iter()
        .zip(&hostile)
        .map(|(sequence, h)| (*sequence, Some(h.reason), Some("MOIC")))
        .collect();
    assert_eq!(named, expected, "{rejected:#?}");

    // GetCase names them as the adapters do: the label, and the reason in words.
    let mut client = tracker.client().await?;
    let view = client
        .get_case(v1::GetCaseRequest {
            case_id: case_id.to_string(),
        })
        .await?
        .into_inner();
    assert_eq!(view.version, 4);
    assert_eq!(view.events.len(), 4);
    let listed: Vec<(u64, &str)> = view
        .quarantined
        .iter()
        .map(|q| (q.stream_sequence, q.reason.as_str()))
        .collect();
    let wanted: Vec<(u64, &str)> = sequences
        .iter()
        .copied()
        .zip(hostile.iter().map(|h| h.reason))
        .collect();
    assert_eq!(listed, wanted);
    assert!(view.quarantined.iter().all(|q| !q.detail.is_empty()));

    // The case keeps moving.
    let resolve = Action::Resolve {
        resolution: Resolution::Approved,
        note: String::new(),
    };
    bus.act_verified(case_id, FRONT, resolve, MONDAY).await?;
    projected_to(&store, case_id, 5).await?;
    let live: Option<Projected> = store.projected(&case_id.to_string()).await?;
    tracker.stop().await?;

    // A rebuild believes and refuses the same messages.
    rebuild(&config).await?;
    let store = Store::connect(&db.url()).await?;
    assert_eq!(store.projected(&case_id.to_string()).await?, live);
    let again = store.rejected_for_case(&case_id.to_string()).await?;
    let strip =
        |r: &[onedoor_tracker::store::RejectedMessage]| -> Vec<(u64, Option<String>, String)> {
            r.iter()
                .map(|m| (m.stream_sequence, m.label.clone(), m.reason.clone()))
                .collect()
        };
    assert_eq!(strip(&again), strip(&rejected));
    Ok(())
}
on_both_databases!(hostile_messages_never_take_the_version_the_valid_step_needs);

/// The subject names the case: a message on another case's subject carrying this case's event
/// is listed under the subject's case, and this case is untouched.
async fn a_message_is_listed_under_the_case_its_subject_names(db: TestDb) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let tracker = RunningTracker::start(with_signatures(&bus, &db)).await?;
    let store = Store::connect(&db.url()).await?;
    let case_id = bus.case_held_by("MOIC", MONDAY).await?;
    projected_to(&store, case_id, 3).await?;
    let elsewhere = CaseId::generate();
    let mut hostile = bus.hostile_from(case_id, "MOIC").await?;
    hostile.truncate(1);
    hostile[0].subject = format!("onedoor.v1.case.{elsewhere}.MOIC._");
    let sequences = bus.publish_hostile(&hostile).await?;
    let listed = eventually("listed under the subject's case", DEADLINE, || async {
        let listed = store.rejected_for_case(&elsewhere.to_string()).await?;
        Ok((!listed.is_empty()).then_some(listed))
    })
    .await?;
    assert_eq!(listed[0].stream_sequence, sequences[0]);
    assert_eq!(listed[0].label.as_deref(), Some("subject_mismatch"));
    assert!(
        store
            .rejected_for_case(&case_id.to_string())
            .await?
            .is_empty()
    );
    assert_eq!(store.case(&elsewhere.to_string()).await?, None);
    assert_eq!(
        store.case(&case_id.to_string()).await?.map(|c| c.version),
        Some(3)
    );
    tracker.stop().await?;
    Ok(())
}
on_both_databases!(a_message_is_listed_under_the_case_its_subject_names);
