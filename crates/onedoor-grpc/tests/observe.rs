//! The server builder's layer on a real socket: every response carries a `traceparent` (errors
//! included) and every call is counted by method and status code.

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use onedoor_grpc::CallMetrics;
use tokio::net::TcpListener;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn check(
    service: &str,
    traceparent: Option<&str>,
) -> anyhow::Result<tonic::Request<HealthCheckRequest>> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.into(),
    });
    if let Some(traceparent) = traceparent {
        request
            .metadata_mut()
            .insert("traceparent", traceparent.parse()?);
    }
    Ok(request)
}

fn trace_id(metadata: &tonic::metadata::MetadataMap) -> anyhow::Result<String> {
    let value = metadata
        .get("traceparent")
        .ok_or_else(|| anyhow::anyhow!("no traceparent in {metadata:?}"))?
        .to_str()?;
    let context = onedoor_bus::TraceContext::parse(value, None)?;
    Ok(context.trace_id)
}

#[tokio::test]
async fn every_answer_carries_a_traceparent_and_is_counted() -> anyhow::Result<()> {
    // The only test in this binary, so the global recorder is its own.
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (_reporter, health) = tonic_health::server::health_reporter();
    let metrics = CallMetrics::new("observed", vec![("agency", "TEST".to_owned())]);
    let router = onedoor_grpc::server::builder(None, metrics)?.add_service(health);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(router.serve_with_incoming_shutdown(
        onedoor_grpc::server::incoming(listener),
        async {
            let _ = stopped.await;
        },
    ));
    let channel = Channel::from_shared(format!("http://{address}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let mut client = HealthClient::new(channel);

    // An error continues the caller's trace.
    let refused = client
        .check(check("no.such.Service", Some(CALLER))?)
        .await
        .expect_err("unknown service");
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(trace_id(refused.metadata())?, CALLER_TRACE);

    // A caller without a trace still gets one to quote.
    let refused = client
        .check(check("no.such.Service", None)?)
        .await
        .expect_err("unknown service");
    assert_ne!(trace_id(refused.metadata())?, CALLER_TRACE);

    // And so does an answer.
    let served = client.check(check("", Some(CALLER))?).await?;
    assert_eq!(trace_id(served.metadata())?, CALLER_TRACE);

    let text = prometheus.render();
    for line in [
        r#"onedoor_observed_rpc_total{agency="TEST",method="Check",code="NotFound"} 2"#,
        r#"onedoor_observed_rpc_total{agency="TEST",method="Check",code="Ok"} 1"#,
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    assert!(
        text.contains(r#"onedoor_observed_rpc_seconds_count{agency="TEST",method="Check"} 3"#),
        "{text}"
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}
