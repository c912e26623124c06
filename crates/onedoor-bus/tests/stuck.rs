//! Stuck deliveries against a real nats-server: events that use up their deliveries end up in
//! `ONEDOOR_STUCK` with their case and event ids, through the advisory, through the inbox, and
//! once when both see it.

use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt as _;
use onedoor_bus::stuck::{STUCK_BUCKET, ensure_stuck_bucket, exhausted_reason};
use onedoor_bus::{
    Inbox, InboxSettings, StuckRecord, StuckRecorder, Written, ensure_inbox, list_stuck,
};
use onedoor_case::AgencyCode;
use onedoor_testkit::{DEADLINE, TestBus, eventually};
use tokio::task::JoinHandle;

/// What these tests ask of the bus beyond the shared fixture.
trait StuckBus {
    /// Polls the bucket until a record for `stream_sequence` appears.
    async fn wait_stuck(&self, stream_sequence: u64) -> anyhow::Result<Vec<StuckRecord>>;
}

impl StuckBus for TestBus {
    async fn wait_stuck(&self, stream_sequence: u64) -> anyhow::Result<Vec<StuckRecord>> {
        let what = format!("a stuck record for sequence {stream_sequence}");
        eventually(&what, DEADLINE, || async {
            let records = list_stuck(&self.js).await?;
            Ok(
                if records.iter().any(|r| r.stream_sequence == stream_sequence) {
                    Ok(records)
                } else {
                    Err(format!("{records:?}"))
                },
            )
        })
        .await
    }
}

fn moic() -> AgencyCode {
    AgencyCode::parse("MOIC").expect("valid code")
}

/// Two deliveries, 200 ms apart: exhausted within half a second.
fn give_up_fast() -> InboxSettings {
    InboxSettings {
        max_in_flight: 4,
        max_deliver: 2,
        backoff: vec![Duration::from_millis(200)],
        pull_expires: Duration::from_millis(300),
        release_delay_cap: Duration::from_millis(100),
    }
}

/// A client that takes every delivery and never acknowledges one.
fn never_acking_client(mut inbox: Inbox) -> JoinHandle<()> {
    tokio::spawn(async move { while inbox.next().await.is_ok() {} })
}

fn assert_names(record: &StuckRecord, handed: &Written) {
    assert_eq!(record.agency, "MOIC");
    assert_eq!(record.case_id, handed.event.case_id.to_string());
    assert_eq!(record.event_id, handed.event.event_id.to_string());
    assert_eq!(record.stream_sequence, handed.sequence);
    assert_eq!(record.deliveries, 2);
    assert_eq!(record.reason, exhausted_reason(2));
    assert_eq!(record.key(), format!("MOIC.{}", handed.sequence));
    let age = time::OffsetDateTime::now_utc() - record.recorded_at;
    assert!(
        age < time::Duration::seconds(60),
        "recorded just now: {age}"
    );
}

#[tokio::test]
async fn an_event_that_exhausts_its_deliveries_is_recorded_once_with_its_case_and_event_ids()
-> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let _recorder = StuckRecorder::spawn(
        bus.js.clone(),
        &moic(),
        onedoor_bus::CaseLog::open(bus.js.clone()).await?,
    )
    .await?;
    let handed = bus.hand_off_new_case("MOIC").await?;
    let fine = bus.hand_off_new_case("MOF").await?;

    let client = never_acking_client(Inbox::open(bus.js.clone(), &moic(), &give_up_fast()).await?);
    let records = bus.wait_stuck(handed.sequence).await?;
    client.abort();

    // The advisory and the inbox both saw it; the key makes it one record.
    assert_eq!(records.len(), 1, "{records:?}");
    assert_names(&records[0], &handed);
    assert_ne!(records[0].stream_sequence, fine.sequence);
    Ok(())
}

#[tokio::test]
async fn the_max_deliveries_advisory_alone_records_a_stuck_event() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let _recorder = StuckRecorder::spawn(
        bus.js.clone(),
        &moic(),
        onedoor_bus::CaseLog::open(bus.js.clone()).await?,
    )
    .await?;
    let handed = bus.hand_off_new_case("MOIC").await?;

    // A raw consumer loop (not `Inbox`, which would record it itself): the server only sends
    // the advisory when someone pulls after the last ack wait, so keep pulling.
    let consumer = ensure_inbox(&bus.js, &moic(), &give_up_fast()).await?;
    let puller = tokio::spawn(async move {
        loop {
            let Ok(mut batch) = consumer
                .batch()
                .max_messages(4)
                .expires(Duration::from_millis(200))
                .messages()
                .await
            else {
                continue;
            };
            while batch.next().await.is_some() {}
        }
    });
    let records = bus.wait_stuck(handed.sequence).await?;
    puller.abort();
    assert_names(&records[0], &handed);
    Ok(())
}

#[tokio::test]
async fn an_inbox_records_its_own_exhausted_delivery_without_the_advisory_recorder()
-> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let handed = bus.hand_off_new_case("MOIC").await?;
    let inbox = Inbox::open(bus.js.clone(), &moic(), &give_up_fast()).await?;
    let in_flight = inbox.in_flight();
    let client = never_acking_client(inbox);
    let records = bus.wait_stuck(handed.sequence).await?;
    client.abort();
    assert_names(&records[0], &handed);
    // Given up on: an Ack arriving now is told so rather than pretending to succeed.
    let late = in_flight.ack(&[handed.event.event_id]).await;
    assert_eq!(late.unknown, [handed.event.event_id]);
    Ok(())
}

#[tokio::test]
async fn listing_stuck_deliveries_before_there_are_any_is_empty() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    assert!(list_stuck(&bus.js).await?.is_empty(), "no bucket yet");
    ensure_stuck_bucket(&bus.js).await?;
    assert!(list_stuck(&bus.js).await?.is_empty(), "empty bucket");
    Ok(())
}

#[tokio::test]
async fn the_stuck_bucket_keeps_one_version_per_key_on_disk_for_ever() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    ensure_stuck_bucket(&bus.js).await?;
    let store = ensure_stuck_bucket(&bus.js).await?;
    let status = store.status().await?;
    assert_eq!(status.bucket(), STUCK_BUCKET);
    assert_eq!(status.history(), 1);
    assert_eq!(status.max_age(), Duration::ZERO);
    let info = bus.js.get_stream(format!("KV_{STUCK_BUCKET}")).await?;
    assert_eq!(
        info.cached_info().config.storage,
        jetstream::stream::StorageType::File
    );
    Ok(())
}
