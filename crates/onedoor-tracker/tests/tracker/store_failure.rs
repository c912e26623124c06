//! The store failing under a running tracker: a full disk, a read-only file system, its
//! PostgreSQL sessions ended. Nothing the tracker did not commit is acknowledged, its health
//! says NOT_SERVING while it fails, and once the store recovers every event is in its views,
//! without a rebuild.
//!
//! The SQLite test mounts a small tmpfs for the database (it needs root, as CI runs it;
//! elsewhere it skips and says why). A read-only remount is not tested: Linux refuses it
//! (EBUSY) while the tracker has the database open for writing.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::consumer::Info;
use onedoor_case::CaseId;
use onedoor_testkit::{
    DEADLINE, FRONT, MONDAY, RunningTracker, TestBus, TestDb, assert_rows_equal_the_fold,
    eventually, throughout, wait_until_projected,
};
use onedoor_tracker::{DatabaseUrl, ManualClock, Store, TrackerConfig};

use crate::tmpfs::Tmpfs;
use sqlx::Connection as _;
use tonic_health::pb::health_check_response::ServingStatus;

async fn consumer(bus: &TestBus) -> anyhow::Result<Info> {
    let stream = bus.js.get_stream(onedoor_bus::STREAM_NAME).await?;
    Ok(stream.consumer_info("tracker").await?)
}

/// Opens `count` cases at the front office: one event each.
async fn open_cases(bus: &TestBus, count: usize) -> anyhow::Result<Vec<CaseId>> {
    let mut cases = Vec::with_capacity(count);
    for n in 0..count {
        let summary = format!("shop {n}");
        cases.push(
            bus.open(FRONT, "enterprise-registration", "R-1", &summary, MONDAY)
                .await?,
        );
    }
    Ok(cases)
}

/// The stream sequences the SQLite file at `path` holds (events and rejected messages), read
/// through a connection of our own that cannot write.
async fn stored_sequences(path: &Path) -> anyhow::Result<BTreeSet<u64>> {
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
    let sequences: Vec<i64> = sqlx::query_scalar(
        "SELECT stream_seq FROM events UNION SELECT stream_seq FROM rejected_messages",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    Ok(sequences.into_iter().map(i64::unsigned_abs).collect())
}

/// Fails if the consumer's ack floor is past a message the database does not hold; returns
/// the floor.
async fn assert_acked_were_stored(bus: &TestBus, path: &Path) -> anyhow::Result<u64> {
    // The floor first: what was acked by then was committed by then.
    let floor = consumer(bus).await?.ack_floor.stream_sequence;
    let stored = stored_sequences(path).await?;
    let missing: Vec<u64> = (1..=floor).filter(|s| !stored.contains(s)).collect();
    anyhow::ensure!(
        missing.is_empty(),
        "acked through {floor} but never stored {missing:?}"
    );
    Ok(floor)
}

/// Waits until every case is projected, then checks each event is stored once and the rows
/// are the fold of the stream.
async fn assert_every_event_projected_once(
    bus: &TestBus,
    store: &Store,
    cases: &[CaseId],
    when: &str,
) -> anyhow::Result<()> {
    wait_until_projected(bus, store, cases).await?;
    let written = bus.stream_messages().await?;
    assert_eq!(
        store.event_count().await?,
        written,
        "every event stored once, {when}"
    );
    assert_rows_equal_the_fold(bus, store, cases, when).await
}

/// How long the tracker is watched failing: several `ack_wait`s (1 s in tests) and several
/// retries, each a moment an unfounded ack would show.
const FAILING_WATCH: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_acks_until_space_returns_and_loses_nothing() -> anyhow::Result<()> {
    let Some(mut tmpfs) = Tmpfs::mount("4m")? else {
        return Ok(());
    };
    let bus = TestBus::start().await?;
    let path = tmpfs.path().join("tracker.db");
    let mut config = TrackerConfig::new(
        bus.nats.url(),
        DatabaseUrl::sqlite_file(&path),
        bus.registry.clone(),
    );
    config.clock = Arc::new(ManualClock::new(MONDAY));
    config.ack_wait = Duration::from_secs(1);
    let tracker = RunningTracker::start(config).await?;

    let mut cases = open_cases(&bus, 20).await?;
    let before_fault = bus.stream_messages().await?;
    eventually("the first events acked", DEADLINE, || async {
        // The tracker creates its consumer once it reaches NATS: until then, "not yet".
        Ok(match consumer(&bus).await {
            Ok(info) if info.ack_floor.stream_sequence == before_fault => Ok(()),
            Ok(info) => Err(format!("ack floor {}", info.ack_floor.stream_sequence)),
            Err(error) => Err(error.to_string()),
        })
    })
    .await?;

    // The fill leaves no page free; the tracker's next commits fail.
    tmpfs.fill()?;
    cases.extend(open_cases(&bus, 200).await?);
    tracker.wait_for_health(ServingStatus::NotServing).await?;
    // Checked over a stated window (FAILING_WATCH): there is no later event that would prove
    // "no ack happened" sooner.
    let floor = throughout(FAILING_WATCH, || assert_acked_were_stored(&bus, &path)).await?;
    let written = bus.stream_messages().await?;
    assert!(floor < written, "acked everything ({floor}) while failing");
    assert_eq!(tracker.health().await?, ServingStatus::NotServing);

    tmpfs.free()?;
    tracker.wait_for_health(ServingStatus::Serving).await?;
    let store = Store::connect(&DatabaseUrl::sqlite_file(&path)).await?;
    assert_every_event_projected_once(&bus, &store, &cases, "after the disk had space again")
        .await?;
    eventually("every event acked", DEADLINE, || async {
        let info = consumer(&bus).await?;
        let done = info.ack_floor.stream_sequence == written && info.num_ack_pending == 0;
        Ok(done.then_some(()).ok_or(format!("{:?}", info.ack_floor)))
    })
    .await?;
    store.close().await;
    tracker.stop().await?;
    Ok(())
}

/// Ends every session on the test database but `admin`'s own: the tracker's.
async fn end_tracker_sessions(admin: &mut sqlx::AnyConnection) -> anyhow::Result<u64> {
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut *admin)
    .await?;
    Ok(ended.into_iter().filter(|ended| *ended).count() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_ended_mid_stream_lose_nothing() -> anyhow::Result<()> {
    let Some(db) = TestDb::postgres().await else {
        return Ok(());
    };
    let bus = TestBus::start().await?;
    let tracker =
        RunningTracker::start(bus.tracker_config(&db, Arc::new(ManualClock::new(MONDAY)))).await?;
    // Started (its migrations done) before any session is ended.
    tracker.wait_for_health(ServingStatus::Serving).await?;
    let mut admin = sqlx::AnyConnection::connect(db.url().expose()).await?;

    // The tracker's sessions are ended every 20 ms while events arrive, so some end in the
    // middle of its transactions.
    let written_all = AtomicBool::new(false);
    let writer = async {
        let cases = open_cases(&bus, 300).await;
        written_all.store(true, Ordering::Release);
        cases
    };
    let killer = async {
        let mut ended = 0;
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        while !written_all.load(Ordering::Acquire) {
            pace.tick().await;
            ended += end_tracker_sessions(&mut admin).await?;
        }
        anyhow::Ok(ended)
    };
    let (cases, ended) = tokio::join!(writer, killer);
    let (cases, ended) = (cases?, ended?);
    eprintln!(
        "ended {ended} tracker sessions while {} events arrived",
        cases.len()
    );
    anyhow::ensure!(
        ended > 0,
        "no tracker session was ended: the test proved nothing"
    );
    admin.close().await?;

    let store = Store::connect(&db.url()).await?;
    assert_every_event_projected_once(&bus, &store, &cases, "after sessions were ended").await?;
    tracker.wait_for_health(ServingStatus::Serving).await?;
    store.close().await;
    tracker.stop().await.context("stopping the tracker")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_held_longer_than_ack_wait_is_not_redelivered() -> anyhow::Result<()> {
    let Some(db) = TestDb::postgres().await else {
        return Ok(());
    };
    let bus = TestBus::start().await?;
    let config = bus.tracker_config(&db, Arc::new(ManualClock::new(MONDAY)));
    let ack_wait = config.ack_wait;
    let tracker = RunningTracker::start(config).await?;
    let store = Store::connect(&db.url()).await?;
    let mut cases = open_cases(&bus, 1).await?;
    wait_until_projected(&bus, &store, &cases).await?;

    // Another session holds the events table, so the tracker's next write waits on it.
    let mut admin = sqlx::AnyConnection::connect(db.url().expose()).await?;
    let mut lock = admin.begin().await?;
    sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await?;
    cases.extend(open_cases(&bus, 1).await?);
    eventually("the tracker to hold the new event", DEADLINE, || async {
        let info = consumer(&bus).await?;
        Ok((info.num_ack_pending == 1)
            .then_some(())
            .ok_or(format!("{} pending", info.num_ack_pending)))
    })
    .await?;
    // Over three ack_waits (a stated window), the held message is never redelivered.
    throughout(3 * ack_wait, || async {
        let info = consumer(&bus).await?;
        assert_eq!(info.num_redelivered, 0, "redelivered while held");
        assert_eq!(info.num_ack_pending, 1, "acked while held");
        Ok(())
    })
    .await?;

    lock.commit().await?;
    admin.close().await?;
    assert_every_event_projected_once(&bus, &store, &cases, "after the lock was released").await?;
    store.close().await;
    tracker.stop().await?;
    Ok(())
}
