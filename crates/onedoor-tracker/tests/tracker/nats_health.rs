//! The tracker's health follows NATS as well as its database: a view that stopped moving is
//! reported, a frozen server included (its socket stays open, so only a round trip tells).

use std::sync::Arc;
use std::time::{Duration, Instant};

use onedoor_testkit::{MONDAY, RunningTracker, TestBus, TestDb};
use onedoor_tracker::ManualClock;
use tonic_health::pb::health_check_response::ServingStatus;

/// docs/jetstream.md §13 promises about 4 s; the margin is for a loaded two-core machine.
const NOTICED_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_while_nats_is_frozen_and_serving_after_it_thaws()
-> anyhow::Result<()> {
    let db = TestDb::sqlite();
    let mut bus = TestBus::start().await?;
    let tracker =
        RunningTracker::start(bus.tracker_config(&db, Arc::new(ManualClock::new(MONDAY)))).await?;
    tracker.wait_for_health(ServingStatus::Serving).await?;

    bus.nats.freeze()?;
    let frozen = Instant::now();
    tracker.wait_for_health(ServingStatus::NotServing).await?;
    let noticed = frozen.elapsed();
    assert!(noticed < NOTICED_WITHIN, "noticed only after {noticed:?}");
    bus.nats.thaw()?;
    let thawed = Instant::now();
    tracker.wait_for_health(ServingStatus::Serving).await?;
    let recovered = thawed.elapsed();
    assert!(
        recovered < NOTICED_WITHIN,
        "recovered only after {recovered:?}"
    );
    eprintln!("tracker: frozen NATS noticed after {noticed:?}; recovery after {recovered:?}");
    tracker.stop().await
}
