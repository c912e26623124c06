//! Raw JetStream on the same server, for the same-run ratio: messages of the hand-offs' payload
//! size published with async acks (a window of acks outstanding) onto a file-stored stream of
//! its own, read by a durable pull consumer that acknowledges each one. No headers, no case
//! rules, no gRPC: what the bus itself can carry end to end.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt as _;
use indicatif::ProgressBar;
use tokio::sync::oneshot;

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
) -> anyhow::Result<RawReport> {
    let publisher = async_nats::connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let reader = async_nats::connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
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
        .context("creating the raw stream")?;
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("raw".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .context("creating the raw consumer")?;
    // The consumer is read over its own connection, as a separate system would.
    let consumer: consumer::PullConsumer = jetstream::new(reader)
        .get_stream(&name)
        .await
        .context("binding to the raw stream")?
        .get_consumer("raw")
        .await
        .map_err(|e| anyhow::anyhow!("binding to the raw consumer: {e}"))?;

    let (warm_tx, warm_rx) = oneshot::channel::<()>();
    let (done_tx, done_rx) = oneshot::channel::<Instant>();
    let progress_reader = progress.clone();
    let reading = tokio::spawn(async move {
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(PULL_BATCH)
            .messages()
            .await?;
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
                None => anyhow::bail!("the raw consumer's stream ended"),
            };
            message
                .ack()
                .await
                .map_err(|e| anyhow::anyhow!("acking: {e}"))?;
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
        Ok::<(), anyhow::Error>(())
    });

    let payload = Bytes::from(vec![b'x'; payload_bytes]);
    publish(&js, &subject, &payload, warmup).await?;
    if warmup > 0 {
        tokio::time::timeout(PHASE_DEADLINE, warm_rx)
            .await
            .context("raw warm-up did not finish")?
            .context("raw consumer failed during warm-up")?;
    }
    let started = Instant::now();
    publish(&js, &subject, &payload, count).await?;
    let finished = tokio::time::timeout(PHASE_DEADLINE, done_rx)
        .await
        .context("raw run did not finish")?;
    let finished = match finished {
        Ok(at) => at,
        Err(_) => {
            reading.await.context("raw consumer task")??;
            anyhow::bail!("the raw consumer stopped early");
        }
    };
    reading.await.context("raw consumer task")??;
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
) -> anyhow::Result<()> {
    let mut acks = VecDeque::with_capacity(PUBLISH_WINDOW);
    for _ in 0..count {
        let ack = js
            .publish(subject.to_owned(), payload.clone())
            .await
            .map_err(|e| anyhow::anyhow!("publishing: {e}"))?;
        acks.push_back(ack);
        if acks.len() >= PUBLISH_WINDOW
            && let Some(ack) = acks.pop_front()
        {
            ack.await.map_err(|e| anyhow::anyhow!("publish ack: {e}"))?;
        }
    }
    for ack in acks {
        ack.await.map_err(|e| anyhow::anyhow!("publish ack: {e}"))?;
    }
    Ok(())
}
