//! Typed NATS errors from a real nats-server: a stale expected sequence (JetStream 10071) on one
//! node and a write racing another on a replicated stream (10164) on a real three-node cluster
//! are each classified by their code and reach a gRPC caller as ABORTED, with the retry advice,
//! through the adapter's own error-to-status path. (The adapter retries both itself before a
//! caller ever sees them; these tests check the table that decides what a caller sees when the
//! retries run out, against errors the server really sends.)

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use onedoor_adapter::AdapterError;
use onedoor_bus::{BusError, NatsErrorKind};
use onedoor_testkit::{TestCluster, TestNats};

const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";

async fn create_stream(js: &jetstream::Context, replicas: usize) -> anyhow::Result<()> {
    js.create_stream(stream::Config {
        name: "TYPED".to_owned(),
        subjects: vec!["typed.>".to_owned()],
        num_replicas: replicas,
        ..Default::default()
    })
    .await?;
    Ok(())
}

/// Publishes `count` messages on `subject` at once, each expecting the subject to be empty;
/// returns each acknowledgement's error, classified as the bus classifies it.
async fn racing_writes(
    js: &jetstream::Context,
    subject: &str,
    count: usize,
) -> anyhow::Result<Vec<BusError>> {
    let mut acks = Vec::new();
    for _ in 0..count {
        let mut headers = HeaderMap::new();
        headers.insert(EXPECTED_LAST_SUBJECT_SEQUENCE, "0");
        acks.push(
            js.publish_with_headers(subject.to_owned(), headers, "x".into())
                .await?,
        );
    }
    let mut errors = Vec::new();
    for ack in
        futures::future::join_all(acks.into_iter().map(std::future::IntoFuture::into_future)).await
    {
        if let Err(error) = ack {
            errors.push(BusError::nats("storing an event", &error));
        }
    }
    Ok(errors)
}

fn status_of(error: BusError) -> tonic::Status {
    tonic::Status::from(AdapterError::Bus(error))
}

fn assert_aborted_with_retry_advice(status: &tonic::Status) {
    assert_eq!(status.code(), tonic::Code::Aborted, "{status:?}");
    assert!(
        status
            .message()
            .contains("retry with the same idempotency_key"),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_expected_sequence_is_10071_and_reaches_a_caller_as_aborted() -> anyhow::Result<()>
{
    let nats = TestNats::start().await?;
    let js = nats.jetstream().await?;
    create_stream(&js, 1).await?;
    js.publish("typed.case.1", "first".into()).await?.await?;

    let errors = racing_writes(&js, "typed.case.1", 1).await?;
    let [error] = <[BusError; 1]>::try_from(errors)
        .map_err(|errors| anyhow::anyhow!("one refusal expected, got {errors:?}"))?;
    assert!(
        matches!(
            error,
            BusError::Nats {
                kind: NatsErrorKind::WrongLastSequence,
                code: Some(10071),
                ..
            }
        ),
        "{error:?}"
    );
    assert_aborted_with_retry_advice(&status_of(error));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_racing_another_on_a_cluster_is_10164_and_reaches_a_caller_as_aborted()
-> anyhow::Result<()> {
    let cluster = TestCluster::start(3).await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .build(cluster.client().await?);
    create_stream(&js, 3).await?;

    // The leader refuses with 10164 only while the first write is still being replicated, so
    // race fresh subjects until it happens (on loopback it does within a round or two).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut round = 0;
    let conflict = loop {
        round += 1;
        let errors = racing_writes(&js, &format!("typed.case.{round}"), 32).await?;
        if let Some(conflict) = errors
            .into_iter()
            .find(|e| e.nats_kind() == Some(NatsErrorKind::ClusterWriteConflict))
        {
            break conflict;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no 10164 from the cluster in {round} rounds of 32 racing writes"
        );
    };
    assert!(
        matches!(
            conflict,
            BusError::Nats {
                code: Some(10164),
                ..
            }
        ),
        "{conflict:?}"
    );
    assert_aborted_with_retry_advice(&status_of(conflict));
    Ok(())
}
