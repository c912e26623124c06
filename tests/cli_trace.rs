//! One trace per case, end to end: `onedoor up` with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at
//! an in-test OTLP collector; a construction permit goes from the front office through MPWT and
//! MAE in parallel, then MOPS, back, and is resolved. Every receipt, inbox item and NATS message
//! of the case carries one trace id, and every span the collector got for it is in that trace.

mod support;

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use support::{Agency, spawn_up, terminate, wait_for_endpoints};

const FRONT: &str = "ODSC-VTE-SAYSETTHA";

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self
            .spans
            .lock()
            .map_err(|_| tonic::Status::internal("poisoned"))?;
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_construction_permit_across_four_agencies_is_one_trace_everywhere() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind collector");
    let collector_address = listener.local_addr().expect("address");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = spawn_up(
        dir.path(),
        &[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{collector_address}"),
        )],
    );
    let endpoints = wait_for_endpoints(&mut child, dir.path());

    let mut front = Agency::connect(&endpoints, FRONT).await;
    let mut front_inbox = front.inbox().await;
    let mut receipts = Vec::new();
    let mut items = Vec::new();
    let opened = front.open_case("t-open").await;
    let case = opened.case_id.clone();
    receipts.push(opened.clone());
    for stage in [&["MPWT", "MAE"][..], &["MOPS"]] {
        for agency in stage {
            receipts.push(
                front
                    .hand_off(&case, agency, &format!("t-hand-{agency}"))
                    .await,
            );
        }
        for agency in stage {
            let mut ministry = Agency::connect(&endpoints, agency).await;
            let mut inbox = ministry.inbox().await;
            items.push(ministry.receive(&mut inbox, &case).await);
            receipts.push(ministry.accept(&case, &format!("t-accept-{agency}")).await);
            receipts.push(
                ministry
                    .complete(&case, &format!("t-complete-{agency}"))
                    .await,
            );
            items.push(front.receive(&mut front_inbox, &case).await);
            items.push(front.receive(&mut front_inbox, &case).await);
        }
    }
    receipts.push(front.resolve(&case, "t-resolve").await);

    let trace = opened.trace_id.clone();
    assert_eq!(receipts.len(), 11);
    assert!(
        receipts.iter().all(|r| r.trace_id == trace),
        "every receipt in the case's trace"
    );
    assert_eq!(
        items.len(),
        9,
        "3 hand-offs in, 6 acceptances and completions back"
    );
    assert!(
        items
            .iter()
            .all(|i| i.event.as_ref().is_some_and(|e| e.trace_id == trace)),
        "every inbox item"
    );

    // Every NATS message of the case carries the trace in its `traceparent` header.
    let nats = support::nats_as(&endpoints, dir.path(), "auditor").await;
    let stream = async_nats::jetstream::new(nats)
        .get_stream("ONEDOOR")
        .await
        .expect("stream");
    for receipt in &receipts {
        let message = stream
            .direct_get(receipt.stream_sequence)
            .await
            .expect("stored message");
        let traceparent = message
            .headers
            .get("traceparent")
            .expect("traceparent")
            .as_str()
            .to_owned();
        assert!(
            traceparent.starts_with(&format!("00-{trace}-")),
            "{traceparent}"
        );
    }
    assert!(
        terminate(&mut child).success(),
        "up stops cleanly, flushing its spans"
    );

    let spans = collector.spans.lock().expect("spans").clone();
    let case_spans: Vec<&Span> = spans
        .iter()
        .filter(|s| attribute(s, "onedoor.case_id").as_deref() == Some(case.as_str()))
        .collect();
    let writes = case_spans
        .iter()
        .filter(|s| !s.name.contains("Inbox"))
        .count();
    let deliveries = case_spans
        .iter()
        .filter(|s| s.name.contains("Inbox"))
        .count();
    assert_eq!(writes, 11, "one span per write");
    assert!(
        deliveries >= 9,
        "a span per inbox delivery, got {deliveries}"
    );
    for span in &case_spans {
        assert_eq!(
            hex(&span.trace_id),
            trace,
            "span {} is in the case's trace",
            span.name
        );
    }
    let roots: Vec<&&Span> = case_spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(
        roots.len(),
        1,
        "one root (the opening); every other span has a parent in the trace"
    );
}
