//! `onedoor adapter`: one agency's AgencyGateway, as a ministry runs it in production.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use onedoor_adapter::{AdapterConfig, Token};
use onedoor_case::AgencyCode;

use super::common;

#[derive(Debug, clap::Args)]
pub struct AdapterArgs {
    /// The agency this adapter speaks for, e.g. MOIC.
    #[arg(long, env = "ONEDOOR_AGENCY")]
    pub agency: String,
    /// Address the gRPC server binds (use 0.0.0.0:PORT to serve the agency's network).
    #[arg(long, env = "ONEDOOR_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    #[arg(long, env = "ONEDOOR_NATS_URL")]
    pub nats_url: String,
    /// The agency's bearer token; prefer the environment over the command line, which other
    /// users of the machine can see.
    #[arg(long, env = "ONEDOOR_AGENCY_TOKEN", hide_env_values = true)]
    pub token: String,
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (`/metrics`).
    #[arg(long, env = "ONEDOOR_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

pub fn run(args: AdapterArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: AdapterArgs) -> anyhow::Result<ExitCode> {
    let agency =
        AgencyCode::parse(&args.agency).with_context(|| format!("--agency {:?}", args.agency))?;
    let (registry, _) = common::load_registry(args.registry.as_deref())?;
    if let Some(address) = args.metrics_listen {
        super::metrics::install(address)?;
    }
    let config = AdapterConfig::new(agency, Token::new(args.token)?, registry, args.nats_url);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let shutdown = async {
        if let Err(err) = common::shutdown_signal().await {
            tracing::error!(error = %err, "signal handling failed; stopping");
        }
    };
    let telemetry = super::telemetry::init(&format!("onedoor-adapter-{}", config.agency))?;
    let outcome = onedoor_adapter::run(config, listener, shutdown).await;
    telemetry.shutdown().await;
    outcome?;
    Ok(ExitCode::SUCCESS)
}
