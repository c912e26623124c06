//! One JetStream node: starts, serves JetStream, survives a kill and restart with its store.

use std::time::{Duration, Instant};

use async_nats::jetstream::stream;
use onedoor_testkit::TestNats;
use onedoor_testkit::natsd::NatsdError;

fn events_stream() -> stream::Config {
    stream::Config {
        name: "EVENTS".to_owned(),
        subjects: vec!["events.>".to_owned()],
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

#[tokio::test]
async fn single_node_starts_and_serves_jetstream() -> anyhow::Result<()> {
    let nats = TestNats::start().await?;
    let js = nats.jetstream().await?;

    let account = js.query_account().await?;
    assert_eq!(account.streams, 0);

    js.create_stream(events_stream()).await?;
    let ack = js.publish("events.a", "hello".into()).await?.await?;
    assert_eq!(ack.sequence, 1);
    assert!(nats.url().starts_with("nats://127.0.0.1:"));
    Ok(())
}

#[tokio::test]
async fn killed_node_restarts_on_the_same_port_and_store_dir_and_keeps_a_streams_messages()
-> anyhow::Result<()> {
    let mut nats = TestNats::start().await?;
    let url_before = nats.url();
    let js = nats.jetstream().await?;
    js.create_stream(events_stream()).await?;
    for i in 1..=3 {
        js.publish("events.a", format!("m{i}").into())
            .await?
            .await?;
    }

    nats.kill()?;
    assert!(nats.server().pid().is_none());
    // Prove it is really down before proving it comes back.
    assert!(
        async_nats::connect(nats.url()).await.is_err(),
        "a killed server still accepts clients"
    );

    nats.restart().await?;
    assert_eq!(nats.url(), url_before);

    // A fresh client, so the check does not depend on the old one's reconnect timing.
    let js = nats.jetstream().await?;
    let mut stream = js.get_stream("EVENTS").await?;
    assert_eq!(stream.info().await?.state.messages, 3);
    let third = stream.get_raw_message(3).await?;
    assert_eq!(&third.payload[..], b"m3");
    Ok(())
}

#[tokio::test]
async fn bad_config_text_fails_fast_with_the_servers_log_instead_of_hanging() {
    let started = Instant::now();
    let err = TestNats::start_with_config("this is { not valid")
        .await
        .expect_err("a server with a broken config must not start");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let onedoor_testkit::TestkitError::Natsd(NatsdError::Exited { log_tail, .. }) = &err else {
        panic!("expected an early exit, got: {err}");
    };
    // The server's own complaint must reach the test output.
    assert!(log_tail.contains("Parse error"), "log tail: {log_tail}");
    assert!(err.to_string().contains(log_tail.as_str()));
}
