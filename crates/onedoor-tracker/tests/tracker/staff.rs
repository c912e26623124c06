//! What staff see beyond one case: an agency's tasks, statistics, and stuck deliveries read
//! from the inbox's `ONEDOOR_STUCK` bucket.

use std::sync::Arc;

use async_nats::jetstream::kv;
use onedoor_tracker::store::{OverdueFilter, OverdueOrder};
use onedoor_tracker::stuck::{STUCK_BUCKET, StuckRecord, stuck_deliveries};
use onedoor_tracker::{ManualClock, Store};
use time::Duration as Span;
use time::macros::datetime;

use onedoor_testkit::on_both_databases;
use onedoor_testkit::{
    FRONT, MONDAY, OTHER_FRONT, RunningTracker, TestBus, TestDb, code, wait_until_projected,
};

async fn agency_views_and_statistics_follow_the_cases(db: TestDb) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let t = |hours| MONDAY + Span::hours(hours);
    // Two construction permits through MPWT (held 2 h and 6 h), one still open at MOF.
    let first = bus
        .open(FRONT, "construction-permit", "P-1", "house", t(0))
        .await?;
    bus.hand_off(first, FRONT, "MPWT", None, t(1)).await?;
    bus.complete_after_accept(first, "MPWT", t(2), t(3)).await?;
    bus.resolve(first, FRONT, t(4)).await?;
    let second = bus
        .open(FRONT, "construction-permit", "P-2", "shop", t(24))
        .await?;
    bus.hand_off(second, FRONT, "MPWT", None, t(25)).await?;
    bus.complete_after_accept(second, "MPWT", t(26), t(31))
        .await?;
    bus.hand_off(second, FRONT, "MOF", Some(1), t(32)).await?;

    let clock = Arc::new(ManualClock::new(t(40)));
    let tracker = RunningTracker::start(bus.tracker_config(&db, clock)).await?;
    let store = Store::connect(&db.url()).await?;
    wait_until_projected(&bus, &store, &[first, second]).await?;
    let calendar = &bus.registry.calendar;

    let mof = store.agency_tasks(&code("MOF"), calendar, t(40)).await?;
    assert_eq!(mof.len(), 1);
    assert_eq!(mof[0].task.case_id, second.to_string());
    assert_eq!(mof[0].citizen_ref, "P-2");
    assert!(!mof[0].overdue);
    assert!(
        store
            .agency_tasks(&code("MPWT"), calendar, t(40))
            .await?
            .is_empty()
    );
    // Due at the end of Wednesday (handed off Tuesday): overdue on Thursday morning.
    let thursday = datetime!(2026-11-26 08:00 +07:00);
    let overdue = store
        .overdue_tasks(Some(&code("MOF")), calendar, thursday)
        .await?;
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].working_days_late, 1);
    assert!(
        store
            .overdue_tasks(Some(&code("MPWT")), calendar, thursday)
            .await?
            .is_empty()
    );

    let days = store.daily_counts(calendar.utc_offset).await?;
    let monday = days
        .iter()
        .find(|d| d.date == MONDAY.date())
        .expect("monday");
    assert_eq!((monday.opened, monday.resolved), (1, 1));
    let tuesday = days
        .iter()
        .find(|d| d.date == t(24).date())
        .expect("tuesday");
    assert_eq!((tuesday.opened, tuesday.resolved), (1, 0));

    let held = store.median_time_held().await?;
    let mpwt = held
        .iter()
        .find(|h| h.agency == "MPWT" && h.service == "construction-permit")
        .expect("MPWT construction permits");
    assert_eq!(mpwt.tasks, 2);
    // Held 2 h and 6 h: the lower median of two is the shorter.
    assert_eq!(mpwt.median, Span::hours(2));
    assert!(
        held.iter().all(|h| h.agency != "MOF"),
        "open tasks are not in the median"
    );
    tracker.stop().await?;
    Ok(())
}
on_both_databases!(agency_views_and_statistics_follow_the_cases);

async fn the_overdue_list_is_filtered_ordered_and_paged_by_the_database(
    db: TestDb,
) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let t = |hours| MONDAY + Span::hours(hours);
    let permit = bus
        .open(FRONT, "construction-permit", "P-1", "house", t(0))
        .await?;
    bus.hand_off(permit, FRONT, "MOF", Some(1), t(1)).await?;
    let enterprise = bus
        .open(FRONT, "enterprise-registration", "E-1", "shop", t(0))
        .await?;
    bus.hand_off(enterprise, FRONT, "MOIC", Some(2), t(2))
        .await?;
    // Due the same day as the first permit: the case id decides between them.
    let pakse = bus
        .open(OTHER_FRONT, "construction-permit", "P-2", "hotel", t(0))
        .await?;
    bus.hand_off(pakse, OTHER_FRONT, "MOF", Some(1), t(3))
        .await?;
    let not_late = bus
        .open(FRONT, "construction-permit", "P-3", "barn", t(0))
        .await?;
    bus.hand_off(not_late, FRONT, "MOF", Some(10), t(4)).await?;

    let clock = Arc::new(ManualClock::new(t(0)));
    let tracker = RunningTracker::start(bus.tracker_config(&db, clock)).await?;
    let store = Store::connect(&db.url()).await?;
    wait_until_projected(&bus, &store, &[permit, enterprise, pakse, not_late]).await?;
    let calendar = &bus.registry.calendar;
    let friday = datetime!(2026-11-27 10:00 +07:00);

    let everyone = OverdueFilter::default();
    let page =
        |filter: OverdueFilter, order: OverdueOrder, descending: bool, offset: u64, limit: u64| {
            let store = store.clone();
            async move {
                let rows = store
                    .overdue_page(&filter, order, descending, offset, limit, calendar, friday)
                    .await?;
                anyhow::Ok(rows.into_iter().map(|r| r.task.case_id).collect::<Vec<_>>())
            }
        };
    let mut same_day = [permit.to_string(), pakse.to_string()];
    same_day.sort();
    let enterprise = enterprise.to_string();

    assert_eq!(store.overdue_count(&everyone, friday).await?, 3);
    assert_eq!(
        page(everyone.clone(), OverdueOrder::Due, false, 0, 10).await?,
        [
            same_day[0].as_str(),
            same_day[1].as_str(),
            enterprise.as_str()
        ]
    );
    // Descending is the exact reverse: latest due first, equally due tasks by case id
    // descending.
    assert_eq!(
        page(everyone.clone(), OverdueOrder::Due, true, 0, 10).await?,
        [
            enterprise.as_str(),
            same_day[1].as_str(),
            same_day[0].as_str()
        ]
    );
    // The second page of one row each.
    assert_eq!(
        page(everyone.clone(), OverdueOrder::Due, false, 1, 1).await?,
        [same_day[1].as_str()]
    );
    assert_eq!(
        page(everyone.clone(), OverdueOrder::HandedOff, true, 0, 10).await?,
        [pakse.to_string(), enterprise.clone(), permit.to_string()]
    );
    let mut by_case = vec![permit.to_string(), pakse.to_string(), enterprise.clone()];
    by_case.sort();
    assert_eq!(
        page(everyone.clone(), OverdueOrder::Case, false, 0, 10).await?,
        by_case
    );

    let mof = OverdueFilter {
        agency: Some(code("MOF")),
        ..OverdueFilter::default()
    };
    assert_eq!(store.overdue_count(&mof, friday).await?, 2);
    assert_eq!(page(mof, OverdueOrder::Due, false, 0, 10).await?, same_day);
    let enterprises = OverdueFilter {
        service: Some(onedoor_case::ServiceCode::parse("enterprise-registration")?),
        ..OverdueFilter::default()
    };
    assert_eq!(store.overdue_count(&enterprises, friday).await?, 1);
    let from_pakse = OverdueFilter {
        origin: Some(code(OTHER_FRONT)),
        ..OverdueFilter::default()
    };
    assert_eq!(store.overdue_count(&from_pakse, friday).await?, 1);
    assert_eq!(
        page(from_pakse, OverdueOrder::Due, false, 0, 10).await?,
        [pakse.to_string()]
    );
    tracker.stop().await?;
    Ok(())
}
on_both_databases!(the_overdue_list_is_filtered_ordered_and_paged_by_the_database);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_deliveries_are_read_from_the_inbox_bucket() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let js = bus.nats.jetstream().await?;
    assert!(
        stuck_deliveries(&js).await?.deliveries.is_empty(),
        "no bucket yet: nothing stuck"
    );

    let bucket = js
        .create_key_value(kv::Config {
            bucket: STUCK_BUCKET.into(),
            ..Default::default()
        })
        .await?;
    // The record the inbox writes, in its documented JSON form.
    let later = serde_json::json!({
        "agency": "MOF", "case_id": "01JD8X3Q6V9K2M4N5P7R8S9T0V", "event_id": "01JD8X3Q6V9K2M4N5P7R8S9T0W",
        "stream_sequence": 42, "deliveries": 5, "recorded_at": "2026-11-24T10:00:00+07:00",
        "reason": "max deliveries reached"
    });
    let earlier = serde_json::json!({
        "agency": "MOIC", "case_id": "01JD8X3Q6V9K2M4N5P7R8S9T0X", "event_id": "01JD8X3Q6V9K2M4N5P7R8S9T0Y",
        "stream_sequence": 7, "deliveries": 5, "recorded_at": "2026-11-23T10:00:00Z",
        "reason": "max deliveries reached"
    });
    bucket
        .put("MOF.42", serde_json::to_vec(&later)?.into())
        .await?;
    bucket
        .put("MOIC.7", serde_json::to_vec(&earlier)?.into())
        .await?;
    bucket.put("MOPS.9", "{not json".into()).await?;
    // MOIC may write only under `MOIC.`: a record there naming MOF is not MOF's alarm.
    let claims_mof = serde_json::json!({
        "agency": "MOF", "case_id": "", "event_id": "", "stream_sequence": 43, "deliveries": 1,
        "recorded_at": "2026-11-24T11:00:00Z", "reason": "max deliveries reached"
    });
    bucket
        .put("MOIC.43", serde_json::to_vec(&claims_mof)?.into())
        .await?;

    let report = stuck_deliveries(&js).await?;
    let found: Vec<(&str, u64)> = report
        .deliveries
        .iter()
        .map(|d: &StuckRecord| (d.agency.as_str(), d.stream_sequence))
        .collect();
    assert_eq!(found, [("MOIC", 7), ("MOF", 42)], "oldest recorded first");
    let mut unreadable: Vec<&str> = report.unreadable.iter().map(|u| u.key.as_str()).collect();
    unreadable.sort_unstable();
    assert_eq!(unreadable, ["MOIC.43", "MOPS.9"]);
    Ok(())
}
