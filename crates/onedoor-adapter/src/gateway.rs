//! `AgencyGateway` for one agency: writes go through the case rules and the case log; reads
//! come from the case log, so a caller always sees its own acknowledged writes.

use std::sync::Arc;

use onedoor_bus::{CaseLog, CaseTip, TraceContext, WriteRequest, trace::TRACEPARENT};
use onedoor_case::{Action, AgencyCode, CaseId, CaseState, Command, LiveRegistry};
use onedoor_proto::convert::timestamp;
use onedoor_proto::v1;
use onedoor_proto::v1::agency_gateway_server::AgencyGateway;
use opentelemetry::KeyValue;
use opentelemetry::global::{self, BoxedSpan, BoxedTracer};
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};
use time::OffsetDateTime;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use crate::catalogue;
use crate::error::AdapterError;
use crate::idempotency;
use crate::inbox::InboxService;
use crate::metrics as m;
use crate::requests::{self, WriteInput};
use crate::telemetry;

/// The case's state from its verified events; a case with none does not exist.
pub(crate) fn fold(
    case_id: CaseId,
    stored: &[onedoor_bus::StoredEvent],
) -> Result<CaseState, AdapterError> {
    CaseState::fold(stored.iter().map(|s| &s.event))
        .map_err(|e| onedoor_bus::BusError::Corrupt {
            case_id: case_id.to_string(),
            why: e.to_string(),
        })?
        .ok_or_else(|| AdapterError::CaseNotFound {
            case_id: case_id.to_string(),
        })
}

/// Where "now" comes from; tests may pin it.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

#[derive(Clone)]
pub struct Gateway {
    pub(crate) agency: AgencyCode,
    /// Read once per call: a registry published meanwhile applies from the next one.
    pub(crate) registry: LiveRegistry,
    pub(crate) log: CaseLog,
    pub(crate) inbox: InboxService,
    pub(crate) clock: Clock,
    /// Keys the ids this agency's writes get (see [`idempotency`]).
    pub(crate) ids: idempotency::IdKey,
    /// A district office's outbox: when set, writes go there (`docs/district-offices.md`).
    pub(crate) office: Option<crate::office::OfficeWrites>,
}

/// The caller's W3C trace context, if it sent a valid one. An invalid header is ignored, as the
/// W3C spec asks: the request is still served, in the case's own trace.
fn caller_trace<T>(request: &Request<T>) -> Option<TraceContext> {
    let traceparent = request.metadata().get(TRACEPARENT)?.to_str().ok()?;
    let tracestate = request
        .metadata()
        .get("tracestate")
        .and_then(|v| v.to_str().ok());
    TraceContext::parse(traceparent, tracestate).ok()
}

impl Gateway {
    async fn write<R>(
        &self,
        method: &'static str,
        request: Request<R>,
    ) -> Result<Response<v1::Receipt>, Status>
    where
        R: TryInto<WriteInput, Error = AdapterError>,
    {
        let caller = caller_trace(&request);
        let (receipt, trace) = self
            .write_inner(method, request.into_inner(), caller)
            .await?;
        let mut response = Response::new(receipt);
        if let Ok(value) = MetadataValue::try_from(trace.traceparent()) {
            response.metadata_mut().insert(TRACEPARENT, value);
        }
        Ok(response)
    }

    #[tracing::instrument(skip_all, fields(agency = %self.agency, method, case_id, kind))]
    async fn write_inner<R>(
        &self,
        method: &'static str,
        request: R,
        caller: Option<TraceContext>,
    ) -> Result<(v1::Receipt, TraceContext), AdapterError>
    where
        R: TryInto<WriteInput, Error = AdapterError>,
    {
        tracing::Span::current().record("method", method);
        let tracer = global::tracer(telemetry::TRACER);
        let mut span: Option<BoxedSpan> = None;
        let result = self
            .write_traced(request, caller.clone(), &tracer, &mut span)
            .await;
        // A call refused before the case was read still gets a span, in the caller's trace.
        let mut span = span.unwrap_or_else(|| {
            let cx = caller
                .as_ref()
                .map_or_else(opentelemetry::Context::new, telemetry::remote_context);
            tracer
                .span_builder(format!("AgencyGateway/{method}"))
                .with_kind(SpanKind::Server)
                .start_with_context(&tracer, &cx)
        });
        span.set_attribute(KeyValue::new("onedoor.agency", self.agency.to_string()));
        match &result {
            Ok((receipt, _)) => {
                span.set_attribute(KeyValue::new("onedoor.case_id", receipt.case_id.clone()));
                span.set_attribute(KeyValue::new("onedoor.event_id", receipt.event_id.clone()));
                span.set_attribute(KeyValue::new(
                    "onedoor.case_version",
                    receipt.case_version as i64,
                ));
                span.set_status(opentelemetry::trace::Status::Ok);
            }
            Err(err) => span.set_status(opentelemetry::trace::Status::error(err.to_string())),
        }
        span.end();
        result
    }

    /// The command this agency's call asks for, with the case and event ids its idempotency
    /// key derives (so a retried call names the same event).
    fn write_request(&self, input: WriteInput, caller: Option<TraceContext>) -> WriteRequest {
        let case_id = input.case_id.unwrap_or_else(|| {
            self.ids
                .case_id_for_open(&self.agency, &input.idempotency_key)
        });
        WriteRequest {
            case_id,
            event_id: self
                .ids
                .event_id(&self.agency, &input.idempotency_key, case_id),
            command: Command {
                agency: self.agency.clone(),
                actor: input.actor,
                at: (self.clock)(),
                action: input.action,
            },
            idempotency_key: input.idempotency_key,
            caller_trace: caller,
        }
    }

    async fn write_traced<R>(
        &self,
        request: R,
        caller: Option<TraceContext>,
        tracer: &BoxedTracer,
        span: &mut Option<BoxedSpan>,
    ) -> Result<(v1::Receipt, TraceContext), AdapterError>
    where
        R: TryInto<WriteInput, Error = AdapterError>,
    {
        let write = self.write_request(request.try_into()?, caller.clone());
        let case_id = write.case_id;
        tracing::Span::current().record("case_id", tracing::field::display(case_id));
        if let Some(office) = &self.office
            && office.must_queue(write.case_id).await?
        {
            return self.write_at_office(office, write).await;
        }
        let span_name = format!("AgencyGateway/{}", write.command.action.name());
        // The span starts once the case's tip is known, so that it can be a child of the
        // case's trace (the caller's span, or the case's last event).
        let mut own_span = |tip: &CaseTip| -> Option<TraceContext> {
            if span.is_none() {
                let parent = tip.trace_parent(caller.as_ref());
                let cx = parent
                    .as_ref()
                    .map_or_else(opentelemetry::Context::new, telemetry::remote_context);
                *span = Some(
                    tracer
                        .span_builder(span_name.clone())
                        .with_kind(SpanKind::Server)
                        .start_with_context(tracer, &cx),
                );
            }
            let tracestate = caller.as_ref().and_then(|c| c.tracestate.clone());
            span.as_ref()
                .and_then(|s| telemetry::trace_context(s.span_context(), tracestate))
        };
        let written = match self
            .log
            .execute_traced(&write, &self.registry.current(), &mut own_span)
            .await
        {
            Ok(written) => written,
            Err(error) => match &self.office {
                Some(office) if crate::office::out_of_reach(&error) => {
                    return self.write_at_office(office, write).await;
                }
                _ => return Err(error.into()),
            },
        };
        if let Some(office) = &self.office {
            office.remember(&written).await?;
        }
        if written.duplicate && !idempotency::same_request(&written.event, &write.command) {
            return Err(AdapterError::KeyReused {
                key: write.idempotency_key,
                case_id: case_id.to_string(),
                existing: format!(
                    "a {} event by {}",
                    written.event.body.kind(),
                    written.event.from
                ),
            });
        }
        let kind = written.event.body.kind();
        tracing::Span::current().record("kind", kind);
        if !written.duplicate {
            metrics::counter!(m::EVENTS_PUBLISHED, "agency" => self.agency.to_string(), "kind" => kind).increment(1);
            // Every write is in the stream, its metrics and its trace; at INFO it would bury the
            // operator's lines under one per event.
            tracing::debug!(event_id = %written.event.event_id, version = written.event.version, "event stored");
        }
        let receipt = v1::Receipt {
            event_id: written.event.event_id.to_string(),
            case_id: case_id.to_string(),
            trace_id: written.prepared.wire.trace_id.clone(),
            case_version: written.event.version,
            stream_sequence: written.sequence,
            occurred_at: Some(timestamp(written.event.occurred_at)),
            awaiting_link: false,
        };
        Ok((receipt, written.prepared.trace))
    }

    /// [`Self::write_traced`] at a district office: into its outbox, receipt `awaiting_link`.
    async fn write_at_office(
        &self,
        office: &crate::office::OfficeWrites,
        write: WriteRequest,
    ) -> Result<(v1::Receipt, TraceContext), AdapterError> {
        let written = office
            .write(&self.log, &write, &self.registry.current())
            .await?;
        let event = &written.stored.event;
        if written.duplicate && !idempotency::same_request(event, &write.command) {
            return Err(AdapterError::KeyReused {
                key: write.idempotency_key,
                case_id: write.case_id.to_string(),
                existing: format!("a {} event by {}", event.body.kind(), event.from),
            });
        }
        let envelope = &written.stored.envelope;
        let trace = TraceContext {
            trace_id: envelope.trace_id.clone(),
            span_id: envelope.span_id.clone(),
            sampled: true,
            tracestate: None,
        };
        let receipt = v1::Receipt {
            event_id: event.event_id.to_string(),
            case_id: write.case_id.to_string(),
            trace_id: envelope.trace_id.clone(),
            case_version: event.version,
            stream_sequence: 0,
            occurred_at: Some(timestamp(event.occurred_at)),
            awaiting_link: true,
        };
        Ok((receipt, trace))
    }

    /// Tells every agency whose open task the resolution of `case_id` closed, once each: one
    /// `task_closed` event addressed to it, so it lands in that agency's inbox. The event ids
    /// come from the resolution and the receiver, so a retry finds the notices already written.
    async fn notify_closed_tasks(
        &self,
        case_id: CaseId,
        resolved_at_sequence: u64,
    ) -> Result<(), AdapterError> {
        let owed = self
            .log
            .with_state(case_id, resolved_at_sequence, |state| {
                let state = state?;
                let (resolved, _) = state.resolved.as_ref()?;
                Some((*resolved, state.unnotified_closed_tasks()))
            })
            .await?;
        let Some((resolved, owed)) = owed else {
            return Ok(());
        };
        for to in owed {
            let idempotency_key = format!("notice:{to}:{resolved}");
            let write = WriteRequest {
                case_id,
                event_id: self.ids.event_id(&self.agency, &idempotency_key, case_id),
                command: Command {
                    agency: self.agency.clone(),
                    actor: String::new(),
                    at: (self.clock)(),
                    action: Action::NotifyClosed { to: to.clone() },
                },
                idempotency_key,
                caller_trace: None,
            };
            let written = self.log.execute(&write, &self.registry.current()).await?;
            if !written.duplicate {
                metrics::counter!(m::EVENTS_PUBLISHED, "agency" => self.agency.to_string(), "kind" => "task_closed").increment(1);
            }
        }
        Ok(())
    }

    async fn get_case_inner(
        &self,
        request: v1::GetCaseRequest,
    ) -> Result<v1::CaseView, AdapterError> {
        let case_id = requests::case_id(&request.case_id)?;
        let (verified, awaiting) = match &self.office {
            Some(office) => office.case_history(&self.log, case_id).await?,
            None => (self.log.load_verified(case_id).await?, Vec::new()),
        };
        let stored = verified.accepted;
        if stored.is_empty() {
            return Err(AdapterError::CaseNotFound {
                case_id: case_id.to_string(),
            });
        }
        let party = stored
            .iter()
            .any(|s| s.event.from == self.agency || s.event.to.as_ref() == Some(&self.agency));
        if !party {
            return Err(AdapterError::NotParty {
                agency: self.agency.to_string(),
                case_id: case_id.to_string(),
            });
        }
        let state = fold(case_id, &stored)?;
        let events = stored.into_iter().map(|s| s.wire).collect();
        let mut view = onedoor_proto::view::case_view(&state, events, (self.clock)());
        view.quarantined = verified
            .quarantined
            .iter()
            .map(|q| v1::QuarantinedMessage {
                stream_sequence: q.sequence,
                reason: q.reason.label().to_owned(),
                detail: q.reason.to_string(),
            })
            .collect();
        view.awaiting_link_event_ids = awaiting;
        Ok(view)
    }
}

#[tonic::async_trait]
impl AgencyGateway for Gateway {
    async fn open_case(
        &self,
        request: Request<v1::OpenCaseRequest>,
    ) -> Result<Response<v1::Receipt>, Status> {
        self.write("OpenCase", request).await
    }

    async fn hand_off(
        &self,
        request: Request<v1::HandOffRequest>,
    ) -> Result<Response<v1::Receipt>, Status> {
        self.write("HandOff", request).await
    }

    async fn accept(
        &self,
        request: Request<v1::AcceptRequest>,
    ) -> Result<Response<v1::Receipt>, Status> {
        self.write("Accept", request).await
    }

    async fn complete(
        &self,
        request: Request<v1::CompleteRequest>,
    ) -> Result<Response<v1::Receipt>, Status> {
        self.write("Complete", request).await
    }

    async fn send_back(
        &self,
        request: Request<v1::SendBackRequest>,
    ) -> Result<Response<v1::Receipt>, Status> {
        self.write("SendBack", request).await
    }

    async fn request_info(
        &self,
        request: Request<v1::RequestInfoRequest>,
    ) -> Result<Response<v1::Receipt>, Status> {
        self.write("RequestInfo", request).await
    }

    async fn resolve_case(
        &self,
        request: Request<v1::ResolveCaseRequest>,
    ) -> Result<Response<v1::Receipt>, Status> {
        let response = self.write("ResolveCase", request).await?;
        let receipt = response.get_ref();
        let case_id = requests::case_id(&receipt.case_id)?;
        // An office's resolution waits in its outbox; it is taken only when no other agency
        // holds an open task, so no notice is owed (docs/district-offices.md).
        if receipt.awaiting_link {
            return Ok(response);
        }
        // A retry (same key) comes back here as a duplicate and writes what is still missing.
        self.notify_closed_tasks(case_id, receipt.stream_sequence)
            .await?;
        Ok(response)
    }

    async fn recall_task(
        &self,
        request: Request<v1::RecallTaskRequest>,
    ) -> Result<Response<v1::Receipt>, Status> {
        self.write("RecallTask", request).await
    }

    type InboxStream = crate::inbox::InboxStream;

    async fn inbox(
        &self,
        request: Request<v1::InboxRequest>,
    ) -> Result<Response<Self::InboxStream>, Status> {
        Ok(Response::new(
            self.inbox.open_stream(request.into_inner()).await?,
        ))
    }

    async fn ack(
        &self,
        request: Request<v1::AckRequest>,
    ) -> Result<Response<v1::AckResponse>, Status> {
        Ok(Response::new(self.inbox.ack(request.into_inner()).await?))
    }

    async fn get_case(
        &self,
        request: Request<v1::GetCaseRequest>,
    ) -> Result<Response<v1::CaseView>, Status> {
        Ok(Response::new(
            self.get_case_inner(request.into_inner()).await?,
        ))
    }

    async fn list_services(
        &self,
        _request: Request<v1::ListServicesRequest>,
    ) -> Result<Response<v1::ListServicesResponse>, Status> {
        Ok(Response::new(catalogue::list_services(
            &self.registry.current(),
        )))
    }

    async fn list_stuck(
        &self,
        _request: Request<v1::ListStuckRequest>,
    ) -> Result<Response<v1::ListStuckResponse>, Status> {
        Ok(Response::new(self.inbox.list_stuck().await?))
    }

    async fn redeliver(
        &self,
        request: Request<v1::RedeliverRequest>,
    ) -> Result<Response<v1::RedeliverResponse>, Status> {
        Ok(Response::new(
            self.inbox.redeliver(request.into_inner()).await?,
        ))
    }
}
