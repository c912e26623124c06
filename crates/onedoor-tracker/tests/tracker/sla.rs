//! Time limits: overdue is decided at the moment of the question (the test moves the clock; no
//! event arrives), from due times the case rules fixed in working days, so weekends and public
//! holidays never count.

use std::sync::Arc;

use onedoor_proto::v1;
use onedoor_tracker::{ManualClock, Store};
use time::OffsetDateTime;
use time::macros::datetime;

use onedoor_testkit::on_both_databases;
use onedoor_testkit::{FRONT, RunningTracker, TestBus, TestDb, code, wait_until_projected};

/// Friday 27 November 2026, mid-morning in Vientiane. Three working days later is Thursday
/// 3 December: Saturday, Sunday and National Day (Wednesday 2 December) do not count.
const HANDED_OFF: OffsetDateTime = datetime!(2026-11-27 10:00 +07:00);
const DUE: OffsetDateTime = datetime!(2026-12-03 23:59:59 +07:00);

async fn overdue_is_right_across_weekends_and_holidays(db: TestDb) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let case_id = bus
        .open(FRONT, "construction-permit", "R-77", "a house", HANDED_OFF)
        .await?;
    let handed = bus
        .hand_off(case_id, FRONT, "MPWT", Some(3), HANDED_OFF)
        .await?;
    let onedoor_case::EventBody::HandedOff { due_at, .. } = handed.event.body else {
        anyhow::bail!("not a hand-off");
    };
    assert_eq!(due_at, DUE, "the rules skip the weekend and National Day");

    let clock = Arc::new(ManualClock::new(HANDED_OFF));
    let tracker = RunningTracker::start(bus.tracker_config(&db, clock.clone())).await?;
    let store = Store::connect(&db.url()).await?;
    wait_until_projected(&bus, &store, &[case_id]).await?;
    let mut client = tracker.client().await?;
    let calendar = &bus.registry.calendar;
    let mpwt = code("MPWT");

    // (moment, overdue?, working days late)
    let moments = [
        // Monday 30 Nov: three calendar days after the hand-off, but only one working day.
        (datetime!(2026-11-30 12:00 +07:00), false, 0),
        // National Day: a holiday, not counted.
        (datetime!(2026-12-02 16:00 +07:00), false, 0),
        (datetime!(2026-12-03 23:59:58 +07:00), false, 0),
        // One second after the due time: overdue at once, no event needed.
        (datetime!(2026-12-04 00:00:00 +07:00), true, 1),
        // The weekend after: still one working day late.
        (datetime!(2026-12-05 11:00 +07:00), true, 1),
        (datetime!(2026-12-06 18:00 +07:00), true, 1),
        // Monday: two.
        (datetime!(2026-12-07 08:00 +07:00), true, 2),
    ];
    for (now, overdue, late) in moments {
        clock.set(now);
        let view = client
            .get_case(v1::GetCaseRequest {
                case_id: case_id.to_string(),
            })
            .await?
            .into_inner();
        assert_eq!(view.overdue, overdue, "case overdue at {now}");
        assert_eq!(view.open_tasks.len(), 1);
        assert_eq!(view.open_tasks[0].overdue, overdue, "task overdue at {now}");

        let listed = client
            .list_cases(v1::ListCasesRequest {
                overdue_only: true,
                ..Default::default()
            })
            .await?
            .into_inner()
            .cases;
        assert_eq!(listed.len(), usize::from(overdue), "overdue list at {now}");

        let tasks = store.agency_tasks(&mpwt, calendar, now).await?;
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].overdue, overdue, "agency view at {now}");
        assert_eq!(
            tasks[0].working_days_late, late,
            "working days late at {now}"
        );

        let overdue_list = store.overdue_tasks(None, calendar, now).await?;
        assert_eq!(overdue_list.len(), usize::from(overdue));
        let counts = store.overdue_counts(now).await?;
        assert_eq!(
            counts.get("MPWT").copied().unwrap_or(0),
            u64::from(overdue),
            "breach count at {now}"
        );
    }

    // Completing the task ends the breach, whatever the clock says.
    bus.accept(case_id, "MPWT", datetime!(2026-12-07 09:00 +07:00))
        .await?;
    bus.complete(case_id, "MPWT", datetime!(2026-12-07 10:00 +07:00))
        .await?;
    wait_until_projected(&bus, &store, &[case_id]).await?;
    let view = client
        .get_case(v1::GetCaseRequest {
            case_id: case_id.to_string(),
        })
        .await?
        .into_inner();
    assert!(!view.overdue);
    assert!(store.overdue_counts(clock_now(&clock)).await?.is_empty());
    tracker.stop().await?;
    Ok(())
}
on_both_databases!(overdue_is_right_across_weekends_and_holidays);

fn clock_now(clock: &ManualClock) -> OffsetDateTime {
    onedoor_tracker::Clock::now(clock)
}
