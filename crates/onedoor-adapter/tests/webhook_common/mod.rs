//! What the webhook tests share: MOIC's adapter pushing to a receiver on a real bus, the
//! front office's hand-offs to it, and waits on the inbox and the stuck bucket.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::time::Duration;

use onedoor_adapter::webhook::{RetrySchedule, WebhookConfig, WebhookSecret, WebhookSecrets};
use onedoor_bus::InboxSettings;
use onedoor_testkit::{DEADLINE, FRONT, TestBus, eventually};

/// Inbox redelivery slow enough never to overlap a POST; webhook retries fast enough to watch.
pub fn inbox(max_deliver: u32) -> InboxSettings {
    InboxSettings {
        max_deliver,
        backoff: vec![Duration::from_secs(5); max_deliver as usize - 1],
        ..InboxSettings::default()
    }
}

pub fn webhook(url: &str, secrets: &[&WebhookSecret]) -> anyhow::Result<WebhookConfig> {
    let secrets = WebhookSecrets::new(secrets.iter().map(|s| (*s).clone()).collect())?;
    let mut config = WebhookConfig::new(url, secrets);
    config.timeout = Duration::from_secs(2);
    config.retry = RetrySchedule {
        first: Duration::from_millis(200),
        max: Duration::from_secs(5),
    };
    Ok(config)
}

/// The front office's adapter, and MOIC's pushing to `webhook`.
pub async fn bus_pushing_moic(webhook: WebhookConfig, max_deliver: u32) -> anyhow::Result<TestBus> {
    let mut bus = TestBus::start().await?;
    bus.start_adapter(FRONT).await?;
    let mut config = bus.adapter_config("MOIC")?;
    config.inbox = inbox(max_deliver);
    config.webhook = Some(webhook);
    bus.start_with("MOIC", config).await?;
    Ok(bus)
}

/// A case opened by the front office and handed to MOIC through the adapters; the hand-off's
/// receipt.
pub async fn hand_off_to_moic(bus: &TestBus) -> anyhow::Result<onedoor_proto::v1::Receipt> {
    let mut front = bus.agency(FRONT).await?;
    let case = front.open_case("enterprise-registration").await?.case_id;
    Ok(front.hand_off(&case, "MOIC").await?)
}

/// Waits until MOIC's inbox consumer holds nothing: every delivery acknowledged.
pub async fn wait_until_acked(bus: &TestBus) -> anyhow::Result<()> {
    bus.wait_until_inbox_drained("MOIC").await
}

/// Waits for the stuck record of `event_id`.
pub async fn wait_stuck(bus: &TestBus, event_id: &str) -> anyhow::Result<onedoor_bus::StuckRecord> {
    eventually(
        &format!("a stuck record for {event_id}"),
        DEADLINE,
        || async {
            let stuck = onedoor_bus::list_stuck(&bus.js).await?;
            Ok(stuck.into_iter().find(|r| r.event_id == event_id))
        },
    )
    .await
}
