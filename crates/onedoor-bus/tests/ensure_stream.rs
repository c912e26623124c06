//! `ensure_stream` against a real nats-server (single node and a 3-node cluster).

use std::time::Duration;

use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType};
use onedoor_bus::subjects::{STREAM_NAME, STREAM_SUBJECTS, case_subject};
use onedoor_bus::{BusError, EnsureOutcome, StreamSettings, ensure_stream};
use onedoor_testkit::{TestCluster, TestNats};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

#[tokio::test]
async fn first_ensure_creates_the_stream_with_contract_subjects_duplicate_window_and_file_storage()
-> anyhow::Result<()> {
    let nats = TestNats::start().await?;
    let js = nats.jetstream().await?;

    let outcome = ensure_stream(&js, &StreamSettings::development()).await?;
    assert_eq!(outcome, EnsureOutcome::Created);

    let mut stream = js.get_stream(STREAM_NAME).await?;
    let config = &stream.info().await?.config;
    assert_eq!(config.subjects, vec![STREAM_SUBJECTS.to_owned()]);
    assert_eq!(config.subjects, vec!["onedoor.v1.case.>".to_owned()]);
    assert_eq!(config.duplicate_window, DAY);
    assert_eq!(config.storage, StorageType::File);
    assert_eq!(config.num_replicas, 1);
    assert_eq!(
        config.max_age,
        Duration::ZERO,
        "the legal record never expires"
    );
    assert_eq!(config.discard, DiscardPolicy::New);
    assert!(config.deny_delete && config.deny_purge && config.allow_direct);
    assert!(!config.allow_rollup);
    Ok(())
}

#[tokio::test]
async fn a_second_ensure_changes_nothing() -> anyhow::Result<()> {
    let nats = TestNats::start().await?;
    let js = nats.jetstream().await?;
    let settings = StreamSettings::development();
    ensure_stream(&js, &settings).await?;
    let before = js.get_stream(STREAM_NAME).await?.cached_info().clone();

    let outcome = ensure_stream(&js, &settings).await?;

    assert_eq!(outcome, EnsureOutcome::Unchanged);
    let after = js.get_stream(STREAM_NAME).await?.cached_info().clone();
    assert_eq!(after.created, before.created);
    assert_eq!(after.config, before.config);
    Ok(())
}

#[tokio::test]
async fn a_conflicting_stream_made_by_hand_is_reported_with_what_differs_and_left_unchanged()
-> anyhow::Result<()> {
    let nats = TestNats::start().await?;
    let js = nats.jetstream().await?;
    // What an operator might have typed with the nats CLI: the right name and subjects, but
    // the defaults for the rest.
    js.create_stream(stream::Config {
        name: STREAM_NAME.to_owned(),
        subjects: vec![STREAM_SUBJECTS.to_owned()],
        storage: StorageType::Memory,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;

    let err = ensure_stream(&js, &StreamSettings::development())
        .await
        .expect_err("must not accept a 2-minute window on memory storage");

    let BusError::StreamConflict {
        stream,
        differences,
    } = &err
    else {
        panic!("expected StreamConflict, got: {err}");
    };
    assert_eq!(stream, STREAM_NAME);
    for expected in [
        "storage: existing memory, wanted file",
        "duplicate_window: existing 2m, wanted 24h",
        "discard: existing old, wanted new",
        "deny_delete: existing false, wanted true",
        "deny_purge: existing false, wanted true",
        "allow_direct: existing false, wanted true",
    ] {
        assert!(
            differences.iter().any(|d| d == expected),
            "{expected:?} not in {differences:#?}"
        );
    }
    assert!(
        err.to_string()
            .contains("duplicate_window: existing 2m, wanted 24h")
    );

    let config = js
        .get_stream(STREAM_NAME)
        .await?
        .cached_info()
        .config
        .clone();
    assert_eq!(config.duplicate_window, Duration::from_secs(120));
    assert_eq!(config.storage, StorageType::Memory);
    assert!(!config.deny_purge);
    Ok(())
}

#[tokio::test]
async fn a_resent_event_id_is_stored_once() -> anyhow::Result<()> {
    let nats = TestNats::start().await?;
    let js = nats.jetstream().await?;
    ensure_stream(&js, &StreamSettings::development()).await?;
    let subject = case_subject("01JDQ3Z6Y8K9M2N4P5R7S9T1V3", "ODSC-VTE-SAYSETTHA", None)?;

    let mut acks = Vec::new();
    for _ in 0..2 {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", "01JDQ40000000000000000EVT1");
        acks.push(
            js.publish_with_headers(subject.clone(), headers, "opened".into())
                .await?
                .await?,
        );
    }

    assert!(!acks[0].duplicate);
    assert!(acks[1].duplicate, "the stream must drop the re-sent event");
    assert_eq!(acks[1].sequence, acks[0].sequence);
    Ok(())
}

#[tokio::test]
async fn events_cannot_be_deleted_or_purged_through_the_api() -> anyhow::Result<()> {
    let nats = TestNats::start().await?;
    let js = nats.jetstream().await?;
    ensure_stream(&js, &StreamSettings::development()).await?;
    let subject = case_subject("01JDQ3Z6Y8K9M2N4P5R7S9T1V3", "MOIC", Some("MOF"))?;
    let sequence = js
        .publish(subject, "handed off".into())
        .await?
        .await?
        .sequence;
    let stream = js.get_stream(STREAM_NAME).await?;

    assert!(stream.delete_message(sequence).await.is_err());
    assert!(stream.purge().await.is_err());
    assert_eq!(
        stream.get_raw_message(sequence).await?.payload,
        "handed off"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_replica_stream_is_created_on_a_three_node_cluster() -> anyhow::Result<()> {
    let cluster = TestCluster::start(3).await?;
    let js = cluster.jetstream().await?;
    let settings = StreamSettings::production();

    assert_eq!(ensure_stream(&js, &settings).await?, EnsureOutcome::Created);
    assert_eq!(
        ensure_stream(&js, &settings).await?,
        EnsureOutcome::Unchanged
    );

    let info = js.get_stream(STREAM_NAME).await?.cached_info().clone();
    assert_eq!(info.config.num_replicas, 3);
    let placement = info
        .cluster
        .expect("a clustered stream reports its placement");
    assert!(placement.leader.is_some());
    assert_eq!(placement.replicas.len(), 2, "{placement:?}");

    // The same cluster refuses a development (R1) expectation: replicas differ.
    let err = ensure_stream(&js, &StreamSettings::development())
        .await
        .expect_err("replicas differ");
    assert!(
        err.to_string().contains("replicas: existing 3, wanted 1"),
        "{err}"
    );
    Ok(())
}
