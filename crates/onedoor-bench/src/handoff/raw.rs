//! Raw JetStream on the same NATS, for the same-run ratio: messages of the hand-offs' payload
//! size published with async acks (a window of acks outstanding), read by a durable pull
//! consumer that acknowledges each one. No headers, no case rules, no gRPC: what the bus itself
//! can carry end to end.
//!
//! Where: on a development server, a file-stored stream of the run's own. In production mode
//! the generated permissions let nobody publish outside the case subjects or pull anything
//! but their own consumer, so raw JetStream runs where the bus runs and as its identities: a
//! front office publishes on its own case subjects into the ONEDOOR stream (R3, `sync_interval:
//! always`), and a ministry pulls and acks through its own `inbox-<CODE>` consumer, which the
//! operator makes again (after the adapters have stopped) filtered on those subjects with
//! JetStream's default window. Same cluster, TLS, nkeys and stream as the hand-offs.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt as _;
use indicatif::ProgressBar;
use onedoor_case::AgencyCode;
use onedoor_natsauth::Identity;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::BenchError;
use crate::nats::Nats;

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

/// Who publishes and who reads, in production mode: a front office and a ministry.
pub struct RawParties<'a> {
    pub from: &'a AgencyCode,
    pub to: &'a AgencyCode,
}

/// Publishes `warmup` then `count` messages of `payload_bytes` and times the second part from
/// its first publish to the consumer's ack of its last message.
pub async fn measure(
    nats: &Nats,
    run: &str,
    parties: RawParties<'_>,
    payload_bytes: usize,
    (warmup, count): (u64, u64),
    progress: &ProgressBar,
) -> Result<RawReport, BenchError> {
    let place = if nats.is_production() {
        RawPlace::inbox(nats, run, &parties).await?
    } else {
        RawPlace::own_stream(nats, run).await?
    };
    let reader = Reader::spawn(place.consumer.clone(), warmup, count, progress.clone());
    let payload = Bytes::from(vec![b'x'; payload_bytes]);
    let elapsed_s = timed(
        &place.publisher,
        &place.subject,
        &payload,
        warmup,
        count,
        reader,
    )
    .await;
    place.clean_up().await;
    let elapsed_s = elapsed_s?;
    Ok(RawReport {
        per_s: count as f64 / elapsed_s.max(f64::EPSILON),
        elapsed_s,
    })
}

/// The publisher's context, the subject it publishes on, and the consumer that reads it (over
/// a connection of its own, as a separate system would).
struct RawPlace {
    publisher: jetstream::Context,
    subject: String,
    consumer: consumer::PullConsumer,
    /// The run's own stream, deleted afterwards.
    own_stream: Option<(jetstream::Context, String)>,
}

impl RawPlace {
    async fn own_stream(nats: &Nats, run: &str) -> Result<RawPlace, BenchError> {
        let js = jetstream::new(nats.client(&Identity::Operator).await?);
        let raw = RawStream {
            subject: format!("onedoor-bench.raw.{run}"),
            name: format!("ONEDOOR_BENCH_RAW_{run}"),
        };
        raw.create(&js).await?;
        let consumer = raw
            .consumer(nats.client(&Identity::Operator).await?)
            .await?;
        Ok(RawPlace {
            publisher: js.clone(),
            subject: raw.subject,
            consumer,
            own_stream: Some((js, raw.name)),
        })
    }

    async fn inbox(
        nats: &Nats,
        run: &str,
        parties: &RawParties<'_>,
    ) -> Result<RawPlace, BenchError> {
        let subject = format!(
            "{}.RAW{run}.{}.{}",
            onedoor_bus::subjects::CASE_SUBJECT_PREFIX,
            parties.from,
            parties.to
        );
        let name = format!("inbox-{}", parties.to);
        let operator = jetstream::new(nats.client(&Identity::Operator).await?);
        let stream = operator
            .get_stream(onedoor_bus::STREAM_NAME)
            .await
            .map_err(BenchError::nats(
                "binding to the ONEDOOR stream as the operator",
            ))?;
        stream
            .delete_consumer(&name)
            .await
            .map_err(BenchError::nats(format!("deleting {name} for the raw run")))?;
        stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: subject.clone(),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .map_err(BenchError::nats(format!("making {name} for the raw run")))?;
        let reader = jetstream::new(nats.client(&Identity::Agency(parties.to.clone())).await?);
        // No stream info: an agency's user may not ask for it (docs/jetstream.md §15).
        let consumer = reader
            .get_stream_no_info(onedoor_bus::STREAM_NAME)
            .await
            .map_err(BenchError::nats("binding to the ONEDOOR stream"))?
            .get_consumer(&name)
            .await
            .map_err(BenchError::nats(format!("binding to {name}")))?;
        let publisher = jetstream::new(nats.client(&Identity::Agency(parties.from.clone())).await?);
        Ok(RawPlace {
            publisher,
            subject,
            consumer,
            own_stream: None,
        })
    }

    async fn clean_up(self) {
        if let Some((js, name)) = self.own_stream
            && let Err(err) = js.delete_stream(&name).await
        {
            tracing::warn!(error = %err, "could not delete the raw stream");
        }
    }
}

/// The run's own file-stored stream and its durable pull consumer `raw`.
struct RawStream {
    subject: String,
    name: String,
}

impl RawStream {
    async fn create(&self, js: &jetstream::Context) -> Result<(), BenchError> {
        let stream = js
            .create_stream(stream::Config {
                name: self.name.clone(),
                subjects: vec![self.subject.clone()],
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
        Ok(())
    }

    /// The consumer, bound over `client`.
    async fn consumer(
        &self,
        client: async_nats::Client,
    ) -> Result<consumer::PullConsumer, BenchError> {
        jetstream::new(client)
            .get_stream(&self.name)
            .await
            .map_err(BenchError::nats("binding to the raw stream"))?
            .get_consumer("raw")
            .await
            .map_err(BenchError::nats("binding to the raw consumer"))
    }
}

/// The consumer's side, on a task of its own: it acknowledges every message and says when the
/// warm-up's last and the run's last have been acknowledged.
struct Reader {
    warmed: oneshot::Receiver<()>,
    done: oneshot::Receiver<Instant>,
    task: JoinHandle<Result<(), BenchError>>,
}

impl Reader {
    fn spawn(
        consumer: consumer::PullConsumer,
        warmup: u64,
        count: u64,
        progress: ProgressBar,
    ) -> Reader {
        let (warmed_tx, warmed) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let task = tokio::spawn(read(
            consumer,
            warmup,
            warmup + count,
            progress,
            warmed_tx,
            done_tx,
        ));
        Reader { warmed, done, task }
    }
}

/// Reads and acknowledges `total` messages; `warmed` fires at the `warmup`th, `done` at the last.
async fn read(
    consumer: consumer::PullConsumer,
    warmup: u64,
    total: u64,
    progress: ProgressBar,
    warmed: oneshot::Sender<()>,
    done: oneshot::Sender<Instant>,
) -> Result<(), BenchError> {
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH)
        .messages()
        .await
        .map_err(BenchError::nats("reading the raw consumer"))?;
    let mut warmed = Some(warmed);
    let mut seen = 0u64;
    while seen < total {
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
            && let Some(tx) = warmed.take()
        {
            let _ = tx.send(());
        }
        if seen.is_multiple_of(256) {
            progress.inc(256);
        }
    }
    let _ = done.send(Instant::now());
    Ok(())
}

/// Publishes the warm-up and waits until it has been read; then publishes `count` messages and
/// returns the seconds from the first of them to the ack of the last.
async fn timed(
    js: &jetstream::Context,
    subject: &str,
    payload: &Bytes,
    warmup: u64,
    count: u64,
    reader: Reader,
) -> Result<f64, BenchError> {
    let Reader {
        warmed,
        done,
        mut task,
    } = reader;
    publish(js, subject, payload, warmup).await?;
    if warmup > 0 {
        wait_for(warmed, &mut task, "the raw warm-up").await?;
    }
    let started = Instant::now();
    publish(js, subject, payload, count).await?;
    let finished = wait_for(done, &mut task, "the raw run").await?;
    task.await.map_err(BenchError::task("raw consumer"))??;
    Ok(finished.duration_since(started).as_secs_f64())
}

/// The reader's `signal`, within [`PHASE_DEADLINE`]; a reader that stopped without sending it
/// fails with its own error when it has one.
async fn wait_for<T>(
    signal: oneshot::Receiver<T>,
    task: &mut JoinHandle<Result<(), BenchError>>,
    what: &str,
) -> Result<T, BenchError> {
    match tokio::time::timeout(PHASE_DEADLINE, signal).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => {
            task.await.map_err(BenchError::task("raw consumer"))??;
            Err(BenchError::Failed(format!(
                "the raw consumer stopped during {what}"
            )))
        }
        Err(_) => Err(BenchError::Failed(format!("{what} did not finish"))),
    }
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
