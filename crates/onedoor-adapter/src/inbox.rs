//! The `Inbox` stream and `Ack` over the agency's durable consumer `inbox-<AGENCY>`. One
//! [`InFlight`] registry per adapter holds every delivery not yet acknowledged, so an `Ack` on
//! any call reaches a delivery made on any stream. Stuck items put back with `Redeliver` (see
//! [`crate::redeliver`]) join every stream beside the consumer's deliveries.

use std::pin::Pin;

use futures::Stream;
use onedoor_bus::{CaseLog, InFlight, Inbox, InboxDelivery, InboxSettings, TraceContext};
use onedoor_case::{AgencyCode, CaseId, EventId, LiveRegistry};
use onedoor_proto::v1;
use opentelemetry::global;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::error::AdapterError;
use crate::item::inbox_item;
use crate::metrics as m;
use crate::redeliver::{Replays, stuck_item};
use crate::requests;
use crate::telemetry;

/// Items buffered between the inbox session and the gRPC stream. The session's window is what
/// bounds memory; this only smooths the hand-over.
const STREAM_BUFFER: usize = 4;

/// Resolves once the adapter stops (`true` sent, or the sender dropped with an aborted `run`).
async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopping| *stopping).await;
}

pub type InboxStream = Pin<Box<dyn Stream<Item = Result<v1::InboxItem, Status>> + Send + 'static>>;

#[derive(Clone)]
pub struct InboxService {
    agency: AgencyCode,
    in_flight: InFlight,
    /// Becomes true when the adapter shuts down, and its sender is dropped when the adapter's
    /// `run` is dropped (aborted). Either ends every open stream: an inbox stream never ends by
    /// itself, so without this a graceful shutdown would wait for every client to hang up, and
    /// an aborted adapter would leave sessions pulling on its NATS connection.
    stopping: watch::Receiver<bool>,
    /// Told of every delivery, so that a `GetCase` or a step after it reads a replica that
    /// holds the delivered event (or asks the leader).
    log: CaseLog,
    /// The agency's own stuck records are read and cleared with it.
    jetstream: async_nats::jetstream::Context,
    replays: Replays,
    /// Gives each item its route step; without it items carry none.
    registry: Option<LiveRegistry>,
}

impl InboxService {
    pub fn new(
        jetstream: async_nats::jetstream::Context,
        agency: AgencyCode,
        settings: InboxSettings,
        stopping: watch::Receiver<bool>,
        log: CaseLog,
    ) -> Result<Self, AdapterError> {
        let in_flight = InFlight::new(jetstream.clone(), agency.clone(), settings)?;
        Ok(InboxService {
            agency,
            in_flight,
            stopping,
            log,
            jetstream,
            replays: Replays::default(),
            registry: None,
        })
    }

    /// Items name their route step from `registry`'s catalogue.
    pub fn with_registry(mut self, registry: impl Into<LiveRegistry>) -> Self {
        self.registry = Some(registry.into());
        self
    }

    pub fn settings(&self) -> &InboxSettings {
        self.in_flight.settings()
    }

    /// Turns true when the adapter stops (see `stopping` above).
    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.clone()
    }

    pub(crate) fn agency(&self) -> &AgencyCode {
        &self.agency
    }

    /// The registry acks go through, shared with the webhook (`crate::webhook`).
    pub(crate) fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    fn record_gauges(&self) {
        let stats = self.in_flight.stats();
        metrics::gauge!(m::INBOX_IN_FLIGHT, "agency" => self.agency.to_string())
            .set(stats.in_flight as f64);
    }

    pub async fn open_stream(
        &self,
        request: v1::InboxRequest,
    ) -> Result<InboxStream, AdapterError> {
        let window = match request.max_in_flight {
            0 => self.settings().max_in_flight,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let mut session = Inbox::open_with(self.in_flight.clone())
            .await?
            .with_window(window);
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(self.clone().replay_into(tx.clone()));
        let service = self.clone();
        let stopping = stopped(self.stopping.clone());
        tokio::spawn(async move {
            tokio::pin!(stopping);
            loop {
                let delivery = tokio::select! {
                    delivery = session.next() => delivery,
                    // Stop pulling as soon as the client goes away, so nothing more is taken
                    // out of the inbox for a stream nobody reads.
                    () = tx.closed() => break,
                    // The adapter stops: end the stream (the client reconnects) and release.
                    () = &mut stopping => break,
                };
                let item = match delivery {
                    Ok(delivery) => match service.believed(delivery).await {
                        Ok(Some(delivery)) => service.item(delivery).await.map_err(Status::from),
                        Ok(None) => continue,
                        Err(err) => Err(Status::from(err)),
                    },
                    Err(err) => Err(Status::from(AdapterError::from(err))),
                };
                let fatal = item.is_err();
                if tx.send(item).await.is_err() || fatal {
                    break;
                }
            }
            // Whatever this stream still holds goes back to the inbox promptly.
            let released = session.close().await;
            tracing::debug!(agency = %service.agency, released, "inbox stream ended");
            service.record_gauges();
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    /// The delivery if its event verifies in its case (see `onedoor_bus::verify`); a
    /// quarantined one is acknowledged so it never comes back as a task, and is recorded.
    pub(crate) async fn believed(
        &self,
        delivery: InboxDelivery,
    ) -> Result<Option<InboxDelivery>, AdapterError> {
        let case_id = delivery.stored.event.case_id;
        let sequence = delivery.stream_sequence;
        let Some(quarantined) = self.log.check_delivery(case_id, sequence).await? else {
            return Ok(Some(delivery));
        };
        let reason = quarantined.reason.label();
        metrics::counter!(m::QUARANTINED, "agency" => self.agency.to_string(), "reason" => reason)
            .increment(1);
        tracing::warn!(agency = %self.agency, %case_id, sequence, reason = %quarantined.reason, "inbox message quarantined, not delivered");
        self.in_flight.ack(&[delivery.stored.event.event_id]).await;
        Ok(None)
    }

    /// Hands redelivered stuck items to this stream until it ends; an item the stream could
    /// not take goes back to the queue for another stream.
    async fn replay_into(self, tx: mpsc::Sender<Result<v1::InboxItem, Status>>) {
        let stopping = stopped(self.stopping.clone());
        tokio::pin!(stopping);
        loop {
            let item = tokio::select! {
                item = self.replays.next() => item,
                () = tx.closed() => break,
                () = &mut stopping => break,
            };
            let Some(item) = item else { break };
            self.replays.delivered(&item);
            if let Err(mpsc::error::SendError(Ok(item))) = tx.send(Ok(item)).await {
                self.replays.requeue(item);
                break;
            }
        }
    }

    /// Turns a delivery into the wire item, with what a clerk needs (see [`crate::item`]) and
    /// a span in the case's trace (a child of the event's own span), so the journey shows each
    /// agency receiving the hand-off. The case's state comes from its snapshot, which the
    /// delivery's verification just brought up to the delivered event: no history is read.
    pub(crate) async fn item(
        &self,
        delivery: InboxDelivery,
    ) -> Result<v1::InboxItem, AdapterError> {
        let case_id = delivery.stored.event.case_id;
        let attempt = delivery.delivery_attempt;
        let sequence = delivery.stream_sequence;
        let event = delivery.stored.event.clone();
        let wire = self.traced(delivery);
        let registry = self.registry.as_ref().map(LiveRegistry::current);
        let registry = registry.as_deref();
        let item = self
            .log
            .with_state(case_id, sequence, |state| {
                state.map(|state| inbox_item(state, &event, wire, registry))
            })
            .await?;
        let mut item = item.ok_or_else(|| AdapterError::CaseNotFound {
            case_id: case_id.to_string(),
        })?;
        item.delivery_attempt = attempt;
        item.stream_sequence = sequence;
        Ok(item)
    }

    fn traced(&self, delivery: InboxDelivery) -> v1::CaseEvent {
        let agency = self.agency.to_string();
        metrics::counter!(m::INBOX_DELIVERED, "agency" => agency.clone()).increment(1);
        if delivery.delivery_attempt > 1 {
            metrics::counter!(m::INBOX_REDELIVERED, "agency" => agency.clone()).increment(1);
        }
        self.record_gauges();
        self.log
            .saw(delivery.stored.event.case_id, delivery.stream_sequence);
        let wire = delivery.stored.wire;
        let parent =
            TraceContext::parse(&format!("00-{}-{}-01", wire.trace_id, wire.span_id), None).ok();
        let tracer = global::tracer(telemetry::TRACER);
        let cx = parent
            .as_ref()
            .map_or_else(opentelemetry::Context::new, telemetry::remote_context);
        let mut span = tracer
            .span_builder("AgencyGateway/Inbox.deliver")
            .with_kind(SpanKind::Producer)
            .start_with_context(&tracer, &cx);
        span.set_attribute(opentelemetry::KeyValue::new("onedoor.agency", agency));
        span.set_attribute(opentelemetry::KeyValue::new(
            "onedoor.case_id",
            wire.case_id.clone(),
        ));
        span.set_attribute(opentelemetry::KeyValue::new(
            "onedoor.event_id",
            wire.event_id.clone(),
        ));
        span.set_attribute(opentelemetry::KeyValue::new(
            "onedoor.delivery_attempt",
            i64::from(delivery.delivery_attempt),
        ));
        span.end();
        wire
    }

    pub async fn ack(&self, request: v1::AckRequest) -> Result<v1::AckResponse, AdapterError> {
        let max = onedoor_proto::limits::ACK_EVENT_IDS_MAX;
        if request.event_ids.is_empty() || request.event_ids.len() > max {
            return Err(AdapterError::InvalidArgument {
                field: "event_ids",
                why: format!("give 1 to {max} event ids, not {}", request.event_ids.len()),
            });
        }
        let ids = request
            .event_ids
            .iter()
            .map(|id| requests::event_id(id))
            .collect::<Result<Vec<EventId>, _>>()?;
        let replayed = self.ack_replays(&ids).await?;
        let rest: Vec<EventId> = ids
            .iter()
            .filter(|id| !replayed.contains(id))
            .copied()
            .collect();
        let mut outcome = self.in_flight.ack(&rest).await;
        outcome.acked.extend(replayed);
        metrics::counter!(m::INBOX_ACKED, "agency" => self.agency.to_string())
            .increment(outcome.acked.len() as u64);
        self.record_gauges();
        if !outcome.failed.is_empty() {
            // The server did not confirm these; they stay held, and the same Ack can be sent
            // again. Acks that did go through are reported as unknown on that retry.
            return Err(AdapterError::Bus(onedoor_bus::BusError::Nats {
                action: "acknowledging inbox items",
                kind: onedoor_bus::NatsErrorKind::TimedOut,
                code: None,
                message: format!(
                    "{} of {} acks were not confirmed by the bus; send the same Ack again",
                    outcome.failed.len(),
                    ids.len()
                ),
            }));
        }
        Ok(v1::AckResponse {
            acked_event_ids: outcome.acked.iter().map(ToString::to_string).collect(),
            unknown_event_ids: outcome.unknown.iter().map(ToString::to_string).collect(),
        })
    }

    /// Acknowledges the redelivered stuck items among `ids` by clearing their stuck records;
    /// returns their ids. A record that cannot be cleared keeps its item awaiting the Ack.
    async fn ack_replays(&self, ids: &[EventId]) -> Result<Vec<EventId>, AdapterError> {
        let taken = self.replays.take_acked(ids);
        let mut acked = Vec::with_capacity(taken.len());
        for (index, (id, sequence)) in taken.iter().enumerate() {
            let cleared =
                onedoor_bus::own_stuck::clear_own_stuck(&self.jetstream, &self.agency, *sequence)
                    .await;
            if let Err(err) = cleared {
                for (id, sequence) in &taken[index..] {
                    self.replays.restore(*id, *sequence);
                }
                return Err(err.into());
            }
            tracing::info!(agency = %self.agency, sequence, event_id = %id, "redelivered stuck item acknowledged; record cleared");
            acked.push(*id);
        }
        Ok(acked)
    }

    /// The agency's own stuck items.
    pub async fn list_stuck(&self) -> Result<v1::ListStuckResponse, AdapterError> {
        let records = onedoor_bus::own_stuck::list_own_stuck(&self.jetstream, &self.agency).await?;
        Ok(v1::ListStuckResponse {
            items: records
                .iter()
                .map(|r| stuck_item(r, self.replays.is_pending(r.stream_sequence)))
                .collect(),
        })
    }

    /// Queues the agency's stuck item at `request.stream_sequence` for its next Inbox stream.
    pub async fn redeliver(
        &self,
        request: v1::RedeliverRequest,
    ) -> Result<v1::RedeliverResponse, AdapterError> {
        let sequence = request.stream_sequence;
        if sequence == 0 {
            return Err(AdapterError::InvalidArgument {
                field: "stream_sequence",
                why: "is required: the stream_sequence of an item from ListStuck".into(),
            });
        }
        let not_found = || AdapterError::NoStuckItem {
            agency: self.agency.to_string(),
            sequence,
        };
        let record =
            onedoor_bus::own_stuck::own_stuck_record(&self.jetstream, &self.agency, sequence)
                .await?
                .ok_or_else(not_found)?;
        let unusable = |why: &str| AdapterError::NotRedeliverable {
            sequence,
            why: why.to_owned(),
        };
        let case_id = CaseId::parse(&record.case_id)
            .map_err(|_| unusable("the stuck message names no case (it did not decode)"))?;
        let history = self.log.load(case_id).await?;
        let state = crate::gateway::fold(case_id, &history)?;
        let stored = history
            .into_iter()
            .find(|s| s.sequence == sequence)
            .ok_or_else(|| {
                unusable("the message is not a believed event of its case (it was quarantined)")
            })?;
        if stored.event.to.as_ref() != Some(&self.agency) {
            return Err(not_found());
        }
        let registry = self.registry.as_ref().map(LiveRegistry::current);
        let mut item = inbox_item(&state, &stored.event, stored.wire, registry.as_deref());
        item.stream_sequence = sequence;
        item.delivery_attempt =
            u32::try_from(record.deliveries.saturating_add(1)).unwrap_or(u32::MAX);
        item.redelivered_from_stuck = true;
        self.in_flight.forget(&stored.event.event_id);
        self.replays.queue(item);
        tracing::info!(agency = %self.agency, sequence, %case_id, "stuck item queued for redelivery");
        Ok(v1::RedeliverResponse {
            item: Some(stuck_item(&record, true)),
        })
    }
}
