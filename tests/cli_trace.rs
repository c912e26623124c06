//! One trace per case, end to end: `onedoor up` with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at
//! an in-test OTLP collector; a case crosses two agencies' adapters; every span of the case
//! arrives in the case's trace, and each event's span is the span the collector received.

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
async fn a_case_crossing_two_agencies_is_one_trace_in_the_collector() {
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
    let mut front = Agency::connect(&endpoints, "ODSC-VTE-SAYSETTHA").await;
    let mut moic = Agency::connect(&endpoints, "MOIC").await;

    let receipt = front.open_case("trace-open").await;
    let case_id = receipt.case_id.clone();
    front.hand_off(&case_id, "MOIC", "trace-handoff").await;
    moic.accept(&case_id, "trace-accept").await;
    let get = moic.request(onedoor_proto::v1::GetCaseRequest {
        case_id: case_id.clone(),
    });
    let view = moic.client.get_case(get).await.expect("view").into_inner();
    assert!(
        terminate(&mut child).success(),
        "up stops cleanly, flushing its spans"
    );

    let spans = collector.spans.lock().expect("spans").clone();
    let case_spans: Vec<&Span> = spans
        .iter()
        .filter(|s| attribute(s, "onedoor.case_id").as_deref() == Some(case_id.as_str()))
        .collect();
    assert_eq!(case_spans.len(), 3, "one span per write: {case_spans:#?}");
    for span in &case_spans {
        assert_eq!(
            hex(&span.trace_id),
            receipt.trace_id,
            "span {} is in the case's trace",
            span.name
        );
    }
    // The span the collector saw is the span each event names, and each hop is a child of the
    // hop before it.
    let event_spans: Vec<String> = view.events.iter().map(|e| e.span_id.clone()).collect();
    let mut collected: Vec<(String, String)> = case_spans
        .iter()
        .map(|s| (hex(&s.span_id), hex(&s.parent_span_id)))
        .collect();
    collected.sort_by_key(|(span, _)| event_spans.iter().position(|e| e == span));
    assert_eq!(
        collected.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>(),
        event_spans
    );
    assert_eq!(collected[0].1, "", "the opening span is the trace's root");
    assert_eq!(collected[1].1, event_spans[0]);
    assert_eq!(collected[2].1, event_spans[1]);
}
