//! `onedoor up`: the single-machine bus. Starts the pinned nats-server on ports it picks (or is
//! given), makes sure the ONEDOOR stream exists with the contract configuration, writes
//! `endpoints.json`, and runs until Ctrl-C or SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use onedoor_case::Registry;
use onedoor_natsd::{NatsServer, Port, ServerSpec};

use crate::data_dir::{self, Endpoints, NatsEndpoint};

/// The default registry ships inside the binary so `up` works from any directory; `--registry`
/// points at an edited copy.
const DEFAULT_REGISTRY: &str = include_str!("../../../../deploy/registry/lao-2025.toml");
const DEFAULT_REGISTRY_NAME: &str = "built-in deploy/registry/lao-2025.toml";

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Where the bus keeps its state and writes endpoints.json.
    #[arg(long, env = "ONEDOOR_DATA_DIR", default_value = ".onedoor")]
    pub data_dir: PathBuf,
    /// NATS client port; by default a free port is picked (a machine may already run a NATS on
    /// 4222).
    #[arg(long)]
    pub nats_port: Option<u16>,
    /// Registry file (agencies, services, calendar); by default the shipped 2025 registry.
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
}

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(up(args))
}

fn load_registry(path: Option<&Path>) -> anyhow::Result<(Registry, String)> {
    match path {
        Some(path) => Ok((Registry::load(path)?, path.display().to_string())),
        None => Ok((
            Registry::from_toml(DEFAULT_REGISTRY, DEFAULT_REGISTRY_NAME)?,
            DEFAULT_REGISTRY_NAME.to_owned(),
        )),
    }
}

async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let dir = args.data_dir;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating data dir {}", dir.display()))?;
    if let Some(existing) = Endpoints::read(&dir)?
        && data_dir::process_alive(existing.pid)
        && existing.pid != std::process::id()
    {
        anyhow::bail!(
            "a bus is already running from {} (pid {}, NATS {}); stop it or use another --data-dir",
            dir.display(),
            existing.pid,
            existing.nats.url
        );
    }
    let (registry, registry_name) = load_registry(args.registry.as_deref())?;
    tracing::info!(registry = %registry_name, summary = %registry.summary(), "registry loaded");

    let binary = onedoor_natsd::locate()?;
    let mut spec = ServerSpec::new(binary.clone(), dir.join("nats"));
    spec.client_port = args.nats_port.map_or(Port::Random, Port::Fixed);
    spec.server_name = Some("onedoor-dev".to_owned());
    let mut server = NatsServer::start(spec)
        .await
        .context("starting nats-server")?;
    let outcome = serve(&dir, &server, &binary, &registry_name).await;
    // Whatever happened, leave no nats-server behind and no endpoints file pointing at it.
    let removed = std::fs::remove_file(dir.join(data_dir::ENDPOINTS_FILE));
    if let Err(err) = server.stop().await {
        tracing::warn!(error = %err, "nats-server did not stop cleanly");
    }
    if let Err(err) = removed
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %err, "could not remove endpoints.json");
    }
    outcome
}

async fn serve(
    dir: &Path,
    server: &NatsServer,
    binary: &onedoor_natsd::NatsBinary,
    registry_name: &str,
) -> anyhow::Result<ExitCode> {
    let url = server.client_url();
    let client = async_nats::connect(&url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let jetstream = async_nats::jetstream::new(client);
    let settings = onedoor_bus::StreamSettings::default();
    let outcome = onedoor_bus::ensure_stream(&jetstream, &settings).await?;
    tracing::info!(stream = onedoor_bus::STREAM_NAME, ?outcome, "stream ready");

    let endpoints = Endpoints {
        version: data_dir::ENDPOINTS_VERSION,
        pid: std::process::id(),
        started_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        registry: registry_name.to_owned(),
        nats: NatsEndpoint {
            url: url.clone(),
            monitor_url: format!("http://{}", server.monitor_addr()),
            stream: onedoor_bus::STREAM_NAME.to_owned(),
            server_version: binary.version.to_string(),
        },
    };
    let path = endpoints.write(dir)?;
    println!("onedoor is up");
    println!(
        "  NATS       {url}  (nats-server {}, stream {})",
        binary.version,
        onedoor_bus::STREAM_NAME
    );
    println!("  monitor    {}", endpoints.nats.monitor_url);
    println!("  endpoints  {}", path.display());
    println!("Ctrl-C stops it.");

    wait_for_shutdown().await?;
    tracing::info!("shutting down");
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_shutdown() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
