//! The projection against a real nats-server and a real database (SQLite file and
//! PostgreSQL): views equal the pure fold, rebuild equals live, restarts and redeliveries count
//! every event once, malformed messages are recorded without wedging the consumer.

use std::sync::Arc;

use async_nats::jetstream::consumer::PullConsumer;
use bytes::Bytes;
use onedoor_bus::StoredEvent;
use onedoor_case::CaseId;
use onedoor_proto::v1;
use onedoor_tracker::view::Projected;
use onedoor_tracker::{
    Applied, DatabaseUrl, ManualClock, Projection, Store, TrackerConfig, TrackerError, rebuild,
};

use crate::histories::{seed, write_random_histories};
use onedoor_testkit::on_both_databases;
use onedoor_testkit::{
    DEADLINE, FRONT, MONDAY, RunningTracker, TestBus, TestDb, assert_rows_equal_the_fold,
    eventually, subject_of, wait_until_projected,
};

fn with_suffix(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// What a SQLite rebuild must not pick up: the half-written new file and journal of a rebuild
/// cut short (garbage, so opening them instead of starting afresh fails), and a write-ahead
/// log beside the old file as a tracker that died would leave it, holding a rejected message
/// the rebuilt database must not show.
async fn leave_debris(url: &DatabaseUrl, path: &std::path::Path) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    std::fs::write(with_suffix(path, ".rebuilding"), b"half a database")?;
    std::fs::write(with_suffix(path, ".rebuilding-journal"), b"half a journal")?;
    let mut old = sqlx::AnyConnection::connect(url.expose()).await?;
    sqlx::query(
        "INSERT INTO rejected_messages (stream_seq, subject, reason, recorded_at_ns) \
         VALUES (999999, 'onedoor.x', 'only in the old log', 0)",
    )
    .execute(&mut old)
    .await?;
    let log = std::fs::read(with_suffix(path, "-wal"))?;
    anyhow::ensure!(!log.is_empty(), "the old database wrote through its log");
    // Closing checkpoints the log into the old file and deletes it; it is put back.
    old.close().await?;
    std::fs::write(with_suffix(path, "-wal"), log)?;
    Ok(())
}

/// Every case's stored rows, for comparing two projections.
async fn snapshot(store: &Store) -> anyhow::Result<Vec<Projected>> {
    let mut all = Vec::new();
    for case_id in store.case_ids().await? {
        all.extend(store.projected(&case_id).await?);
    }
    Ok(all)
}

/// Checks every case's rows and wire view against the pure fold of its stored events.
async fn assert_views_equal_the_fold(
    bus: &TestBus,
    store: &Store,
    tracker: &RunningTracker,
    cases: &[CaseId],
) -> anyhow::Result<()> {
    let mut client = tracker.client().await?;
    for case_id in cases {
        let (expected_rows, expected_view) = bus.expected(*case_id, MONDAY).await?;
        let rows = store.projected(&case_id.to_string()).await?;
        assert_eq!(
            rows.as_ref(),
            Some(&expected_rows),
            "rows of case {case_id}"
        );
        let view = client
            .get_case(v1::GetCaseRequest {
                case_id: case_id.to_string(),
            })
            .await?
            .into_inner();
        assert_eq!(view, expected_view, "GetCase of case {case_id}");

        // The adapter's GetCase builds its view straight from the fold; both must show the
        // case alike. (It lists open tasks by agency code, the contract says oldest hand-off
        // first, so only the order is normalised here.)
        let stored = bus.log.load(*case_id).await?;
        let state = onedoor_case::CaseState::fold(stored.iter().map(|s| &s.event))?
            .ok_or_else(|| anyhow::anyhow!("case {case_id} has events"))?;
        let wire = stored.into_iter().map(|s| s.wire).collect();
        let mut adapters = onedoor_proto::view::case_view(&state, wire, MONDAY);
        let mut ours = view;
        for tasks in [&mut adapters.open_tasks, &mut ours.open_tasks] {
            tasks.sort_by(|a, b| a.handoff_event_id.cmp(&b.handoff_event_id));
        }
        assert_eq!(
            ours, adapters,
            "tracker and adapter views of case {case_id}"
        );
    }
    Ok(())
}

async fn projected_views_equal_the_pure_fold_of_random_histories(db: TestDb) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let (cases, written) = write_random_histories(&bus, 8, seed()).await?;
    let clock = Arc::new(ManualClock::new(MONDAY));
    let tracker = RunningTracker::start(bus.tracker_config(&db, clock)).await?;
    let store = Store::connect(&db.url()).await?;

    wait_until_projected(&bus, &store, &cases).await?;
    assert_views_equal_the_fold(&bus, &store, &tracker, &cases).await?;
    assert_eq!(
        store.event_count().await?,
        written,
        "each event stored once"
    );
    assert!(store.rejected_messages().await?.is_empty());
    tracker.stop().await?;
    Ok(())
}
on_both_databases!(projected_views_equal_the_pure_fold_of_random_histories);

async fn a_rebuild_gives_the_same_views_as_the_live_projection(db: TestDb) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let (cases, _) = write_random_histories(&bus, 6, seed()).await?;
    let clock = Arc::new(ManualClock::new(MONDAY));
    let config = bus.tracker_config(&db, clock);
    let tracker = RunningTracker::start(config.clone()).await?;
    let store = Store::connect(&db.url()).await?;
    wait_until_projected(&bus, &store, &cases).await?;
    let live = snapshot(&store).await?;
    let indexes = store.index_definitions().await?;
    tracker.stop().await?;
    store.close().await;
    if let Some(path) = db.sqlite_path() {
        leave_debris(&db.url(), path).await?;
    }

    let report = rebuild(&config).await?;
    // The SQLite file was replaced: a store opened before would still see the old one.
    let store = Store::connect(&db.url()).await?;
    if let Some(path) = db.sqlite_path() {
        assert!(
            !with_suffix(path, ".rebuilding").exists(),
            "the new file was moved into place"
        );
    }
    assert!(
        store.rejected_messages().await?.is_empty(),
        "nothing of the old database's log reached the new one"
    );
    assert_eq!(
        store.index_definitions().await?,
        indexes,
        "the indexes set aside for the replay are all back"
    );
    assert_eq!(report.messages, bus.stream_messages().await?);
    assert_eq!(report.events, store.event_count().await?);
    assert_eq!(
        snapshot(&store).await?,
        live,
        "rebuilt views equal the live ones"
    );
    // The durable consumer is back, past everything the rebuild stored: nothing to redeliver.
    let js = bus.nats.jetstream().await?;
    let mut consumer: PullConsumer = js
        .get_stream(onedoor_bus::STREAM_NAME)
        .await?
        .get_consumer(&config.consumer)
        .await
        .map_err(|e| anyhow::anyhow!("the tracker's consumer: {e}"))?;
    let info = consumer.info().await?;
    assert_eq!(
        (info.num_pending, info.num_ack_pending),
        (0, 0),
        "the consumer starts after the replay"
    );

    // The tracker started after a rebuild continues from where it stopped: one new event is
    // projected, nothing is applied twice.
    let more = bus
        .open(
            FRONT,
            "construction-permit",
            "R-after",
            "after rebuild",
            MONDAY,
        )
        .await?;
    let tracker = RunningTracker::start(config).await?;
    wait_until_projected(&bus, &store, &[more]).await?;
    assert_eq!(store.event_count().await?, bus.stream_messages().await?);
    assert!(store.rejected_messages().await?.is_empty());
    tracker.stop().await?;
    Ok(())
}
on_both_databases!(a_rebuild_gives_the_same_views_as_the_live_projection);

/// One case opened and projected by a tracker that is stopped again, so the durable consumer
/// exists and nothing has the database open.
async fn project_one_case(
    bus: &TestBus,
    db: &TestDb,
    config: &TrackerConfig,
) -> anyhow::Result<()> {
    let case = bus
        .open(FRONT, "construction-permit", "R-1", "one case", MONDAY)
        .await?;
    let tracker = RunningTracker::start(config.clone()).await?;
    let store = Store::connect(&db.url()).await?;
    wait_until_projected(bus, &store, &[case]).await?;
    tracker.stop().await?;
    store.close().await;
    Ok(())
}

/// A refused rebuild leaves the tracker's durable consumer where it was.
async fn assert_consumer_is_there(bus: &TestBus, name: &str) -> anyhow::Result<()> {
    let js = bus.nats.jetstream().await?;
    js.get_stream(onedoor_bus::STREAM_NAME)
        .await?
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(name)
        .await
        .map_err(|e| anyhow::anyhow!("the tracker's consumer is still there: {e}"))?;
    Ok(())
}

/// A process that still has the SQLite file open (a tracker not stopped) would go on with the
/// old file after the rebuild replaced it: the rebuild refuses, before touching the consumer.
#[tokio::test]
async fn a_rebuild_refuses_a_database_another_process_has_open() -> anyhow::Result<()> {
    use std::io::BufRead as _;
    let bus = TestBus::start().await?;
    let db = TestDb::sqlite();
    let path = db.sqlite_path().expect("a SQLite file").to_path_buf();
    let config = bus.tracker_config(&db, Arc::new(ManualClock::new(MONDAY)));
    project_one_case(&bus, &db, &config).await?;

    // Holds the file open on descriptor 3 and says so once it does.
    let mut holder = std::process::Command::new("sh")
        .args(["-c", "exec 3<\"$1\"; echo open; exec sleep 60", "sh"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut said = String::new();
    std::io::BufReader::new(holder.stdout.take().expect("piped stdout")).read_line(&mut said)?;
    assert_eq!(said.trim(), "open");
    let refused = rebuild(&config).await;
    holder.kill()?;
    holder.wait()?;
    match refused {
        Err(TrackerError::DatabaseInUse { pids, .. }) => assert_eq!(pids, vec![holder.id()]),
        other => panic!("a rebuild of a database held open elsewhere: {other:?}"),
    }
    assert_consumer_is_there(&bus, &config.consumer).await?;

    // Once nothing holds it, the same rebuild goes through.
    let report = rebuild(&config).await?;
    assert_eq!(report.messages, bus.stream_messages().await?);
    Ok(())
}

#[tokio::test]
async fn a_rebuild_refuses_an_in_memory_database_and_keeps_the_consumer() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let db = TestDb::sqlite();
    let mut config = bus.tracker_config(&db, Arc::new(ManualClock::new(MONDAY)));
    project_one_case(&bus, &db, &config).await?;
    config.database = DatabaseUrl::parse("sqlite::memory:")?;
    match rebuild(&config).await {
        Err(TrackerError::Config { why, .. }) => assert!(why.contains("in-memory"), "{why}"),
        other => panic!("a rebuild into memory: {other:?}"),
    }
    assert_consumer_is_there(&bus, &config.consumer).await?;
    Ok(())
}

async fn a_restart_mid_stream_resumes_and_counts_every_event_once(
    db: TestDb,
) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let seed = seed();
    let (first, _) = write_random_histories(&bus, 5, seed).await?;
    let clock = Arc::new(ManualClock::new(MONDAY));
    let config = bus.tracker_config(&db, clock);
    let store = Store::connect(&db.url()).await?;

    // Stop as soon as something is projected: likely in the middle of the backlog.
    let tracker = RunningTracker::start(config.clone()).await?;
    eventually("some events projected", DEADLINE, || async {
        let n = store.event_count().await?;
        Ok(if n > 0 {
            Ok(())
        } else {
            Err(format!("{n} events"))
        })
    })
    .await?;
    tracker.stop().await?;

    // More is written while the tracker is down, then it comes back.
    let (second, _) = write_random_histories(&bus, 3, seed.wrapping_add(1)).await?;
    let tracker = RunningTracker::start(config).await?;
    let all: Vec<CaseId> = first.iter().chain(&second).copied().collect();
    wait_until_projected(&bus, &store, &all).await?;
    assert_eq!(
        store.event_count().await?,
        bus.stream_messages().await?,
        "every event stored exactly once"
    );
    assert_views_equal_the_fold(&bus, &store, &tracker, &all).await?;
    tracker.stop().await?;
    Ok(())
}
on_both_databases!(a_restart_mid_stream_resumes_and_counts_every_event_once);

async fn a_crash_mid_stream_loses_nothing_and_doubles_nothing(db: TestDb) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let seed = seed();
    let (first, written) = write_random_histories(&bus, 8, seed).await?;
    let clock = Arc::new(ManualClock::new(MONDAY));
    let config = bus.tracker_config(&db, clock);
    let store = Store::connect(&db.url()).await?;

    let tracker = RunningTracker::start(config.clone()).await?;
    eventually("some events projected", DEADLINE, || async {
        let n = store.event_count().await?;
        Ok(if n > 0 {
            Ok(())
        } else {
            Err(format!("{n} events"))
        })
    })
    .await?;
    tracker.crash().await;
    let at_crash = store.event_count().await?;
    eprintln!("crashed with {at_crash} of {written} events stored");

    let (second, _) = write_random_histories(&bus, 2, seed.wrapping_add(1)).await?;
    let tracker = RunningTracker::start(config).await?;
    let all: Vec<CaseId> = first.iter().chain(&second).copied().collect();
    wait_until_projected(&bus, &store, &all).await?;
    assert_eq!(store.event_count().await?, bus.stream_messages().await?);
    assert_views_equal_the_fold(&bus, &store, &tracker, &all).await?;
    assert!(store.rejected_messages().await?.is_empty());
    tracker.stop().await?;
    Ok(())
}
on_both_databases!(a_crash_mid_stream_loses_nothing_and_doubles_nothing);

async fn redelivered_duplicate_and_out_of_order_events_change_nothing(
    db: TestDb,
) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let (cases, _) = write_random_histories(&bus, 4, seed()).await?;
    let mut events: Vec<StoredEvent> = Vec::new();
    for case_id in &cases {
        events.extend(bus.log.load(*case_id).await?);
    }
    let store = Store::connect(&db.url()).await?;
    let projection = Projection::new(store.clone(), tokio::sync::broadcast::channel(4).0);

    // Deliver everything backwards (each case's versions arrive newest first), then everything
    // again in order, then a few once more: what a crash between commit and ack and a
    // redelivery overtaking newer messages look like.
    for stored in events.iter().rev() {
        let applied = projection
            .handle(stored.sequence, &subject_of(stored), stored.payload.clone())
            .await?;
        // Until its opening arrives, nothing of a case chains: quarantined for now, and
        // verified again, in stream order, as each earlier message arrives late.
        if stored.event.version > 1 {
            assert!(
                matches!(
                    applied,
                    Applied::Rejected {
                        label: "broken_chain",
                        ..
                    }
                ),
                "version {} cannot chain yet: {applied:?}",
                stored.event.version
            );
        }
    }
    let once = snapshot(&store).await?;
    for stored in events.iter().chain(events.iter().take(5)) {
        let applied = projection
            .handle(stored.sequence, &subject_of(stored), stored.payload.clone())
            .await?;
        assert_eq!(applied, Applied::Duplicate);
    }
    assert_eq!(
        snapshot(&store).await?,
        once,
        "redeliveries changed nothing"
    );
    assert_eq!(store.event_count().await?, events.len() as u64);
    assert!(store.rejected_messages().await?.is_empty());
    assert_rows_equal_the_fold(
        &bus,
        &store,
        &cases,
        "equals the fold despite the order it arrived in",
    )
    .await
}
on_both_databases!(redelivered_duplicate_and_out_of_order_events_change_nothing);

async fn a_malformed_message_is_recorded_and_does_not_wedge_the_consumer(
    db: TestDb,
) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let before = bus
        .open(FRONT, "construction-permit", "R-1", "before", MONDAY)
        .await?;
    let js = bus.nats.jetstream().await?;
    let garbage = js
        .publish(
            format!("onedoor.v1.case.{}.MOIC._", CaseId::generate()),
            Bytes::from_static(b"not protobuf \x00\xff"),
        )
        .await?
        .await?;
    let after = bus
        .open(FRONT, "construction-permit", "R-2", "after", MONDAY)
        .await?;

    let clock = Arc::new(ManualClock::new(MONDAY));
    let tracker = RunningTracker::start(bus.tracker_config(&db, clock)).await?;
    let store = Store::connect(&db.url()).await?;
    wait_until_projected(&bus, &store, &[before, after]).await?;
    let rejected = eventually("the malformed message recorded", DEADLINE, || async {
        let rejected = store.rejected_messages().await?;
        Ok(if rejected.is_empty() {
            Err("none yet".to_owned())
        } else {
            Ok(rejected)
        })
    })
    .await?;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].stream_sequence, garbage.sequence);
    assert!(
        rejected[0].reason.contains("not a CaseEvent")
            || rejected[0].reason.contains("not a valid"),
        "{}",
        rejected[0].reason
    );
    tracker.stop().await?;
    Ok(())
}
on_both_databases!(a_malformed_message_is_recorded_and_does_not_wedge_the_consumer);

/// The subject, which the broker checks against the writer's credentials, says which case a
/// message is about: a payload naming another case (or writer) is rejected, not projected.
async fn a_payload_for_another_case_than_its_subject_is_rejected(db: TestDb) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let case = bus
        .open(FRONT, "construction-permit", "R-1", "one case", MONDAY)
        .await?;
    let stored = bus.log.load(case).await?.remove(0);
    let store = Store::connect(&db.url()).await?;
    let projection = Projection::new(store.clone(), tokio::sync::broadcast::channel(1).0);
    let elsewhere = format!("onedoor.v1.case.{}.{FRONT}._", CaseId::generate());
    let applied = projection
        .handle(stored.sequence, &elsewhere, stored.payload.clone())
        .await?;
    assert!(
        matches!(
            &applied,
            Applied::Rejected {
                label: "subject_mismatch",
                ..
            }
        ),
        "{applied:?}"
    );
    let applied = projection
        .handle(
            stored.sequence,
            &subject_of(&stored),
            stored.payload.clone(),
        )
        .await?;
    assert!(matches!(applied, Applied::Projected { .. }), "{applied:?}");
    Ok(())
}
on_both_databases!(a_payload_for_another_case_than_its_subject_is_rejected);
