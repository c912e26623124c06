//! The durable consumer `tracker` on `onedoor.v1.case.>`, feeding the store.
//!
//! Each message is stored and its case re-folded in one transaction, and acknowledged only after
//! that commit. Since applying is idempotent (see `store::write`), a crash between commit and
//! ack only means a harmless redelivery, and a restart resumes from the consumer's ack floor.
//! A message that is not a case event is recorded and acknowledged, so it never wedges the
//! consumer. Only a database failure leaves a message un-acked: the batch is held, kept in
//! progress with the server (so it is not redelivered meanwhile) and written again with
//! back-off until a commit succeeds; the store is reported failing ([`StoreHealth`]) until
//! then, and nothing after the batch is read, let alone acknowledged.

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::Subject;
use async_nats::jetstream::consumer::pull::{self, Stream as Messages};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, AckKind, ErrorCode, Message};
use bytes::Bytes;
use futures::{FutureExt as _, StreamExt as _};
use onedoor_bus::case_log::decode_stored;
use onedoor_bus::subjects::{STREAM_SUBJECTS, TRACKER_REBUILD_CONSUMER};
use onedoor_bus::{STREAM_NAME, StoredEvent};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use crate::config::{DatabaseUrl, TrackerConfig};
use crate::error::TrackerError;
use crate::metrics as m;
use crate::store::{Applied, Checked, Incoming, RebuildFile, Store, Writing};
use crate::store_health::StoreHealth;

/// Messages per pull request, and at most per transaction: large enough for a fast replay
/// (one commit, one fsync, for many events), small enough that a crash leaves few messages
/// waiting for `ACK_WAIT`.
const BATCH: usize = 256;
/// The same for a rebuild: nothing else waits on the database then, and a crash means
/// running the rebuild again anyway, so fewer, larger transactions win.
const REBUILD_BATCH: usize = 2048;
/// Messages a rebuild stores per transaction. The case rows a transaction moves are written
/// once, at its commit, so a case whose events span several batches is written once instead
/// of once per batch, and the log is written and checkpointed a few times instead of at every
/// batch (1,000,000 events: 104.5 s with 16 batches per transaction, 90.6 s with 64, 90.8 s
/// with 256). What it holds until then is the folded state of each case it moved: tens of
/// megabytes for 64 batches.
const REBUILD_TRANSACTION: usize = 64 * REBUILD_BATCH;
/// Rebuild batches prepared ahead of the one being written.
const READ_AHEAD: usize = 2;
/// Idle heartbeat and pull expiry: a lost pull (server restart) is noticed within seconds.
const HEARTBEAT: Duration = Duration::from_secs(5);
const EXPIRES: Duration = Duration::from_secs(30);
/// Back-off between attempts when NATS or the database is down.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// The contract consumer: durable, every case subject, explicit ack, from the stream's start.
/// No delivery limit: the tracker must see every event eventually, and poison messages are
/// recorded and acked, not redelivered.
pub fn consumer_config(name: &str, ack_wait: Duration) -> pull::Config {
    pull::Config {
        durable_name: Some(name.to_owned()),
        name: Some(name.to_owned()),
        description: Some("onedoor tracker: projects every case event into its database".into()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait,
        filter_subject: STREAM_SUBJECTS.to_owned(),
        ..Default::default()
    }
}

/// Turns stream messages into stored events and tells watchers which case moved.
#[derive(Debug, Clone)]
pub struct Projection {
    store: Store,
    /// Case ids whose view moved; `WatchCase` streams listen here.
    moved: broadcast::Sender<String>,
    health: StoreHealth,
}

/// How [`Projection::process`] ended.
enum Processed {
    /// Stored and acknowledged.
    Stored,
    /// Asked to stop while the store was failing: nothing acknowledged.
    Stopped,
}

impl Projection {
    pub fn new(store: Store, moved: broadcast::Sender<String>) -> Self {
        Projection {
            store,
            moved,
            health: StoreHealth::default(),
        }
    }

    /// Whether its writes commit.
    pub fn health(&self) -> StoreHealth {
        self.health.clone()
    }

    /// Stores one message from stream sequence `sequence`. A message that is not a valid case
    /// event is recorded as rejected; only database failures are errors.
    pub async fn handle(
        &self,
        sequence: u64,
        subject: &str,
        payload: Bytes,
    ) -> Result<Applied, TrackerError> {
        let mut applied = self.handle_batch(&[(sequence, subject, payload)]).await?;
        applied.pop().ok_or_else(|| TrackerError::Corrupt {
            what: "a batch of one".into(),
            why: "no outcome".into(),
        })
    }

    /// Stores messages (stream sequence, subject, payload) in one transaction, in order.
    pub async fn handle_batch(
        &self,
        messages: &[(u64, &str, Bytes)],
    ) -> Result<Vec<Applied>, TrackerError> {
        let decoded = decode_all(
            messages
                .iter()
                .map(|(sequence, _, payload)| (*sequence, payload)),
        );
        let incoming = incoming(
            messages
                .iter()
                .map(|(sequence, subject, payload)| (*sequence, *subject, payload)),
            &decoded,
        );
        let outcomes = self.store.apply_batch(&incoming).await?;
        self.record(&outcomes);
        Ok(outcomes)
    }

    /// Counts a batch's outcomes and tells watchers which cases moved.
    fn record(&self, outcomes: &[Applied]) {
        // Counted once per batch: each `counter!` looks its counter up by name.
        let (mut projected, mut duplicate, mut rejected) = (0, 0, 0);
        let watched = self.moved.receiver_count() > 0;
        for applied in outcomes {
            match applied {
                Applied::Projected { case_id, .. } => {
                    projected += 1;
                    if watched {
                        // A watcher gone meanwhile is fine.
                        let _ = self.moved.send(case_id.clone());
                    }
                }
                Applied::Duplicate => duplicate += 1,
                Applied::Rejected { case_id, label, .. } => {
                    rejected += 1;
                    metrics::counter!(m::QUARANTINED, "reason" => *label).increment(1);
                    // The case page lists what was not believed: it moved too.
                    if let (true, Some(case_id)) = (watched, case_id) {
                        let _ = self.moved.send(case_id.clone());
                    }
                }
            }
        }
        metrics::counter!(m::EVENTS_PROJECTED).increment(projected);
        metrics::counter!(m::EVENTS_DUPLICATE).increment(duplicate);
        metrics::counter!(m::MESSAGES_REJECTED).increment(rejected);
    }

    /// Decodes JetStream messages and checks their signatures: everything about a batch that
    /// needs no database, so it can run while the previous batch is being stored. With `ack`,
    /// the messages are kept to be acknowledged once stored; a replay acknowledges nothing and
    /// lets them go here, off the writer's path.
    async fn prepare(&self, batch: Vec<Message>, ack: bool) -> Prepared {
        let mut messages = Vec::with_capacity(if ack { batch.len() } else { 0 });
        let mut positions = Vec::with_capacity(batch.len());
        let mut payloads = Vec::with_capacity(batch.len());
        let mut position = (0, 1);
        for message in batch {
            match message.info() {
                Ok(info) => {
                    position = (info.stream_sequence, info.pending);
                    positions.push((info.stream_sequence, message.subject.clone()));
                    payloads.push(message.payload.clone());
                    if ack {
                        messages.push(message);
                    }
                }
                Err(error) => {
                    // Not a JetStream delivery at all; nothing to store, and redelivering it
                    // cannot help.
                    tracing::warn!(%error, subject = %message.subject, "message without delivery info; terminating it");
                    if let Err(error) = message.ack_with(AckKind::Term).await {
                        tracing::warn!(%error, "terminating a message failed");
                    }
                }
            }
        }
        let decoded = decode_all(
            positions
                .iter()
                .zip(&payloads)
                .map(|((sequence, _), payload)| (*sequence, payload)),
        );
        let checked = self
            .store
            .check(&prepared_incoming(&positions, &payloads, &decoded))
            .await;
        Prepared {
            messages,
            positions,
            payloads,
            decoded,
            checked,
            position,
        }
    }

    /// Stores a prepared batch in one transaction, then acknowledges its messages: only after
    /// the commit, since an ack tells the server it may forget them for us.
    async fn store_prepared(&self, prepared: &Prepared) -> Result<(), TrackerError> {
        let incoming =
            prepared_incoming(&prepared.positions, &prepared.payloads, &prepared.decoded);
        let outcomes = self
            .store
            .apply_checked(&incoming, prepared.checked.clone())
            .await?;
        self.record(&outcomes);
        for ((message, (sequence, _)), applied) in prepared
            .messages
            .iter()
            .zip(&prepared.positions)
            .zip(&outcomes)
        {
            tracing::debug!(stream_sequence = sequence, ?applied, "message applied");
            if let Err(error) = message.ack().await {
                // The commit stands; the redelivery this causes changes nothing.
                tracing::warn!(%error, stream_sequence = sequence, "ack failed");
            }
        }
        Ok(())
    }

    /// Prepares and stores JetStream messages, retrying until they are stored or `stop`.
    ///
    /// A failed write (disk full, read-only file, database gone) acknowledges nothing: the
    /// store is reported failing, its connections dropped, and the same batch written again
    /// with back-off. Meanwhile the batch is kept "in progress" with the server more often
    /// than `ack_wait`, so the server does not redeliver it to us while we hold it.
    async fn process(
        &self,
        batch: Vec<Message>,
        stop: &mut watch::Receiver<bool>,
        ack_wait: Duration,
    ) -> Result<Processed, TrackerError> {
        let prepared = self.prepare(batch, true).await;
        let longest = RETRY_MAX.min(ack_wait / 2).max(RETRY_MIN);
        let mut pause = RETRY_MIN;
        loop {
            let attempt = self.store_prepared(&prepared);
            match in_progress_while(&prepared.messages, longest, attempt).await {
                Ok(()) => {
                    self.health.stored();
                    return Ok(Processed::Stored);
                }
                Err(error) => {
                    self.health.failed(&error);
                    self.store.reset_connections();
                    keep_in_progress(&prepared.messages).await;
                }
            }
            tokio::select! {
                _ = stopped(stop) => return Ok(Processed::Stopped),
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(longest);
        }
    }
}

/// Runs `work`, telling the server every `every` that `messages` are still in progress: an
/// attempt can outlast `ack_wait` (a database that does not answer holds it for the pool's
/// acquire timeout), and the server would redeliver the batch meanwhile.
async fn in_progress_while<T>(
    messages: &[Message],
    every: Duration,
    work: impl Future<Output = T>,
) -> T {
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = tick.tick() => keep_in_progress(messages).await,
        }
    }
}

/// Tells the server we still work on `messages`, which restarts their `ack_wait`.
async fn keep_in_progress(messages: &[Message]) {
    for message in messages {
        if let Err(error) = message.ack_with(AckKind::Progress).await {
            // At worst the server redelivers it; applying twice changes nothing.
            tracing::debug!(%error, "in-progress ack failed");
        }
    }
}

/// A batch of JetStream messages, decoded and signature-checked, not stored yet.
struct Prepared {
    /// The messages to acknowledge once stored (none in a replay).
    messages: Vec<Message>,
    /// Each usable message's stream sequence and subject.
    positions: Vec<(u64, Subject)>,
    /// Each one's payload, as it came.
    payloads: Vec<Bytes>,
    /// Each message's event, or why it is not one.
    decoded: Vec<Result<StoredEvent, String>>,
    checked: Checked,
    /// The last message's stream sequence, and what the server still had pending then.
    position: (u64, u64),
}

/// The store's view of a prepared batch.
fn prepared_incoming<'a>(
    positions: &'a [(u64, Subject)],
    payloads: &'a [Bytes],
    decoded: &'a [Result<StoredEvent, String>],
) -> Vec<Incoming<'a>> {
    incoming(
        positions
            .iter()
            .zip(payloads)
            .map(|((sequence, subject), payload)| (*sequence, subject.as_str(), payload)),
        decoded,
    )
}

/// Decodes each message (stream sequence, payload). Whether it belongs on its subject, and
/// everything else about it, the store's verification decides.
fn decode_all<'a>(
    messages: impl Iterator<Item = (u64, &'a Bytes)>,
) -> Vec<Result<StoredEvent, String>> {
    messages
        .map(|(sequence, payload)| {
            decode_stored(sequence, payload.clone()).map_err(|e| e.to_string())
        })
        .collect()
}

/// The store's view of decoded messages (`messages` gives each one's sequence, subject and
/// payload).
fn incoming<'a>(
    messages: impl Iterator<Item = (u64, &'a str, &'a Bytes)>,
    decoded: &'a [Result<StoredEvent, String>],
) -> Vec<Incoming<'a>> {
    messages
        .zip(decoded)
        .map(|((sequence, subject, payload), decoded)| match decoded {
            Ok(stored) => Incoming::Event { subject, stored },
            Err(why) => Incoming::Undecodable {
                sequence,
                subject,
                payload,
                why,
            },
        })
        .collect()
}

/// `first` and the messages already waiting behind it (at most `limit` in all), without
/// waiting for more; an error met on the way is returned for the caller to handle after the
/// batch.
fn with_ready(
    first: Message,
    messages: &mut Messages,
    limit: usize,
) -> (Vec<Message>, Option<pull::MessagesError>) {
    let mut batch = vec![first];
    while batch.len() < limit {
        match messages.next().now_or_never() {
            Some(Some(Ok(message))) => batch.push(message),
            Some(Some(Err(error))) => return (batch, Some(error)),
            Some(None) | None => break,
        }
    }
    (batch, None)
}

/// A replay's batch: messages awaited until `limit`, or the stream's last message then.
/// Taking only the messages already arrived (as the live projection does, for latency) gave
/// batches of about 130 during a rebuild. Signature checks of fewer than about 95 at a time
/// cost a quarter more each (see `onedoor_bus::audit`), and every batch is a statement.
async fn fill(
    first: Message,
    messages: &mut Messages,
    limit: usize,
    last_sequence: u64,
) -> (Vec<Message>, Option<pull::MessagesError>) {
    let mut batch = vec![first];
    while batch.len() < limit && !batch.last().is_some_and(|m| is_last(m, last_sequence)) {
        match messages.next().await {
            Some(Ok(message)) => batch.push(message),
            Some(Err(error)) => return (batch, Some(error)),
            None => break,
        }
    }
    (batch, None)
}

/// Whether nothing follows `message` in the replay; unreadable metadata counts as the end, so
/// the batch goes on as it is.
fn is_last(message: &Message, last_sequence: u64) -> bool {
    message.info().map_or(true, |info| {
        info.stream_sequence >= last_sequence || info.pending == 0
    })
}

fn nats_error(action: &'static str, error: impl std::fmt::Display) -> TrackerError {
    TrackerError::nats(action, error)
}

async fn open_messages(
    js: &jetstream::Context,
    consumer_name: &str,
    ack_wait: Duration,
) -> Result<Messages, TrackerError> {
    let stream = js
        .get_stream(STREAM_NAME)
        .await
        .map_err(|e| nats_error("binding to the ONEDOOR stream", e))?;
    let consumer: PullConsumer = stream
        .get_or_create_consumer(consumer_name, consumer_config(consumer_name, ack_wait))
        .await
        .map_err(|e| nats_error("creating the tracker's durable consumer", e))?;
    messages(&consumer, BATCH).await
}

async fn messages(consumer: &PullConsumer, batch: usize) -> Result<Messages, TrackerError> {
    consumer
        .stream()
        .max_messages_per_batch(batch)
        .heartbeat(HEARTBEAT)
        .expires(EXPIRES)
        .messages()
        .await
        .map_err(|e| nats_error("pulling from the tracker's consumer", e))
}

/// Resolves once `stop` says stop (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: nobody can ask us to keep going any more.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Runs the live projection until `stop`: connects (waiting as long as it takes, unless
/// `client` is already connected), binds the durable consumer, and stores every message. NATS
/// and database outages are retried with back-off, never fatal. `nats_up` follows whether
/// NATS answers, for health.
pub(crate) async fn run_live(
    projection: Projection,
    config: TrackerConfig,
    client: Option<async_nats::Client>,
    nats_up: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let client = match client {
        Some(client) => client,
        None => tokio::select! {
            _ = stopped(&mut stop) => return,
            client = connect_retrying(&config) => client,
        },
    };
    let _liveness =
        onedoor_natsauth::Liveness::watch_into(client.clone(), config.liveness, "tracker", nats_up);
    let js = jetstream::new(client);
    let mut pause = RETRY_MIN;
    let mut resumed = false;
    loop {
        match consume(&projection, &js, &config, &mut stop, resumed).await {
            Ok(()) => return,
            Err(error) => {
                resumed = true;
                tracing::warn!(%error, retry_in_ms = pause.as_millis() as u64, "projection interrupted; retrying");
            }
        }
        tokio::select! {
            _ = stopped(&mut stop) => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(RETRY_MAX);
    }
}

/// Waits for NATS without a deadline: the tracker serves from its database meanwhile. A
/// refusal (the server came up and rejects the identity) is logged as the error it is and
/// tried again slowly, since only an operator can fix it.
async fn connect_retrying(config: &TrackerConfig) -> async_nats::Client {
    let patient = config.nats.clone().with_startup_timeout(None);
    loop {
        match patient
            .connect(&onedoor_natsauth::Identity::Tracker, |options| {
                options.name("onedoor-tracker")
            })
            .await
        {
            Ok(client) => return client,
            Err(error) => {
                tracing::error!(%error, retry_in_s = REFUSED_RETRY.as_secs(), "the projection cannot connect to NATS");
                tokio::time::sleep(REFUSED_RETRY).await;
            }
        }
    }
}

/// How long to wait after NATS refused the tracker before asking again.
const REFUSED_RETRY: Duration = Duration::from_secs(30);

/// Consumes until `stop` (then `Ok`) or an error that needs a fresh consumer binding. A message
/// being stored is never cancelled half-way; on stop, the messages the client already holds are
/// stored and acked too, so a restart does not wait `ack_wait` for their redelivery.
async fn consume(
    projection: &Projection,
    js: &jetstream::Context,
    config: &TrackerConfig,
    stop: &mut watch::Receiver<bool>,
    resumed: bool,
) -> Result<(), TrackerError> {
    let mut messages = tokio::select! {
        _ = stopped(stop) => return Ok(()),
        messages = open_messages(js, &config.consumer, config.ack_wait) => messages?,
    };
    // The tracker's ready line says it serves; that the projection consumes is detail, except
    // after an interruption, when the operator who saw the warning wants to see it end.
    if resumed {
        tracing::info!(consumer = %config.consumer, "projection consuming again");
    } else {
        tracing::debug!(consumer = %config.consumer, "projection consuming");
    }
    loop {
        let next = tokio::select! {
            biased;
            _ = stopped(stop) => {
                let mut held = Vec::new();
                while let Some(Some(Ok(message))) = messages.next().now_or_never() {
                    held.push(message);
                }
                while !held.is_empty() {
                    let rest = held.split_off(held.len().min(BATCH));
                    let batch = std::mem::replace(&mut held, rest);
                    // Stopping, a failing store gets one attempt; the rest waits for the
                    // next start, un-acked.
                    if let Processed::Stopped = projection.process(batch, stop, config.ack_wait).await? {
                        return Ok(());
                    }
                }
                return Ok(());
            }
            next = messages.next() => next,
        };
        let next = match next {
            Some(Ok(message)) => {
                let (batch, error) = with_ready(message, &mut messages, BATCH);
                if let Processed::Stopped = projection.process(batch, stop, config.ack_wait).await?
                {
                    return Ok(());
                }
                match error {
                    Some(error) => Some(Err(error)),
                    None => continue,
                }
            }
            other => other,
        };
        match next {
            None => {
                return Err(TrackerError::Nats {
                    action: "reading the tracker's consumer",
                    kind: onedoor_bus::NatsErrorKind::Connection,
                    message: "the message stream ended".into(),
                });
            }
            Some(Err(error)) => {
                use async_nats::jetstream::consumer::pull::MessagesErrorKind as Kind;
                match error.kind() {
                    // The client re-pulls by itself after a missed heartbeat (server restart).
                    Kind::MissingHeartbeat => {
                        tracing::warn!(%error, "missed heartbeat on the tracker consumer");
                    }
                    _ => return Err(nats_error("reading the tracker's consumer", error)),
                }
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Reads the replayed stream batch by batch, prepares each (`Projection::prepare`) and hands it
/// on, until the message at `last_sequence` (or the last one pending) has been handed on. An
/// error is handed on too, and ends the reading; so does the receiver going away.
async fn read_ahead(
    projection: Projection,
    mut messages: Messages,
    last_sequence: u64,
    ready: mpsc::Sender<Result<Prepared, TrackerError>>,
) {
    use async_nats::jetstream::consumer::pull::MessagesErrorKind::MissingHeartbeat;
    while let Some(next) = messages.next().await {
        let message = match next {
            Ok(message) => message,
            Err(error) if error.kind() == MissingHeartbeat => continue,
            Err(error) => {
                let _ = ready
                    .send(Err(nats_error("replaying the stream", error)))
                    .await;
                return;
            }
        };
        let (batch, error) = fill(message, &mut messages, REBUILD_BATCH, last_sequence).await;
        let prepared = projection.prepare(batch, false).await;
        let (sequence, pending) = prepared.position;
        if ready.send(Ok(prepared)).await.is_err() {
            return;
        }
        if let Some(error) = error
            && error.kind() != MissingHeartbeat
        {
            let _ = ready
                .send(Err(nats_error("replaying the stream", error)))
                .await;
            return;
        }
        // A fresh consumer delivers in stream order, and every message before this one was
        // handed on: at the target, everything is read.
        if sequence >= last_sequence || pending == 0 {
            return;
        }
    }
}

fn is_consumer_not_found(error: &async_nats::jetstream::stream::ConsumerError) -> bool {
    matches!(error.kind(), ConsumerErrorKind::JetStream(e) if e.error_code() == ErrorCode::CONSUMER_NOT_FOUND)
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// Messages read from the stream.
    pub messages: u64,
    /// Of those, events stored.
    pub events: u64,
    /// Of those, messages recorded as rejected.
    pub rejected: u64,
    /// The stream's last sequence when the rebuild started; everything up to it is projected.
    pub last_sequence: u64,
    pub elapsed: Duration,
}

/// Replays the whole stream into an empty database, then creates the durable consumer the
/// live tracker uses just after the last message stored, so a tracker started afterwards
/// continues exactly where the rebuild stopped. SQLite is rebuilt into a new file that
/// replaces the database once complete ([`RebuildFile`]); PostgreSQL is emptied in place.
///
/// The replay reads through a consumer of its own that needs no acknowledgements (one per
/// event otherwise, each a message to the server and work for it), and stores many batches
/// per transaction. The durable consumer is deleted first and made again only after the last
/// commit: a rebuild cut short leaves no consumer behind, and a tracker started then creates
/// it at the stream's start and replays everything (applying is idempotent).
///
/// Stop the live tracker first, and anything else that has the database open: on PostgreSQL
/// both would write it; on SQLite they would go on with the old file.
pub async fn rebuild(config: &TrackerConfig) -> Result<RebuildReport, TrackerError> {
    config.validate()?;
    let started = Instant::now();
    // SQLite: a new file, moved over the database at the end; PostgreSQL: emptied in place.
    let rebuild_file = RebuildFile::prepare(&config.database)?;
    let url = rebuild_file
        .as_ref()
        .map_or_else(|| config.database.clone(), RebuildFile::url);
    let (mut stream, last_sequence) = bind_stream(config).await?;
    let store = empty_store(config, &url, &mut stream).await?;
    let projection = Projection::new(store.clone(), broadcast::channel(1).0);
    let replayed = if last_sequence > 0 {
        replay(&mut stream, &projection, &store, last_sequence).await?
    } else {
        Replayed::default()
    };
    store.restore_indexes().await?;
    let report = RebuildReport {
        messages: replayed.messages,
        events: store.event_count().await?,
        rejected: store.rejected_messages().await?.len() as u64,
        last_sequence,
        elapsed: Duration::ZERO,
    };
    store.finish_rebuild().await?;
    if let Some(file) = rebuild_file {
        file.install().await?;
    }
    // Only once everything is stored, indexed and in place.
    create_durable(&stream, config, replayed.stored_through).await?;
    Ok(RebuildReport {
        elapsed: started.elapsed(),
        ..report
    })
}

/// The ONEDOOR stream, and its last sequence now: what the rebuild replays up to.
async fn bind_stream(
    config: &TrackerConfig,
) -> Result<(jetstream::stream::Stream, u64), TrackerError> {
    let client = config.connect_nats("onedoor-tracker-rebuild").await?;
    let js = jetstream::new(client);
    let mut stream = js
        .get_stream(STREAM_NAME)
        .await
        .map_err(|e| nats_error("binding to the ONEDOOR stream", e))?;
    let last_sequence = stream
        .info()
        .await
        .map_err(|e| nats_error("reading the stream's state", e))?
        .state
        .last_sequence;
    Ok((stream, last_sequence))
}

/// The database at `url`, emptied and without its secondary indexes, after the tracker's
/// durable consumer is gone.
async fn empty_store(
    config: &TrackerConfig,
    url: &DatabaseUrl,
    stream: &mut jetstream::stream::Stream,
) -> Result<Store, TrackerError> {
    let mut store = Store::connect_for_rebuild(url).await?;
    if config.verify_signatures {
        store = store.with_audit(config.registry.clone());
    }
    // The consumer goes first: if the rebuild then fails, a tracker started later replays
    // everything into the old rows (harmless, applying is idempotent); the other order could
    // leave an empty database behind a consumer that has already passed every event.
    if let Err(error) = stream.delete_consumer(&config.consumer).await
        && !is_consumer_not_found(&error)
    {
        return Err(nats_error("deleting the tracker's consumer", error));
    }
    store.reset().await?;
    // Created again after the replay; if the rebuild fails before that, by the next
    // `Store::connect`.
    store.defer_indexes().await?;
    Ok(store)
}

/// What a replay stored.
#[derive(Debug, Default)]
struct Replayed {
    /// Messages read from the stream.
    messages: u64,
    /// The last stream sequence stored: the durable consumer starts after it.
    stored_through: u64,
}

/// Replays the stream up to `last_sequence` into `store` through a consumer of its own.
async fn replay(
    stream: &mut jetstream::stream::Stream,
    projection: &Projection,
    store: &Store,
    last_sequence: u64,
) -> Result<Replayed, TrackerError> {
    // One left by a rebuild cut short would resume where that one stopped: start afresh.
    if let Err(error) = stream.delete_consumer(TRACKER_REBUILD_CONSUMER).await
        && !is_consumer_not_found(&error)
    {
        return Err(nats_error("deleting an earlier replay consumer", error));
    }
    let replay: PullConsumer = stream
        .create_consumer(replay_config())
        .await
        .map_err(|e| nats_error("creating the replay consumer", e))?;
    let replay_name = replay.cached_info().name.clone();
    let messages = messages(&replay, REBUILD_BATCH).await?;
    // Decoding and signature checks of the next batches run while this one is written:
    // on two cores, the checks and the database each keep one busy.
    let (ready, prepared) = mpsc::channel(READ_AHEAD);
    let mut reader = JoinSet::new();
    reader.spawn(read_ahead(
        projection.clone(),
        messages,
        last_sequence,
        ready,
    ));
    let replayed = write_prepared(prepared, projection, store).await?;
    if let Some(Err(error)) = reader.join_next().await {
        return Err(TrackerError::nats(
            "replaying the stream",
            format!("the stream reader failed: {error}"),
        ));
    }
    // It would go by itself once idle; no need to leave it until then.
    if let Err(error) = stream.delete_consumer(&replay_name).await {
        tracing::debug!(%error, "deleting the replay consumer failed; it expires by itself");
    }
    Ok(replayed)
}

/// Stores the prepared batches as they come, many batches per transaction.
async fn write_prepared(
    mut prepared: mpsc::Receiver<Result<Prepared, TrackerError>>,
    projection: &Projection,
    store: &Store,
) -> Result<Replayed, TrackerError> {
    let mut replayed = Replayed::default();
    let mut writing: Option<Writing> = None;
    while let Some(batch) = prepared.recv().await {
        let Prepared {
            positions,
            payloads,
            decoded,
            checked,
            ..
        } = batch?;
        let open = match writing.as_mut() {
            Some(open) => open,
            None => writing.insert(store.begin_writing().await?),
        };
        open.apply(&prepared_incoming(&positions, &payloads, &decoded), checked)
            .await?;
        replayed.messages += positions.len() as u64;
        if let Some((sequence, _)) = positions.last() {
            replayed.stored_through = replayed.stored_through.max(*sequence);
        }
        if open.len() >= REBUILD_TRANSACTION
            && let Some(full) = writing.take()
        {
            projection.record(&full.commit().await?);
        }
    }
    if let Some(last) = writing.take() {
        projection.record(&last.commit().await?);
    }
    Ok(replayed)
}

/// The tracker's durable consumer, starting just after the last message stored.
async fn create_durable(
    stream: &jetstream::stream::Stream,
    config: &TrackerConfig,
    stored_through: u64,
) -> Result<(), TrackerError> {
    let mut durable = consumer_config(&config.consumer, config.ack_wait);
    if stored_through > 0 {
        durable.deliver_policy = DeliverPolicy::ByStartSequence {
            start_sequence: stored_through + 1,
        };
    }
    stream
        .create_consumer(durable)
        .await
        .map_err(|e| nats_error("creating the tracker's durable consumer", e))?;
    Ok(())
}

/// The rebuild's own consumer: not durable, every case subject, nothing to acknowledge. Gone
/// by itself a minute after its reader stops (a rebuild cut short). Named, because the
/// tracker's NATS identity may create only consumers it names (`onedoor-natsauth`'s
/// permissions): an unnamed create could rewrite any consumer of the stream.
fn replay_config() -> pull::Config {
    pull::Config {
        name: Some(TRACKER_REBUILD_CONSUMER.to_owned()),
        description: Some("onedoor tracker rebuild: replays the stream".into()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::None,
        filter_subject: STREAM_SUBJECTS.to_owned(),
        inactive_threshold: Duration::from_secs(60),
        ..Default::default()
    }
}
