//! `onedoor health`: asks a running adapter or tracker its gRPC health (grpc.health.v1) and
//! exits 0 only when it answers SERVING. Container health checks and Kubernetes probes run it:
//! the servers speak TLS, which kubelet's built-in `grpc:` probe cannot.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::grpc;

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The server's gRPC address: https:// for TLS (the norm), http:// for a loopback
    /// development server.
    #[arg(long, default_value = "https://127.0.0.1:50051")]
    pub address: String,
    /// The service to ask about: `onedoor.v1.AgencyGateway` (an adapter, NOT_SERVING while its
    /// NATS does not answer), `onedoor.v1.CaseTracker`, or empty for the server as a whole.
    #[arg(long, default_value = "onedoor.v1.AgencyGateway")]
    pub service: String,
    /// CA certificate (PEM) that signed the server's certificate.
    #[arg(long, env = "ONEDOOR_HEALTH_CA_CERT")]
    pub ca_cert: Option<String>,
    /// The name the server's certificate carries, when the address does not (a probe reaching
    /// a pod by 127.0.0.1 whose certificate names its service).
    #[arg(long, env = "ONEDOOR_HEALTH_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
    /// Give up (and fail) after this many seconds.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

pub fn run(args: HealthArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let deadline = Duration::from_secs(args.timeout);
    let status = runtime
        .block_on(async { tokio::time::timeout(deadline, check(&args)).await })
        .with_context(|| format!("{} did not answer within {deadline:?}", args.address))??;
    println!("{}", status.as_str_name());
    Ok(if status == ServingStatus::Serving {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn check(args: &HealthArgs) -> anyhow::Result<ServingStatus> {
    let channel = grpc::channel(
        &args.address,
        args.ca_cert.as_deref(),
        args.tls_server_name.as_deref(),
    )
    .await?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: args.service.clone(),
        })
        .await
        .with_context(|| format!("asking {} about {:?}", args.address, args.service))?;
    Ok(response.into_inner().status())
}
