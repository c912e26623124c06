//! Raw JetStream on the same server, for the same-run ratio: messages of the hand-offs' payload
//! size published with async acks (a window of acks outstanding) onto a file-stored stream of
//! its own, read by a durable pull consumer that acknowledges each one. No headers, no case
//! rules, no gRPC: what the bus itself can carry end to end.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt as _;
use indicatif::ProgressBar;
use tokio::sync::oneshot;

use crate::BenchError;

/// Publish acks outstanding at once.
const PUBLISH_WINDOW: usize = 1024;
/// Messages asked for per pull.
const PULL_BATCH: usize = 500;
/// A stalled phase fails the bench instead of hanging it.
const PHASE_DEADLINE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
pub struct RawReport {
    pub per_s: f64,
    pub elapsed_s: f64,
}

/// Publishes `warmup` then `count` messages of `payload_bytes` and times the second part from
/// its first publish to the consumer's ack of its last message.
pub async fn measure(
    url: &str,
    run: &str,
    payload_bytes: usize,
    warmup: u64,
    count: u64,
    progress: &ProgressBar,
) -> Result<RawReport, BenchError> {
    let publisher = async_nats::connect(url)
        .await
        .map_err(BenchError::nats(format!("connecting to {url}")))?;
    let reader = async_nats::connect(url)
        .await
        .map_err(BenchError::nats(format!("connecting to {url}")))?;
    let js = jetstream::new(publisher);
    let subject = format!("onedoor-bench.raw.{run}");
    let name = format!("ONEDOOR_BENCH_RAW_{run}");
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(BenchError::nats("creating the raw stream"))?;
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("raw".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .map_err(BenchError::nats("creating the raw consumer"))?;
    // The consumer is read over its own connection, as a separate system would.
    let consumer: consumer::PullConsumer = jetstream::new(reader)
        .get_stream(&name)
        .await
        .map_err(BenchError::nats("binding to the raw stream"))?
        .get_consumer("raw")
        .await
        .map_err(BenchError::nats("binding to the raw consumer"))?;

    let (warm_tx, warm_rx) = oneshot::channel::<()>();
    let (done_tx, done_rx) = oneshot::channel::<Instant>();
    let progress_reader = progress.clone();
    let reading = tokio::spawn(async move {
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(PULL_BATCH)
            .messages()
            .await
            .map_err(BenchError::nats("reading the raw consumer"))?;
        let mut warm_tx = Some(warm_tx);
        let mut done_tx = Some(done_tx);
        let mut seen = 0u64;
        while seen < warmup + count {
            let message = match messages.next().await {
                Some(Ok(message)) => message,
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "raw consumer hiccup");
                    continue;
                }
                None => {
                    return Err(BenchError::Failed(
                        "the raw consumer's stream ended".to_owned(),
                    ));
                }
            };
            message.ack().await.map_err(BenchError::nats("acking"))?;
            seen += 1;
            if seen == warmup
                && let Some(tx) = warm_tx.take()
            {
                let _ = tx.send(());
            }
            if seen.is_multiple_of(256) {
                progress_reader.inc(256);
            }
        }
        if let Some(tx) = done_tx.take() {
            let _ = tx.send(Instant::now());
        }
        Ok::<(), BenchError>(())
    });

    let payload = Bytes::from(vec![b'x'; payload_bytes]);
    publish(&js, &subject, &payload, warmup).await?;
    if warmup > 0 {
        match tokio::time::timeout(PHASE_DEADLINE, warm_rx).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                reading.await.map_err(BenchError::task("raw consumer"))??;
                return Err(BenchError::Failed(
                    "the raw consumer stopped during the warm-up".to_owned(),
                ));
            }
            Err(_) => {
                return Err(BenchError::Failed(
                    "the raw warm-up did not finish".to_owned(),
                ));
            }
        }
    }
    let started = Instant::now();
    publish(&js, &subject, &payload, count).await?;
    let finished = tokio::time::timeout(PHASE_DEADLINE, done_rx)
        .await
        .map_err(|_| BenchError::Failed("the raw run did not finish".to_owned()))?;
    let finished = match finished {
        Ok(at) => at,
        Err(_) => {
            reading.await.map_err(BenchError::task("raw consumer"))??;
            return Err(BenchError::Failed(
                "the raw consumer stopped early".to_owned(),
            ));
        }
    };
    reading.await.map_err(BenchError::task("raw consumer"))??;
    let elapsed_s = finished.duration_since(started).as_secs_f64();
    if let Err(err) = js.delete_stream(&name).await {
        tracing::warn!(error = %err, "could not delete the raw stream");
    }
    Ok(RawReport {
        per_s: count as f64 / elapsed_s.max(f64::EPSILON),
        elapsed_s,
    })
}

async fn publish(
    js: &jetstream::Context,
    subject: &str,
    payload: &Bytes,
    count: u64,
) -> Result<(), BenchError> {
    let mut acks = VecDeque::with_capacity(PUBLISH_WINDOW);
    for _ in 0..count {
        let ack = js
            .publish(subject.to_owned(), payload.clone())
            .await
            .map_err(BenchError::nats("publishing"))?;
        acks.push_back(ack);
        if acks.len() >= PUBLISH_WINDOW
            && let Some(ack) = acks.pop_front()
        {
            ack.await.map_err(BenchError::nats("publish ack"))?;
        }
    }
    for ack in acks {
        ack.await.map_err(BenchError::nats("publish ack"))?;
    }
    Ok(())
}
