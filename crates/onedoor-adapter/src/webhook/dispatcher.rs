//! The push loop: one inbox session feeds the webhook; each delivery is POSTed on its own task
//! (the session's window bounds how many at once), then acknowledged (2xx), handed back to be
//! sent again after a jittered pause (anything else), or recorded as stuck (last attempt).

use std::sync::Arc;
use std::time::Duration;

use onedoor_bus::stuck::{self, StuckRecord};
use onedoor_bus::{Inbox, InboxDelivery};
use onedoor_case::EventId;
use time::OffsetDateTime;
use tokio::sync::{OnceCell, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::client::{Failure, Receiver};
use super::config::WebhookConfig;
use super::payload::JsonBody;
use super::retry::RetrySchedule;
use crate::error::AdapterError;
use crate::inbox::InboxService;
use crate::metrics as m;

/// Pause before reopening the session after an error retrying cannot fix at once (the inbox
/// consumer was changed under us); an operator is told by the error log meanwhile.
const REOPEN_PAUSE: Duration = Duration::from_secs(5);

/// Everything one delivery needs, shared by the tasks.
struct Webhook {
    receiver: Receiver,
    body: JsonBody,
    retry: RetrySchedule,
    inbox: InboxService,
    stuck_bucket: OnceCell<async_nats::jetstream::kv::Store>,
    jetstream: async_nats::jetstream::Context,
}

/// Starts pushing `inbox` to the configured receiver until `stopping` turns true (or its
/// sender is dropped). Refuses a configuration that does not fit the inbox before anything
/// is pulled.
pub(crate) fn spawn(
    config: &WebhookConfig,
    inbox: InboxService,
    jetstream: async_nats::jetstream::Context,
    stopping: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, AdapterError> {
    let url = config.validate(inbox.settings())?;
    let webhook = Arc::new(Webhook {
        receiver: Receiver::new(config, url)?,
        body: JsonBody::new()?,
        retry: config.retry.clone(),
        inbox,
        stuck_bucket: OnceCell::new(),
        jetstream,
    });
    tracing::info!(
        agency = %webhook.inbox.agency(),
        url = %webhook.receiver.shown_url(),
        signatures = config.secrets.iter().count(),
        "pushing the inbox to a webhook"
    );
    Ok(tokio::spawn(webhook.run(stopping)))
}

impl Webhook {
    async fn run(self: Arc<Self>, mut stopping: watch::Receiver<bool>) {
        // Dropped with this future: in-flight POSTs are abandoned and the session releases
        // what it holds, so those items come again (receivers de-duplicate by webhook-id).
        let mut tasks = JoinSet::new();
        loop {
            let session = tokio::select! {
                session = Inbox::open_with(self.inbox.in_flight().clone()) => session,
                _ = stopping.wait_for(|stop| *stop) => return,
            };
            let mut session = match session {
                Ok(session) => session,
                Err(err) => {
                    tracing::error!(error = %err, "webhook: cannot open the inbox; retrying");
                    tokio::time::sleep(REOPEN_PAUSE).await;
                    continue;
                }
            };
            loop {
                while tasks.try_join_next().is_some() {}
                let delivery = tokio::select! {
                    delivery = session.next() => delivery,
                    _ = stopping.wait_for(|stop| *stop) => return,
                };
                match delivery {
                    Ok(delivery) => {
                        tasks.spawn(Arc::clone(&self).deliver(delivery));
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "webhook: the inbox cannot continue; reopening");
                        tokio::time::sleep(REOPEN_PAUSE).await;
                        break;
                    }
                }
            }
        }
    }

    async fn deliver(self: Arc<Self>, delivery: InboxDelivery) {
        let event_id = delivery.stored.event.event_id;
        let attempt = delivery.delivery_attempt;
        let (case_id, sequence) = (delivery.stored.event.case_id, delivery.stream_sequence);
        let delivery = match self.inbox.believed(delivery).await {
            Ok(Some(delivery)) => delivery,
            Ok(None) => return, // quarantined: acknowledged and recorded, never a task
            Err(err) => {
                // Left held: it comes back after its ack wait, and is checked again then.
                tracing::warn!(%case_id, %event_id, error = %err, "webhook: could not check the event; it will come again");
                return;
            }
        };
        let item = match self.inbox.item(delivery).await {
            Ok(item) => item,
            Err(err) => {
                // Left held, like an event that could not be checked: it comes back.
                tracing::warn!(%case_id, %event_id, error = %err, "webhook: could not read the event's case; it will come again");
                return;
            }
        };
        let traceparent = item
            .event
            .as_ref()
            .filter(|e| !e.trace_id.is_empty() && !e.span_id.is_empty())
            .map(|e| format!("00-{}-{}-01", e.trace_id, e.span_id));
        let posted = match self.body.encode(&item) {
            Ok(body) => {
                self.receiver
                    .post(&event_id.to_string(), body, traceparent)
                    .await
            }
            Err(err) => Err(Failure::Unreachable(format!(
                "the item could not be written: {err}"
            ))),
        };
        match posted {
            Ok(status) => self.delivered(event_id, attempt, status).await,
            Err(failure) => {
                let stuck = Stuck {
                    event_id,
                    case_id: case_id.to_string(),
                    sequence,
                    attempt,
                };
                self.failed(stuck, failure).await;
            }
        }
    }

    async fn delivered(&self, event_id: EventId, attempt: u32, status: u16) {
        self.count("delivered");
        let outcome = self.inbox.in_flight().ack(&[event_id]).await;
        if outcome.failed.is_empty() {
            tracing::debug!(%event_id, attempt, status, "webhook delivered");
        } else {
            // The receiver has it; the bus did not confirm the ack, so it may be posted again.
            tracing::warn!(%event_id, attempt, status, "webhook delivered, but the ack was not confirmed; the receiver may get it again (same webhook-id)");
        }
    }

    async fn failed(&self, item: Stuck, failure: Failure) {
        let max = self.inbox.settings().max_deliver;
        let event_id = item.event_id;
        if item.attempt < max {
            self.count("failed");
            let pause = self.retry.delay(item.attempt);
            tracing::warn!(%event_id, case_id = item.case_id, attempt = item.attempt, max, retry_in = ?pause, reason = %failure, "webhook failed; will retry");
            self.inbox.in_flight().retry_after(&event_id, pause).await;
            return;
        }
        self.count("stuck");
        tracing::error!(%event_id, case_id = item.case_id, attempt = item.attempt, reason = %failure, "webhook failed on its last attempt; recording it as stuck");
        let record = StuckRecord {
            agency: self.inbox.agency().to_string(),
            case_id: item.case_id,
            event_id: event_id.to_string(),
            stream_sequence: item.sequence,
            deliveries: u64::from(item.attempt),
            recorded_at: OffsetDateTime::now_utc(),
            reason: format!(
                "webhook: {} attempts failed; the last: {failure}",
                item.attempt
            ),
        };
        if let Err(err) = self.record(&record).await {
            tracing::error!(key = record.key(), error = %err, "webhook: could not record a stuck item; the server's max-deliveries advisory will");
        }
        // A NAK on the last attempt ends the delivery now; the server's max-deliveries advisory
        // then also records it, so it is recorded even if the write above failed.
        self.inbox
            .in_flight()
            .retry_after(&event_id, Duration::ZERO)
            .await;
    }

    async fn record(&self, record: &StuckRecord) -> Result<(), AdapterError> {
        let store = self
            .stuck_bucket
            .get_or_try_init(|| stuck::ensure_stuck_bucket(&self.jetstream))
            .await?;
        stuck::record_stuck(store, record).await?;
        Ok(())
    }

    fn count(&self, outcome: &'static str) {
        metrics::counter!(m::WEBHOOK_POSTS, "agency" => self.inbox.agency().to_string(), "outcome" => outcome)
            .increment(1);
    }
}

/// What a stuck record names.
struct Stuck {
    event_id: EventId,
    case_id: String,
    sequence: u64,
    attempt: u32,
}
