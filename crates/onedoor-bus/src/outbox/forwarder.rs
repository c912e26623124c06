//! [`Forwarder`]: empties a district office's outbox into the national stream, each case in outbox
//! order, exactly once, across any number of link cuts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use onedoor_case::{AgencyCode, CaseId, EventId};
use tokio::sync::watch;

use super::store::{
    BASE_HEADER, Base, DELIVERED_STREAM, NATIONAL_SEQUENCE_HEADER, OUTBOX_STREAM, PendingEntry,
    REASON_HEADER, all_on, conflict_subject, delivered_event, delivered_subject,
    ensure_outbox_streams,
};
use crate::case_log::{CaseLog, NATS_MSG_ID, headers};
use crate::error::BusError;
use crate::nats_error::NatsErrorKind;
use crate::subjects;
use crate::trace::TraceContext;

/// Waits between tries while the national stream cannot be reached: short enough that a link
/// back is used within a couple of seconds, long enough not to spin on a dead one.
const FIRST_RETRY: Duration = Duration::from_millis(50);
const LAST_RETRY: Duration = Duration::from_secs(2);
/// How often an entry looks whether the client has reconnected while it is not.
const OFFLINE_LOOK: Duration = Duration::from_millis(100);
/// How long a read through the case reader may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How many delivered sequences the forwarder keeps in memory for the entries after them.
const SENT_CACHED: usize = 100_000;

/// What a forwarder did since it started.
#[derive(Debug, Default)]
pub struct ForwarderStats {
    /// Entries the national stream acknowledged (including replays it de-duplicated).
    pub delivered: AtomicU64,
    /// Of those, replays the national stream already held (a publish whose ack was lost).
    pub duplicates: AtomicU64,
    /// Entries refused because the case changed nationally; kept in `OUTBOX_CONFLICTS`.
    pub conflicts: AtomicU64,
    /// Tries that failed or waited for want of the link (an entry's wait while the client is
    /// not connected counts once).
    pub retries: AtomicU64,
}

/// How one try of one entry ended.
enum Outcome {
    Delivered {
        sequence: u64,
        duplicate: bool,
    },
    Conflict(String),
    Retry(BusError),
    /// Not sent: the client is not connected to the capital.
    Offline,
}

/// Delivers the outbox of one office. `local` is a JetStream context on the office's own node
/// (its own domain); `national` is the office's client connection to the capital, as its
/// agency's NATS user, which may only receive replies under its agency's inbox prefix, so the
/// client must use it (`onedoor_natsauth::Identity::inbox_prefix`).
pub struct Forwarder {
    pub(super) local: jetstream::Context,
    national: jetstream::Context,
    pub(super) outbox: stream::Stream,
    delivered: stream::Stream,
    /// The office's reads of national cases (through the case reader).
    reads: CaseLog,
    /// National sequences of entries this run delivered, for the entries after them: a cache
    /// of `OUTBOX_DELIVERED`, which answers when it does not.
    sent: Mutex<HashMap<EventId, u64>>,
    stats: Arc<ForwarderStats>,
}

impl Forwarder {
    pub async fn new(
        local: jetstream::Context,
        national: jetstream::Context,
        office: AgencyCode,
    ) -> Result<Self, BusError> {
        ensure_outbox_streams(&local).await?;
        let get = |name: &'static str| {
            let local = local.clone();
            async move {
                local
                    .get_stream(name)
                    .await
                    .map_err(|source| BusError::GetStream {
                        stream: name.to_owned(),
                        source,
                    })
            }
        };
        Ok(Forwarder {
            outbox: get(OUTBOX_STREAM).await?,
            delivered: get(DELIVERED_STREAM).await?,
            reads: CaseLog::through_reader(national.clone(), office, READ_TIMEOUT),
            local,
            national,
            sent: Mutex::new(HashMap::new()),
            stats: Arc::new(ForwarderStats::default()),
        })
    }

    pub fn stats(&self) -> Arc<ForwarderStats> {
        self.stats.clone()
    }

    /// Tries `entry` until it is delivered (and its delivered copy kept) or kept as a
    /// conflict; `false` if stopped first. The entry itself stays in the outbox: the pipeline
    /// purges finished entries together.
    pub(super) async fn deliver(
        &self,
        entry: &PendingEntry,
        mut stop: watch::Receiver<bool>,
    ) -> Result<bool, BusError> {
        let mut pause = FIRST_RETRY;
        let mut offline = false;
        loop {
            let wait = match self.try_once(entry).await? {
                Outcome::Delivered {
                    sequence,
                    duplicate,
                } => {
                    self.settle(entry, sequence).await?;
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    if duplicate {
                        self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(true);
                }
                Outcome::Conflict(reason) => {
                    self.keep_conflict(entry, &reason).await?;
                    self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                    return Ok(true);
                }
                Outcome::Retry(error) => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%error, event_id = %entry.stored.event.event_id, "the national stream is out of reach; trying again");
                    let wait = pause;
                    pause = (pause * 2).min(LAST_RETRY);
                    wait
                }
                // Nothing was sent: look again soon (a local check), so the entry goes out
                // as soon as the client has reconnected, not after a grown back-off.
                Outcome::Offline => {
                    if !offline {
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        offline = true;
                    }
                    OFFLINE_LOOK
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return Ok(false);
            }
        }
    }

    /// One publish of `entry` to the national stream.
    async fn try_once(&self, entry: &PendingEntry) -> Result<Outcome, BusError> {
        let event = &entry.stored.event;
        // The client would hold the publish and send it on reconnecting, beside the retries
        // made meanwhile: copies of one entry crossing the link for nothing.
        if self.national.client().connection_state() != async_nats::connection::State::Connected {
            return Ok(Outcome::Offline);
        }
        let expected = match &entry.base {
            Base::National(sequence) => *sequence,
            Base::After(previous) => {
                match self.national_sequence_of(event.case_id, previous).await? {
                    Some(sequence) => sequence,
                    None => {
                        return Ok(Outcome::Conflict(format!(
                            "the event before it ({previous}) is not known to be delivered"
                        )));
                    }
                }
            }
        };
        let trace = TraceContext {
            trace_id: entry.stored.envelope.trace_id.clone(),
            span_id: entry.stored.envelope.span_id.clone(),
            sampled: true,
            tracestate: None,
        };
        let headers = headers(event, &entry.stored.wire, &trace, expected)?;
        let subject = subjects::event_subject(event)?;
        let published = match self
            .national
            .publish_with_headers(subject, headers, entry.stored.payload.clone())
            .await
        {
            Ok(ack) => ack.await,
            Err(err) => return Ok(Outcome::Retry(BusError::nats("forwarding an event", &err))),
        };
        match published {
            Ok(ack) => Ok(Outcome::Delivered {
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            }),
            Err(err) => {
                let error = BusError::nats("forwarding an event", &err);
                match error.nats_kind() {
                    // nats-server checks the expected sequence before the message id: a replay
                    // of an event an earlier try stored (its ack lost with the link) is refused
                    // as stale, not answered as a duplicate. Only the case's history tells.
                    Some(NatsErrorKind::WrongLastSequence) => {
                        match self.stored_nationally(event.case_id, event.event_id).await {
                            Ok(Some(sequence)) => Ok(Outcome::Delivered {
                                sequence,
                                duplicate: true,
                            }),
                            Ok(None) => Ok(Outcome::Conflict(format!(
                                "the case changed on the national stream after sequence {expected}"
                            ))),
                            Err(error) => Ok(Outcome::Retry(error)),
                        }
                    }
                    _ => Ok(Outcome::Retry(error)),
                }
            }
        }
    }

    /// Where the national stream holds `event_id` of `case_id`, read through the case reader
    /// as the office (a party to every case it wrote on).
    async fn stored_nationally(
        &self,
        case_id: CaseId,
        event_id: EventId,
    ) -> Result<Option<u64>, BusError> {
        let history = self.reads.load(case_id).await?;
        Ok(history
            .iter()
            .find(|s| s.event.event_id == event_id)
            .map(|s| s.sequence))
    }

    /// The national sequence of the office's event `event_id` on `case_id`, delivered before.
    async fn national_sequence_of(
        &self,
        case_id: CaseId,
        event_id: &EventId,
    ) -> Result<Option<u64>, BusError> {
        if let Some(sequence) = self.sent().get(event_id) {
            return Ok(Some(*sequence));
        }
        // After a restart: the office keeps what it delivered.
        let delivered = all_on(&self.delivered, &delivered_subject(&case_id)?).await?;
        for message in delivered.into_iter().rev() {
            let stored = delivered_event(message)?;
            if stored.event.event_id == *event_id {
                return Ok(Some(stored.sequence));
            }
        }
        Ok(None)
    }

    /// Keeps the delivered event, before the entry leaves the outbox (the pipeline purges it
    /// later): a crash in between replays the entry, which the national stream and this
    /// copy's message id de-duplicate.
    async fn settle(&self, entry: &PendingEntry, sequence: u64) -> Result<(), BusError> {
        let event = &entry.stored.event;
        {
            let mut sent = self.sent();
            // Only a cache: past this size, the entries after these read OUTBOX_DELIVERED.
            if sent.len() >= SENT_CACHED {
                sent.clear();
            }
            if let Base::After(previous) = &entry.base {
                sent.remove(previous);
            }
            sent.insert(event.event_id, sequence);
        }
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MSG_ID, event.event_id.to_string());
        headers.insert(NATIONAL_SEQUENCE_HEADER, sequence.to_string());
        self.local
            .publish_with_headers(
                delivered_subject(&event.case_id)?,
                headers,
                entry.stored.payload.clone(),
            )
            .await
            .map_err(|e| BusError::nats("recording a delivery", &e))?
            .await
            .map_err(|e| BusError::nats("recording a delivery", &e))?;
        Ok(())
    }

    async fn keep_conflict(&self, entry: &PendingEntry, reason: &str) -> Result<(), BusError> {
        let event = &entry.stored.event;
        tracing::error!(case_id = %event.case_id, event_id = %event.event_id, reason, "the national stream refused an office event; kept in OUTBOX_CONFLICTS for staff");
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MSG_ID, event.event_id.to_string());
        headers.insert(BASE_HEADER, entry.base.render());
        headers.insert(REASON_HEADER, reason);
        self.local
            .publish_with_headers(
                conflict_subject(&event.case_id)?,
                headers,
                entry.stored.payload.clone(),
            )
            .await
            .map_err(|e| BusError::nats("keeping a conflict", &e))?
            .await
            .map_err(|e| BusError::nats("keeping a conflict", &e))?;
        Ok(())
    }

    fn sent(&self) -> MutexGuard<'_, HashMap<EventId, u64>> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner())
    }
}
