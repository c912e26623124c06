//! How an adapter reaches NATS: several URLs, and health that notices a frozen server (the
//! socket stays open, so the client's connection state alone never changes). Waiting for NATS
//! at start and failing fast on a wrong seed are shown on the binary, whose logs say why
//! (`tests/cli_nats.rs`).

use std::time::{Duration, Instant};

use onedoor_testkit::{FRONT, TestBus};
use tonic_health::pb::health_check_response::ServingStatus;

/// docs/jetstream.md §13 promises about 4 s; the margin is for a loaded two-core machine.
const NOTICED_WITHIN: Duration = Duration::from_secs(10);

/// `nats://127.0.0.1:<port>` where nothing listens: a port bound, then released.
fn dead_url() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(format!("nats://{}", listener.local_addr()?))
}

#[tokio::test]
async fn health_is_not_serving_while_nats_is_frozen_and_serving_again_after_it_thaws()
-> anyhow::Result<()> {
    let mut bus = TestBus::with_adapters(&[FRONT]).await?;
    bus.wait_for_health(FRONT, ServingStatus::Serving).await?;

    bus.nats.freeze()?;
    let frozen = Instant::now();
    bus.wait_for_health(FRONT, ServingStatus::NotServing)
        .await?;
    let noticed = frozen.elapsed();
    assert!(
        noticed < NOTICED_WITHIN,
        "a frozen NATS was noticed only after {noticed:?}"
    );

    bus.nats.thaw()?;
    let thawed = Instant::now();
    bus.wait_for_health(FRONT, ServingStatus::Serving).await?;
    let recovered = thawed.elapsed();
    assert!(
        recovered < NOTICED_WITHIN,
        "recovery was noticed only after {recovered:?}"
    );
    // Serving means serving: a write lands.
    let mut front = bus.agency(FRONT).await?;
    front.open_case("enterprise-registration").await?;
    eprintln!("frozen NATS noticed after {noticed:?}; recovery after {recovered:?}");
    Ok(())
}

#[tokio::test]
async fn an_adapter_given_three_urls_of_which_two_are_dead_connects_to_the_live_one()
-> anyhow::Result<()> {
    let mut bus = TestBus::start().await?;
    let mut config = bus.adapter_config(FRONT)?;
    config.nats.urls = vec![dead_url()?, bus.nats.url(), dead_url()?];
    bus.start_with(FRONT, config).await?;
    bus.wait_for_health(FRONT, ServingStatus::Serving).await?;
    let mut front = bus.agency(FRONT).await?;
    front.open_case("enterprise-registration").await?;
    Ok(())
}

#[tokio::test]
async fn an_adapter_waiting_for_nats_stops_when_asked() -> anyhow::Result<()> {
    let mut bus = TestBus::start().await?;
    bus.nats.kill()?;
    bus.start_adapter(FRONT).await?;
    // Well inside the 60 s start-up deadline: the stop, not the deadline, ends it.
    tokio::time::timeout(Duration::from_secs(10), bus.stop_adapter(FRONT))
        .await
        .map_err(|_| anyhow::anyhow!("the adapter kept waiting for NATS after a stop"))?;
    Ok(())
}
