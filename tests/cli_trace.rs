//! One trace per case, end to end: `onedoor up` with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at
//! an in-test OTLP collector; a case crosses two agencies' adapters; every span of the case
//! arrives in the case's trace, and each event's span is the span the collector received.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use onedoor_proto::v1;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

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

fn wait_for_endpoints(child: &mut Child, dir: &Path) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("endpoints.json")) {
            return serde_json::from_str(&text).expect("endpoints.json is JSON");
        }
        assert!(
            child.try_wait().expect("poll").is_none(),
            "onedoor up exited early"
        );
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "endpoints.json did not appear"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Agency {
    client: v1::agency_gateway_client::AgencyGatewayClient<tonic::transport::Channel>,
    token: String,
}

impl Agency {
    async fn connect(endpoints: &serde_json::Value, code: &str) -> Agency {
        let entry = &endpoints["agencies"][code];
        let address = entry["grpc"].as_str().expect("grpc").to_owned();
        let channel = tonic::transport::Channel::from_shared(address)
            .expect("uri")
            .connect()
            .await
            .expect("adapter up");
        Agency {
            client: v1::agency_gateway_client::AgencyGatewayClient::new(channel),
            token: entry["token"].as_str().expect("token").to_owned(),
        }
    }

    fn request<T>(&self, body: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(body);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().expect("ascii"),
        );
        request
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_case_crossing_two_agencies_is_one_trace_in_the_collector() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind collector");
    let collector_address = listener.local_addr().expect("address");
    let service = TraceServiceServer::new(collector.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .args(["up", "--data-dir"])
        .arg(dir.path())
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{collector_address}"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("up starts");
    let endpoints = wait_for_endpoints(&mut child, dir.path());

    let mut front = Agency::connect(&endpoints, "ODSC-VTE-SAYSETTHA").await;
    let mut moic = Agency::connect(&endpoints, "MOIC").await;
    let open = front.request(v1::OpenCaseRequest {
        service: "enterprise-registration".into(),
        citizen_ref: "R-T".into(),
        idempotency_key: "trace-open".into(),
        ..Default::default()
    });
    let receipt = front
        .client
        .open_case(open)
        .await
        .expect("open")
        .into_inner();
    let case_id = receipt.case_id.clone();
    let hand_off = front.request(v1::HandOffRequest {
        case_id: case_id.clone(),
        to_agency: "MOIC".into(),
        idempotency_key: "trace-handoff".into(),
        ..Default::default()
    });
    front.client.hand_off(hand_off).await.expect("hand off");
    let accept = moic.request(v1::AcceptRequest {
        case_id: case_id.clone(),
        idempotency_key: "trace-accept".into(),
        ..Default::default()
    });
    moic.client.accept(accept).await.expect("accept");
    let view = moic
        .client
        .get_case(moic.request(v1::GetCaseRequest {
            case_id: case_id.clone(),
        }))
        .await
        .expect("view")
        .into_inner();

    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    kill(pid, Signal::SIGTERM).expect("SIGTERM");
    let start = Instant::now();
    while child.try_wait().expect("poll").is_none() {
        assert!(start.elapsed() < Duration::from_secs(30), "up did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }

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
