//! [`Inbox`]: one client's session on its agency's inbox: pulls within a bounded window, hands
//! out decoded deliveries, terminates what cannot be decoded, and releases what it still holds
//! when it ends.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::pull::Batch;
use async_nats::jetstream::{self, AckKind};
use futures::{FutureExt as _, StreamExt as _};
use onedoor_case::{AgencyCode, CaseId};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::time::Instant;

use super::consumer::{InboxEnsured, ensure_inbox, ensure_inbox_outcome};
use super::in_flight::{Held, InFlight, InboxStats, send_naks};
use super::settings::InboxSettings;
use crate::case_log::{NATS_MSG_ID, StoredEvent, decode_stored};
use crate::error::BusError;
use crate::stuck::{StuckRecord, ids_from_envelope};

/// How long past its `expires` a pull request is given before it is presumed lost (the server
/// restarted or the connection dropped, and with it the request) and re-issued.
const PULL_GRACE: Duration = Duration::from_secs(2);

/// Pause after a failed pull, doubling up to [`MAX_RETRY_PAUSE`] while failures continue.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(100);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// One event handed to the agency.
#[derive(Debug, Clone)]
pub struct InboxDelivery {
    pub stored: StoredEvent,
    /// 1 for the first delivery; higher when the event comes back unacknowledged.
    pub delivery_attempt: u32,
    pub stream_sequence: u64,
}

/// A pull request in progress: the messages it may still bring, and when to give up on it.
struct Pull {
    batch: Batch,
    deadline: Instant,
}

/// One session on an agency's inbox (one open `Inbox` gRPC stream).
///
/// Holds at most `max_in_flight` unacknowledged deliveries: it asks the server only for as many
/// messages as it has room for, counting what it handed out and what it has asked for.
/// Acknowledgements go through the shared [`InFlight`] (see [`Inbox::in_flight`]).
///
/// [`Inbox::next`] is cancel-safe: a message is registered before `next` returns it, and a
/// message not yet taken stays in the pull's buffer.
///
/// Dropping the session releases what it holds (see [`InFlight`]'s release rules);
/// [`Inbox::close`] does the same and waits for the server to have the NAKs.
pub struct Inbox {
    in_flight: InFlight,
    /// Most unacknowledged deliveries this session holds: the consumer's window, or less when
    /// the client asked for less.
    window: usize,
    consumer: PullConsumer,
    session: u64,
    pull: Option<Pull>,
    changed: watch::Receiver<u64>,
    /// Consecutive failed pulls, for the retry pause and for logging.
    failures: u32,
    /// The last pull failed in a way that may mean the consumer is gone: ensure it again before
    /// the next pull (docs/jetstream.md §8).
    rebind: bool,
    closed: bool,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("agency", self.in_flight.agency())
            .field("session", &self.session)
            .field("pulling", &self.pull.is_some())
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

impl Inbox {
    /// Opens a session with a registry of its own. Use [`Inbox::open_with`] when `Ack` calls
    /// must reach deliveries of several sessions (the adapter).
    pub async fn open(
        js: jetstream::Context,
        agency: &AgencyCode,
        settings: &InboxSettings,
    ) -> Result<Inbox, BusError> {
        let in_flight = InFlight::new(js, agency.clone(), settings.clone())?;
        Self::open_with(in_flight).await
    }

    /// Opens a session sharing `in_flight` (its agency, settings and NATS connection), making
    /// sure the inbox consumer exists first.
    #[tracing::instrument(skip_all, fields(agency = %in_flight.agency()))]
    pub async fn open_with(in_flight: InFlight) -> Result<Inbox, BusError> {
        let consumer = ensure_inbox(
            in_flight.jetstream(),
            in_flight.agency(),
            in_flight.settings(),
        )
        .await?;
        let session = in_flight.new_session();
        tracing::debug!(session, "inbox session opened");
        Ok(Inbox {
            window: in_flight.settings().max_in_flight,
            changed: in_flight.subscribe(),
            in_flight,
            consumer,
            session,
            pull: None,
            failures: 0,
            rebind: false,
            closed: false,
        })
    }

    /// Narrows this session's window below the consumer's (a client asking for fewer
    /// unacknowledged items at a time); it can never widen it.
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window.clamp(1, self.in_flight.settings().max_in_flight);
        self
    }

    /// The registry `Ack` calls go through.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.clone()
    }

    pub fn stats(&self) -> InboxStats {
        self.in_flight.stats()
    }

    /// The next delivery. Waits while the window is full or no event is pending.
    ///
    /// Transient trouble (server restart, lost pull request, timeouts) is logged and retried,
    /// never returned. The only error is one that retrying cannot fix: the inbox consumer was
    /// changed into something this code must not use ([`BusError::InboxConflict`]), or the
    /// settings are invalid.
    pub async fn next(&mut self) -> Result<InboxDelivery, BusError> {
        loop {
            self.in_flight.sweep();

            if self.rebind {
                self.rebind_consumer().await?;
                continue;
            }

            let Some(pull) = self.pull.as_mut() else {
                self.start_pull().await;
                continue;
            };

            match tokio::time::timeout_at(pull.deadline, pull.batch.next()).await {
                Err(_) => {
                    // No answer by expires + grace: the request died with a connection or a
                    // server. A fresh one is the only way to get messages again.
                    tracing::debug!(session = self.session, "pull request presumed lost");
                    self.pull = None;
                }
                // Expired or fulfilled: the next loop asks again with the room there is now.
                Ok(None) => self.pull = None,
                Ok(Some(Err(err))) => {
                    self.pull = None;
                    self.failed("pull", &err.to_string()).await;
                    self.rebind = true;
                }
                Ok(Some(Ok(message))) => {
                    self.failures = 0;
                    if let Some(delivery) = self.accept(message).await {
                        return Ok(delivery);
                    }
                }
            }
        }
    }

    /// The session as a stream of deliveries; it ends after a fatal error.
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<InboxDelivery, BusError>> {
        futures::stream::unfold(Some(self), |state| async move {
            let mut inbox = state?;
            match inbox.next().await {
                Ok(delivery) => Some((Ok(delivery), Some(inbox))),
                Err(err) => Some((Err(err), None)),
            }
        })
    }

    /// Ends the session: releases what it holds (NAK with delay, see [`InFlight`]) and waits
    /// until the NAKs are sent. Returns how many deliveries were released.
    pub async fn close(mut self) -> usize {
        let naks = self.release();
        let released = naks.len();
        send_naks(naks).await;
        released
    }

    /// Marks the session closed and collects the NAKs to send: for what it handed out, and for
    /// messages the server already sent into the pull's buffer but nobody took (never seen by
    /// the client, so they may come back at once).
    fn release(&mut self) -> Vec<(jetstream::Message, Duration)> {
        if self.closed {
            return Vec::new();
        }
        self.closed = true;
        let mut naks = self.in_flight.release_session(self.session);
        if let Some(mut pull) = self.pull.take() {
            while let Some(Some(Ok(message))) = pull.batch.next().now_or_never() {
                naks.push((message, Duration::ZERO));
            }
        }
        tracing::debug!(
            session = self.session,
            released = naks.len(),
            "inbox session closed"
        );
        naks
    }

    /// Issues a pull for as many messages as the window has room for, or waits for room.
    async fn start_pull(&mut self) {
        let settings = self.in_flight.settings();
        // Mark changes seen *before* counting, so an ack landing in between still wakes us.
        self.changed.borrow_and_update();
        let (held, earliest) = self.in_flight.window(self.session);
        let room = self.window.min(settings.max_in_flight).saturating_sub(held);
        if room == 0 {
            // Full: wait until something leaves (an ack, a release) or a held delivery's ack
            // wait ends (the server will resend it, so the window must pull again to get it).
            let wake = earliest.unwrap_or_else(|| Instant::now() + settings.pull_expires);
            tokio::select! {
                _ = self.changed.changed() => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
            return;
        }
        let expires = settings.pull_expires;
        match self
            .consumer
            .batch()
            .max_messages(room)
            .expires(expires)
            .messages()
            .await
        {
            Ok(batch) => {
                self.pull = Some(Pull {
                    batch,
                    deadline: Instant::now() + expires + PULL_GRACE,
                });
            }
            Err(err) => {
                self.failed("starting a pull", &err.to_string()).await;
                self.rebind = true;
            }
        }
    }

    /// Ensures the consumer again after a failed pull (it may have been deleted). Only a
    /// conflict or invalid settings are returned; anything else is retried.
    async fn rebind_consumer(&mut self) -> Result<(), BusError> {
        match ensure_inbox_outcome(
            self.in_flight.jetstream(),
            self.in_flight.agency(),
            self.in_flight.settings(),
        )
        .await
        {
            Ok((consumer, ensured)) => {
                if ensured == InboxEnsured::Created {
                    // Someone deleted it while we were pulling. A new durable starts from the
                    // beginning of the stream, so the agency gets its whole history again
                    // (de-duplicated by event id on its side). Loud, because it is rare and big.
                    tracing::error!(
                        "inbox consumer was missing and has been re-created; every event addressed to this agency will be delivered again"
                    );
                }
                self.consumer = consumer;
                self.rebind = false;
                Ok(())
            }
            Err(err @ (BusError::InboxConflict { .. } | BusError::InvalidInboxSettings { .. })) => {
                tracing::error!(error = %err, "inbox cannot continue");
                Err(err)
            }
            Err(err) => {
                self.failed("re-checking the inbox consumer", &err.to_string())
                    .await;
                Ok(())
            }
        }
    }

    /// Logs a transient failure and pauses before the next try, longer while failures continue.
    async fn failed(&mut self, action: &str, error: &str) {
        self.failures = self.failures.saturating_add(1);
        let pause = FIRST_RETRY_PAUSE
            .saturating_mul(2u32.saturating_pow(self.failures.saturating_sub(1).min(16)))
            .min(MAX_RETRY_PAUSE);
        // The first few are routine around a reconnect; many in a row mean the inbox is stalled.
        if self.failures >= 10 {
            tracing::error!(
                action,
                error,
                failures = self.failures,
                "inbox keeps failing; retrying"
            );
        } else {
            tracing::warn!(
                action,
                error,
                failures = self.failures,
                "inbox failed; retrying"
            );
        }
        tokio::time::sleep(pause).await;
    }

    /// Turns one message into a delivery, or terminates it when it is not a case event.
    async fn accept(&mut self, message: jetstream::Message) -> Option<InboxDelivery> {
        let (stream_sequence, attempt) = match message.info() {
            Ok(info) => (
                info.stream_sequence,
                u32::try_from(info.delivered).unwrap_or(u32::MAX),
            ),
            Err(err) => {
                // Without the ack subject it cannot be acked either; the server will resend it.
                tracing::warn!(subject = %message.subject, error = %err, "inbox message without JetStream metadata");
                return None;
            }
        };
        match decode_stored(stream_sequence, message.payload.clone()) {
            Ok(stored) => {
                self.in_flight.insert(
                    stored.event.event_id,
                    Held {
                        message,
                        case_id: stored.event.case_id,
                        stream_sequence,
                        attempt,
                        deadline: Instant::now() + self.in_flight.settings().ack_wait_for(attempt),
                        session: self.session,
                        released: false,
                    },
                );
                Some(InboxDelivery {
                    stored,
                    delivery_attempt: attempt,
                    stream_sequence,
                })
            }
            Err(err) => {
                self.reject_malformed(message, stream_sequence, attempt, err)
                    .await;
                None
            }
        }
    }

    /// A message that is not a case event would be redelivered until it is stuck, holding a
    /// slot of the window each time. Record it as stuck first, then terminate it; if recording
    /// fails it is left to come back (never terminated unrecorded).
    async fn reject_malformed(
        &mut self,
        message: jetstream::Message,
        stream_sequence: u64,
        attempt: u32,
        err: BusError,
    ) {
        let msg_id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(NATS_MSG_ID))
            .map(|v| v.as_str().to_owned());
        let (case_id, event_id) = ids_from_envelope(message.subject.as_str(), msg_id.as_deref());
        // Keep only a case id that is one, so the record never names something else.
        let case_id = CaseId::parse(&case_id)
            .map(|id| id.to_string())
            .unwrap_or_default();
        tracing::warn!(stream_sequence, error = %err, "terminating a malformed inbox message");
        let record = StuckRecord {
            agency: self.in_flight.agency().to_string(),
            case_id,
            event_id,
            stream_sequence,
            deliveries: u64::from(attempt),
            recorded_at: OffsetDateTime::now_utc(),
            reason: format!("malformed event, terminated: {err}"),
        };
        match self.in_flight.record_stuck(&record).await {
            Ok(()) => match message.double_ack_with(AckKind::Term).await {
                Ok(()) => self.in_flight.count_terminated(),
                Err(e) => {
                    tracing::warn!(stream_sequence, error = %e, "terminating failed; it will come back and be terminated then");
                }
            },
            Err(e) => {
                tracing::error!(stream_sequence, error = %e, "cannot record a malformed message as stuck; leaving it to be redelivered");
                let delay = self.in_flight.settings().ack_wait_for(attempt);
                if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
                    tracing::debug!(error = %e, "nak of a malformed message failed");
                }
            }
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let naks = self.release();
        if naks.is_empty() {
            return;
        }
        // The client went away without `close` (its gRPC stream was dropped): send the NAKs on
        // the runtime. Without one, the deliveries simply wait out their ack wait.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(send_naks(naks));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The adapter drives sessions from tonic handlers, which need `Send` futures.
    #[allow(dead_code)]
    fn sessions_can_move_between_threads(inbox: &mut Inbox) -> impl Send + '_ {
        fn is_send<T: Send>(_: &T) {}
        is_send(&inbox.in_flight());
        inbox.next()
    }
}
