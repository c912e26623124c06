//! The `Inbox` stream and `Ack` through a real adapter: at-least-once delivery, ack by event id,
//! redelivery with back-off, disconnects, the in-flight window, and stuck deliveries.

use std::time::{Duration, Instant};

use onedoor_bus::InboxSettings;
use onedoor_testkit::{FRONT, TestBus, next_inbox_item};
use tonic::Code;

/// Redelivery fast enough to observe in a test.
fn quick_inbox(max_in_flight: usize, max_deliver: u32) -> InboxSettings {
    InboxSettings {
        max_in_flight,
        max_deliver,
        backoff: vec![Duration::from_millis(300); (max_deliver as usize - 1).max(1)],
        ..InboxSettings::default()
    }
}

async fn bus_with(agencies: &[&str], inbox: InboxSettings) -> anyhow::Result<TestBus> {
    let mut bus = TestBus::start().await?;
    for agency in agencies {
        let mut config = bus.adapter_config(agency)?;
        config.inbox = inbox.clone();
        bus.start_with(agency, config).await?;
    }
    Ok(bus)
}

#[tokio::test]
async fn a_hand_off_arrives_in_the_receivers_inbox_and_the_acceptance_in_the_senders()
-> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC"]).await?;
    let (mut front, mut moic) = (bus.agency(FRONT).await?, bus.agency("MOIC").await?);
    let case = front.open_case("enterprise-registration").await?.case_id;
    let handed = front.hand_off(&case, "MOIC").await?;

    let mut inbox = moic.inbox(0).await?;
    let item = next_inbox_item(&mut inbox).await;
    assert_eq!(item.delivery_attempt, 1);
    assert_eq!(item.stream_sequence, handed.stream_sequence);
    let event = item.event.expect("event");
    assert_eq!(
        (event.event_id.as_str(), event.to_agency.as_str()),
        (handed.event_id.as_str(), "MOIC")
    );
    let acked = moic.ack(&[&event.event_id]).await?;
    assert_eq!(acked.acked_event_ids, vec![event.event_id.clone()]);

    let accepted = moic.accept(&case).await?;
    let mut front_inbox = front.inbox(0).await?;
    let item = next_inbox_item(&mut front_inbox).await;
    assert_eq!(
        item.event.expect("event").event_id,
        accepted.event_id,
        "the sender is told"
    );
    Ok(())
}

#[tokio::test]
async fn an_unacknowledged_item_comes_back_and_an_acknowledged_one_never_does() -> anyhow::Result<()>
{
    let bus = bus_with(&[FRONT, "MOIC"], quick_inbox(8, 5)).await?;
    let (mut front, mut moic) = (bus.agency(FRONT).await?, bus.agency("MOIC").await?);
    let first = front.open_case("enterprise-registration").await?.case_id;
    let second = front.open_case("enterprise-registration").await?.case_id;
    let to_ack = front.hand_off(&first, "MOIC").await?.event_id;
    let to_forget = front.hand_off(&second, "MOIC").await?.event_id;

    let mut inbox = moic.inbox(0).await?;
    let mut seen = [
        next_inbox_item(&mut inbox).await,
        next_inbox_item(&mut inbox).await,
    ];
    seen.sort_by_key(|i| i.stream_sequence);
    assert!(seen.iter().all(|i| i.delivery_attempt == 1));
    moic.ack(&[&to_ack]).await?;

    // The forgotten one comes back after its ack wait, with the next attempt number; the
    // acknowledged one does not come back on this stream or any later one.
    let again = next_inbox_item(&mut inbox).await;
    assert_eq!(
        again.event.as_ref().map(|e| e.event_id.as_str()),
        Some(to_forget.as_str())
    );
    assert_eq!(again.delivery_attempt, 2);
    moic.ack(&[&to_forget]).await?;
    drop(inbox);

    // Prove the inbox is now empty from the server's side rather than by waiting for silence.
    let js = bus.nats.jetstream().await?;
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_stream("ONEDOOR")
        .await?
        .get_consumer("inbox-MOIC")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = consumer.info().await?;
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "inbox-MOIC still holds events: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn a_client_that_disconnects_loses_nothing() -> anyhow::Result<()> {
    // A long ack wait: only the release on disconnect can bring the item back quickly (the
    // release delay is capped; production keeps the 30 s default to pace a crashing client).
    let settings = InboxSettings {
        backoff: vec![Duration::from_secs(60)],
        max_deliver: 3,
        release_delay_cap: Duration::from_millis(200),
        ..InboxSettings::default()
    };
    let bus = bus_with(&[FRONT, "MOIC"], settings).await?;
    let (mut front, mut moic) = (bus.agency(FRONT).await?, bus.agency("MOIC").await?);
    let case = front.open_case("enterprise-registration").await?.case_id;
    let handed = front.hand_off(&case, "MOIC").await?;

    let mut inbox = moic.inbox(0).await?;
    next_inbox_item(&mut inbox).await;
    drop(inbox); // the ministry's system crashes before acknowledging

    let mut again = moic.inbox(0).await?;
    let item = next_inbox_item(&mut again).await;
    assert_eq!(item.event.expect("event").event_id, handed.event_id);
    assert_eq!(item.delivery_attempt, 2);
    Ok(())
}

#[tokio::test]
async fn a_stream_holds_no_more_unacknowledged_items_than_it_asked_for() -> anyhow::Result<()> {
    let bus = bus_with(&[FRONT, "MOIC"], InboxSettings::default()).await?;
    let (mut front, mut moic) = (bus.agency(FRONT).await?, bus.agency("MOIC").await?);
    for _ in 0..5 {
        let case = front.open_case("enterprise-registration").await?.case_id;
        front.hand_off(&case, "MOIC").await?;
    }
    let mut inbox = moic.inbox(2).await?;
    let first = next_inbox_item(&mut inbox).await;
    next_inbox_item(&mut inbox).await;

    let js = bus.nats.jetstream().await?;
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_stream("ONEDOOR")
        .await?
        .get_consumer("inbox-MOIC")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let info = consumer.info().await?;
    assert_eq!(info.num_ack_pending, 2, "only the window is out: {info:?}");
    assert_eq!(info.num_pending, 3, "the rest waits in the inbox: {info:?}");

    // Acknowledging one makes room for exactly one more.
    moic.ack(&[&first.event.expect("event").event_id]).await?;
    next_inbox_item(&mut inbox).await;
    Ok(())
}

#[tokio::test]
async fn acks_with_malformed_too_many_or_unknown_ids_are_answered_clearly() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&["MOIC"]).await?;
    let mut moic = bus.agency("MOIC").await?;
    let status = moic.ack(&["not-an-id"]).await.expect_err("malformed");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("event_ids"),
        "{}",
        status.message()
    );
    assert_eq!(
        moic.ack(&[]).await.expect_err("empty").code(),
        Code::InvalidArgument
    );
    let many: Vec<String> = (0..1001)
        .map(|_| onedoor_case::EventId::generate().to_string())
        .collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        moic.ack(&refs).await.expect_err("too many").code(),
        Code::InvalidArgument
    );
    let unknown = onedoor_case::EventId::generate().to_string();
    let response = moic.ack(&[&unknown]).await?;
    assert_eq!(response.unknown_event_ids, vec![unknown]);
    Ok(())
}

#[tokio::test]
async fn an_event_that_exhausts_its_deliveries_is_recorded_as_stuck() -> anyhow::Result<()> {
    let bus = bus_with(&[FRONT, "MOIC"], quick_inbox(8, 2)).await?;
    let (mut front, mut moic) = (bus.agency(FRONT).await?, bus.agency("MOIC").await?);
    let case = front.open_case("enterprise-registration").await?.case_id;
    let handed = front.hand_off(&case, "MOIC").await?;

    let mut inbox = moic.inbox(0).await?;
    assert_eq!(next_inbox_item(&mut inbox).await.delivery_attempt, 1);
    assert_eq!(next_inbox_item(&mut inbox).await.delivery_attempt, 2);
    // Never acknowledged: after the last attempt it must show up for staff.
    let js = bus.nats.jetstream().await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let record = loop {
        let stuck = onedoor_bus::list_stuck(&js).await?;
        if let Some(record) = stuck.into_iter().find(|r| r.event_id == handed.event_id) {
            break record;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the exhausted event was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (record.agency.as_str(), record.case_id.as_str()),
        ("MOIC", case.as_str())
    );
    Ok(())
}
