//! Agency inboxes against a real nats-server: addressing, redelivery with backoff, acks that
//! survive restarts, release on disconnect, the in-flight window, malformed messages, and the
//! consumer's idempotent set-up.

use std::time::Duration;

use async_nats::jetstream::consumer;
use onedoor_bus::inbox::{InboxEnsured, ensure_inbox_outcome};
use onedoor_bus::{
    BusError, InFlight, Inbox, InboxDelivery, InboxSettings, ensure_inbox, list_stuck,
};
use onedoor_case::{AgencyCode, CaseId, EventId};
use onedoor_testkit::{DEADLINE, TestBus, eventually};
use tokio::time::Instant;

/// What these tests ask of the bus beyond the shared fixture.
trait InboxBus {
    async fn consumer_info(&self, agency: &str) -> anyhow::Result<consumer::Info>;
    /// Waits until the client has reconnected after a restart.
    async fn wait_connected(&self) -> anyhow::Result<()>;
}

impl InboxBus for TestBus {
    async fn consumer_info(&self, agency: &str) -> anyhow::Result<consumer::Info> {
        let stream = self.js.get_stream("ONEDOOR").await?;
        Ok(stream.consumer_info(format!("inbox-{agency}")).await?)
    }

    async fn wait_connected(&self) -> anyhow::Result<()> {
        eventually("the client to reconnect", DEADLINE, || async {
            let state = self.js.client().connection_state();
            Ok((state == async_nats::connection::State::Connected).then_some(()))
        })
        .await
    }
}

/// Waits (with a deadline) until the server has written `agency`'s inbox ack floor at or past
/// `stream_sequence` to its store.
///
/// Why: nats-server writes consumer state shortly *after* it confirms an ack (measured on
/// 2.15.1: a SIGKILL within 50 ms of a confirmed double ack lost it in 3 of 3 runs, 100 ms
/// later in 0 of 3). An ack caught in that window is delivered once more after the crash:
/// at least once, de-duplicated by event id. These tests are about acks that reached the store,
/// so they wait for the ack floor in the consumer's state file (`o.dat`: magic, version 2, then
/// uvarints ack floor consumer, ack floor stream, ...).
async fn wait_ack_floor_on_disk(
    bus: &TestBus,
    agency: &str,
    stream_sequence: u64,
) -> anyhow::Result<()> {
    let path = bus.nats.store_dir().join(format!(
        "jetstream/$G/streams/ONEDOOR/obs/inbox-{agency}/o.dat"
    ));
    let what = format!("ack floor {stream_sequence} in {}", path.display());
    eventually(&what, DEADLINE, || async {
        let floor = std::fs::read(&path)
            .ok()
            .and_then(|bytes| stored_ack_floor(&bytes));
        Ok(match floor {
            Some(floor) if floor >= stream_sequence => Ok(()),
            _ => Err(format!("ack floor {floor:?}")),
        })
    })
    .await
}

fn stored_ack_floor(bytes: &[u8]) -> Option<u64> {
    fn uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
        let mut value = 0u64;
        for (i, byte) in bytes.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some((value, i + 1));
            }
        }
        None
    }
    if bytes.get(1) != Some(&2) {
        return None; // not the version-2 state this was written against
    }
    let (_, used) = uvarint(bytes.get(2..)?)?;
    let (stream_floor, _) = uvarint(bytes.get(2 + used..)?)?;
    Some(stream_floor)
}

fn moic() -> AgencyCode {
    AgencyCode::parse("MOIC").expect("valid code")
}

/// Short steps so redelivery is observable in a test; long enough not to fire by accident
/// where a test does not want it.
fn settings(backoff_ms: &[u64]) -> InboxSettings {
    InboxSettings {
        max_in_flight: 16,
        max_deliver: 20,
        backoff: backoff_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect(),
        pull_expires: Duration::from_millis(500),
        release_delay_cap: Duration::from_millis(100),
    }
}

async fn next_within(inbox: &mut Inbox, limit: Duration) -> anyhow::Result<InboxDelivery> {
    match tokio::time::timeout(limit, inbox.next()).await {
        Ok(delivery) => Ok(delivery?),
        Err(_) => anyhow::bail!("no delivery within {limit:?}"),
    }
}

fn event_id(delivery: &InboxDelivery) -> EventId {
    delivery.stored.event.event_id
}

#[tokio::test]
async fn events_addressed_to_an_agency_arrive_in_its_inbox_and_others_do_not() -> anyhow::Result<()>
{
    let bus = TestBus::start().await?;
    let first = bus.hand_off_new_case("MOIC").await?;
    let elsewhere = bus.hand_off_new_case("MOF").await?;
    let second = bus.hand_off_new_case("MOIC").await?;

    let mut inbox = Inbox::open(bus.js.clone(), &moic(), &settings(&[10_000])).await?;
    let a = next_within(&mut inbox, Duration::from_secs(5)).await?;
    let b = next_within(&mut inbox, Duration::from_secs(5)).await?;
    assert_eq!(
        [event_id(&a), event_id(&b)],
        [first.event.event_id, second.event.event_id],
        "in stream order"
    );
    assert_eq!((a.delivery_attempt, b.delivery_attempt), (1, 1));
    assert_eq!(a.stream_sequence, first.sequence);
    assert_eq!(a.stored.event.to, Some(moic()));

    // The server has nothing else for MOIC: the hand-off to MOF and the openings are not its.
    let info = bus.consumer_info("MOIC").await?;
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 2));

    let mut mof = Inbox::open(
        bus.js.clone(),
        &AgencyCode::parse("MOF")?,
        &settings(&[10_000]),
    )
    .await?;
    let c = next_within(&mut mof, Duration::from_secs(5)).await?;
    assert_eq!(event_id(&c), elsewhere.event.event_id);
    Ok(())
}

#[tokio::test]
async fn an_unacknowledged_event_comes_back_after_its_ack_wait_with_attempt_two()
-> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let handed = bus.hand_off_new_case("MOIC").await?;
    let mut inbox = Inbox::open(bus.js.clone(), &moic(), &settings(&[300, 600])).await?;

    let first = next_within(&mut inbox, Duration::from_secs(5)).await?;
    let received = Instant::now();
    assert_eq!(first.delivery_attempt, 1);
    let again = next_within(&mut inbox, Duration::from_secs(5)).await?;
    assert_eq!(event_id(&again), handed.event.event_id);
    assert_eq!(again.delivery_attempt, 2);
    assert!(
        received.elapsed() >= Duration::from_millis(250),
        "came back after the first backoff step, not at once: {:?}",
        received.elapsed()
    );
    let stats = inbox.stats();
    assert_eq!((stats.delivered, stats.redelivered), (2, 1));

    // The redelivery replaced the first handle: one ack settles the event for good.
    let outcome = inbox.in_flight().ack(&[handed.event.event_id]).await;
    assert_eq!(outcome.acked, [handed.event.event_id]);
    let info = bus.consumer_info("MOIC").await?;
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 0));
    Ok(())
}

#[tokio::test]
async fn an_acknowledged_event_is_never_delivered_again_even_after_a_server_restart_and_a_new_session()
-> anyhow::Result<()> {
    let mut bus = TestBus::start().await?;
    let acked = bus.hand_off_new_case("MOIC").await?;
    let unacked = bus.hand_off_new_case("MOIC").await?;
    let in_flight = InFlight::new(bus.js.clone(), moic(), settings(&[300]))?;
    let mut inbox = Inbox::open_with(in_flight.clone()).await?;
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(next_within(&mut inbox, Duration::from_secs(5)).await?);
    }
    let outcome = in_flight.ack(&[acked.event.event_id]).await;
    assert_eq!(outcome.acked, [acked.event.event_id]);
    wait_ack_floor_on_disk(&bus, "MOIC", acked.sequence).await?;

    bus.nats.kill()?;
    bus.nats.restart().await?;
    bus.wait_connected().await?;
    let after_restart = bus.hand_off_new_case("MOIC").await?;

    // The same session carries on by itself: the un-acked event comes back, the new one arrives.
    let mut pending = vec![unacked.event.event_id, after_restart.event.event_id];
    while !pending.is_empty() {
        let delivery = next_within(&mut inbox, Duration::from_secs(15)).await?;
        assert_ne!(
            event_id(&delivery),
            acked.event.event_id,
            "acked event redelivered"
        );
        pending.retain(|id| *id != event_id(&delivery));
        seen.push(delivery);
    }
    drop(inbox);

    // A new session (as after an adapter restart: a new registry too) gets what is not acked.
    let mut fresh = Inbox::open(bus.js.clone(), &moic(), &settings(&[300])).await?;
    let mut pending = vec![unacked.event.event_id, after_restart.event.event_id];
    while !pending.is_empty() {
        let delivery = next_within(&mut fresh, Duration::from_secs(5)).await?;
        assert_ne!(
            event_id(&delivery),
            acked.event.event_id,
            "acked event redelivered"
        );
        if pending.contains(&event_id(&delivery)) {
            let outcome = fresh.in_flight().ack(&[event_id(&delivery)]).await;
            assert_eq!(outcome.acked, [event_id(&delivery)]);
            pending.retain(|id| *id != event_id(&delivery));
        }
    }
    // Nothing is left for the server to deliver, so the acked event cannot come back.
    let info = bus.consumer_info("MOIC").await?;
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 0));
    assert_eq!(info.ack_floor.stream_sequence, after_restart.sequence);
    Ok(())
}

#[tokio::test]
async fn a_client_that_disconnects_loses_nothing_and_its_events_come_back_before_their_ack_wait()
-> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(bus.hand_off_new_case("MOIC").await?.event.event_id);
    }
    // A 20 s ack wait: only the release on disconnect can bring them back within the test.
    let in_flight = InFlight::new(bus.js.clone(), moic(), settings(&[20_000]))?;
    let mut inbox = Inbox::open_with(in_flight.clone()).await?;
    for _ in 0..3 {
        next_within(&mut inbox, Duration::from_secs(5)).await?;
    }
    assert_eq!(in_flight.ack(&[ids[0]]).await.acked, [ids[0]]);
    drop(inbox); // the gRPC stream went away

    let mut reconnected = Inbox::open_with(in_flight.clone()).await?;
    let mut back = Vec::new();
    for _ in 0..2 {
        let delivery = next_within(&mut reconnected, Duration::from_secs(5)).await?;
        assert_eq!(delivery.delivery_attempt, 2);
        back.push(event_id(&delivery));
    }
    back.sort();
    let mut expected = ids[1..].to_vec();
    expected.sort();
    assert_eq!(back, expected);
    assert_eq!(in_flight.stats().released, 2);
    Ok(())
}

#[tokio::test]
async fn a_session_never_holds_more_than_its_in_flight_window() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(bus.hand_off_new_case("MOIC").await?.event.event_id);
    }
    let window = InboxSettings {
        max_in_flight: 3,
        ..settings(&[20_000])
    };
    let mut inbox = Inbox::open(bus.js.clone(), &moic(), &window).await?;
    let in_flight = inbox.in_flight();

    let mut held: Vec<EventId> = Vec::new();
    let mut received = Vec::new();
    while received.len() < 10 {
        if held.len() == 3 {
            // Full: nothing more comes until something is acknowledged, and the server agrees.
            assert!(
                tokio::time::timeout(Duration::from_millis(300), inbox.next())
                    .await
                    .is_err(),
                "a fourth delivery while three are un-acked"
            );
            assert_eq!(bus.consumer_info("MOIC").await?.num_ack_pending, 3);
            assert_eq!(inbox.stats().in_flight, 3);
            let oldest = held.remove(0);
            assert_eq!(in_flight.ack(&[oldest]).await.acked, [oldest]);
        }
        let delivery = next_within(&mut inbox, Duration::from_secs(5)).await?;
        held.push(event_id(&delivery));
        received.push(event_id(&delivery));
        assert!(held.len() <= 3);
    }
    assert_eq!(received, ids, "each event once, in order");
    Ok(())
}

#[tokio::test]
async fn acking_unknown_ids_reports_them_back() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let handed = bus.hand_off_new_case("MOIC").await?;
    let mut inbox = Inbox::open(bus.js.clone(), &moic(), &settings(&[20_000])).await?;
    let delivery = next_within(&mut inbox, Duration::from_secs(5)).await?;
    let never_delivered = EventId::generate();

    let outcome = inbox
        .in_flight()
        .ack(&[never_delivered, event_id(&delivery)])
        .await;
    assert_eq!(outcome.acked, [handed.event.event_id]);
    assert_eq!(outcome.unknown, [never_delivered]);
    assert!(outcome.failed.is_empty());

    // Acking again (a client retrying an Ack whose reply it lost) is reported, not an error.
    let again = inbox.in_flight().ack(&[event_id(&delivery)]).await;
    assert!(again.acked.is_empty());
    assert_eq!(again.unknown, [handed.event.event_id]);
    assert_eq!(inbox.stats().acked, 1);
    Ok(())
}

#[tokio::test]
async fn a_malformed_message_is_terminated_and_recorded_as_stuck_and_later_events_still_flow()
-> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let case_id = CaseId::generate();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "not-an-event-id");
    let garbage = bus
        .js
        .publish_with_headers(
            format!("onedoor.v1.case.{case_id}.MOF.MOIC"),
            headers,
            "not protobuf \u{0}\u{ff}".into(),
        )
        .await?
        .await?;
    let good = bus.hand_off_new_case("MOIC").await?;

    let mut inbox = Inbox::open(bus.js.clone(), &moic(), &settings(&[300])).await?;
    let delivery = next_within(&mut inbox, Duration::from_secs(5)).await?;
    assert_eq!(event_id(&delivery), good.event.event_id);
    assert_eq!(inbox.stats().terminated, 1);

    let stuck = list_stuck(&bus.js).await?;
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    let record = &stuck[0];
    assert_eq!(record.key(), format!("MOIC.{}", garbage.sequence));
    assert_eq!(record.case_id, case_id.to_string());
    assert_eq!(record.event_id, "not-an-event-id");
    assert_eq!(record.deliveries, 1);
    assert!(
        record.reason.starts_with("malformed event"),
        "{}",
        record.reason
    );

    // Terminated, not pending: only the good event waits for its ack.
    let info = bus.consumer_info("MOIC").await?;
    assert_eq!(info.num_ack_pending, 1);
    assert_eq!(
        inbox.in_flight().ack(&[good.event.event_id]).await.acked,
        [good.event.event_id]
    );
    Ok(())
}

#[tokio::test]
async fn ensuring_an_inbox_twice_changes_nothing() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let wanted = settings(&[300, 600]);
    let (_, first) = ensure_inbox_outcome(&bus.js, &moic(), &wanted).await?;
    let created = bus.consumer_info("MOIC").await?;
    let (_, second) = ensure_inbox_outcome(&bus.js, &moic(), &wanted).await?;
    let after = bus.consumer_info("MOIC").await?;
    assert_eq!(
        (first, second),
        (InboxEnsured::Created, InboxEnsured::Unchanged)
    );
    assert_eq!(created.created, after.created);
    assert_eq!(after.config.ack_wait, Duration::from_millis(300));
    assert_eq!(after.config.max_deliver, 20);
    assert_eq!(after.config.inactive_threshold, Duration::ZERO);
    assert_eq!(after.config.filter_subject, "onedoor.v1.case.*.*.MOIC");
    Ok(())
}

#[tokio::test]
async fn a_safe_change_updates_the_inbox_and_a_conflicting_one_is_reported() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    ensure_inbox(&bus.js, &moic(), &settings(&[300])).await?;
    let bigger = InboxSettings {
        max_in_flight: 64,
        ..settings(&[300])
    };
    let (_, outcome) = ensure_inbox_outcome(&bus.js, &moic(), &bigger).await?;
    assert_eq!(
        outcome,
        InboxEnsured::Updated {
            changes: vec!["max_ack_pending: existing 16, wanted 64".into()]
        }
    );
    assert_eq!(bus.consumer_info("MOIC").await?.config.max_ack_pending, 64);

    // Someone made MOF's inbox read every case event: that is not ours to "fix".
    let stream = bus.js.get_stream("ONEDOOR").await?;
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("inbox-MOF".into()),
            filter_subject: "onedoor.v1.case.>".into(),
            ..Default::default()
        })
        .await?;
    let err = ensure_inbox(&bus.js, &AgencyCode::parse("MOF")?, &settings(&[300]))
        .await
        .expect_err("conflicting filter");
    assert!(matches!(err, BusError::InboxConflict { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("filter: existing [onedoor.v1.case.>], wanted [onedoor.v1.case.*.*.MOF]"),
        "{err}"
    );
    let info = bus.consumer_info("MOF").await?;
    assert_eq!(
        info.config.filter_subject, "onedoor.v1.case.>",
        "left unchanged"
    );
    Ok(())
}

#[tokio::test]
async fn a_session_whose_consumer_is_deleted_recreates_it_and_the_history_is_delivered_again()
-> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let first = bus.hand_off_new_case("MOIC").await?;
    let mut inbox = Inbox::open(bus.js.clone(), &moic(), &settings(&[20_000])).await?;
    let delivery = next_within(&mut inbox, Duration::from_secs(5)).await?;
    assert_eq!(
        inbox.in_flight().ack(&[event_id(&delivery)]).await.acked,
        [first.event.event_id]
    );

    // An operator deletes the durable while the session is waiting on a pull.
    bus.js
        .get_stream("ONEDOOR")
        .await?
        .delete_consumer("inbox-MOIC")
        .await?;
    let later = bus.hand_off_new_case("MOIC").await?;

    // The session carries on; the new consumer starts at the beginning of the stream, so the
    // acknowledged event comes again (receivers de-duplicate by event id).
    let mut pending = vec![first.event.event_id, later.event.event_id];
    while !pending.is_empty() {
        let delivery = next_within(&mut inbox, Duration::from_secs(10)).await?;
        pending.retain(|id| *id != event_id(&delivery));
    }
    assert_eq!(
        bus.consumer_info("MOIC").await?.config.filter_subject,
        "onedoor.v1.case.*.*.MOIC"
    );
    Ok(())
}
