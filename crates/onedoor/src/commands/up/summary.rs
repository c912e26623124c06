//! The end of `up`'s start-up: wait until every server answers, then one summary block, the
//! last thing on screen, saying where everything is.

use std::path::Path;
use std::time::Duration;

use onedoor_natsd::NatsBinary;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::data_dir::Endpoints;

/// How long start-up may take before the summary is printed anyway, naming who is not ready.
const READY_DEADLINE: Duration = Duration::from_secs(60);
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// Waits until every adapter and the tracker report SERVING on gRPC health, so their ready
/// lines are logged before the summary and a script that reads the summary can call at once.
pub async fn wait_until_serving(endpoints: &Endpoints) {
    let ca = endpoints.tls_ca_cert.as_deref();
    let mut checks = Vec::new();
    for (code, agency) in &endpoints.agencies {
        checks.push((
            code.clone(),
            agency.grpc.clone(),
            "onedoor.v1.AgencyGateway",
        ));
    }
    if let Some(tracker) = &endpoints.tracker {
        checks.push((
            "tracker".to_owned(),
            tracker.grpc.clone(),
            "onedoor.v1.CaseTracker",
        ));
    }
    let waits = checks.iter().map(|(name, url, service)| async move {
        let ready = tokio::time::timeout(READY_DEADLINE, serving(url, ca, service)).await;
        (name, ready.is_ok())
    });
    let late: Vec<_> = futures::future::join_all(waits)
        .await
        .into_iter()
        .filter_map(|(name, ready)| (!ready).then_some(name.as_str()))
        .collect();
    if !late.is_empty() {
        tracing::warn!(servers = ?late, "not serving after {READY_DEADLINE:?}; they keep trying");
    }
}

/// Returns once `service` at `url` reports SERVING; retries every failure.
async fn serving(url: &str, ca: Option<&str>, service: &str) {
    loop {
        if let Ok(channel) = super::super::grpc::channel(url, ca, None).await {
            let mut health = HealthClient::new(channel);
            let request = HealthCheckRequest {
                service: service.to_owned(),
            };
            if let Ok(answer) = health.check(request).await
                && answer.into_inner().status == ServingStatus::Serving as i32
            {
                return;
            }
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

/// The one block an operator needs after `onedoor up`: endpoints, the web page, and where the
/// credentials are.
pub fn print(endpoints: &Endpoints, endpoints_file: &Path, dir: &Path, binary: &NatsBinary) {
    let mut lines = vec![
        format!("onedoor is up (registry {})", endpoints.registry),
        format!(
            "  NATS          {}  (nats-server {}, stream {})",
            endpoints.nats.url, binary.version, endpoints.nats.stream
        ),
        format!(
            "  adapters      {} agencies over gRPC+TLS; addresses and dev tokens in endpoints.json",
            endpoints.agencies.len()
        ),
    ];
    if let Some(tracker) = &endpoints.tracker {
        lines.push(format!(
            "  tracker       {}  (CaseTracker gRPC; try `onedoor case list`)",
            tracker.grpc
        ));
        if let Some(web) = &tracker.web {
            lines.push(format!(
                "  web page      {web}  (front-office staff, Lao and English)"
            ));
        }
        if let Some(file) = &tracker.supervisor_token_file {
            lines.push(format!("  supervisor    {file}  (token for the tracker)"));
        }
    }
    if let Some(metrics) = &endpoints.metrics_url {
        lines.push(format!("  metrics       {metrics}"));
    }
    if let Some(ca) = &endpoints.tls_ca_cert {
        lines.push(format!(
            "  CA            {ca}  (trust it in your browser and clients)"
        ));
    }
    lines.push(format!(
        "  credentials   {}  (NATS nkeys, signing keys, client certificates)",
        dir.display()
    ));
    lines.push(format!("  endpoints     {}", endpoints_file.display()));
    lines.push("Ctrl-C stops it.".to_owned());
    println!("{}", lines.join("\n"));
}
