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
    /// A bearer token accepted besides those the registry lists by hash (`[[agency.token]]`);
    /// prefer the environment over the command line, which other users can see.
    #[arg(long, env = "ONEDOOR_AGENCY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The agency's NATS nkey seed file (from `onedoor nats-config`).
    #[arg(long, env = "ONEDOOR_NATS_SEED")]
    pub nats_seed: Option<PathBuf>,
    /// The agency's Ed25519 event-signing key file (base64 seed) and its key id in the registry.
    #[arg(long, env = "ONEDOOR_SIGNING_KEY", requires = "key_id")]
    pub signing_key: Option<PathBuf>,
    #[arg(long, env = "ONEDOOR_KEY_ID")]
    pub key_id: Option<String>,
    /// Serve TLS with this certificate and key (PEM); with --client-ca, agencies' client
    /// certificates are accepted too (their SHA-256 in --client-cert-sha256).
    #[arg(long, env = "ONEDOOR_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, env = "ONEDOOR_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    #[arg(long, env = "ONEDOOR_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    #[arg(long, value_delimiter = ',')]
    pub client_cert_sha256: Vec<String>,
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (`/metrics`).
    #[arg(long, env = "ONEDOOR_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Runtime worker threads (default: one per core). One thread wakes other threads less:
    /// `onedoor bench --rate 1000 --adapter-threads 1` on 2 cores measured about a fifth less
    /// adapter CPU than two, and a worse p99 while other processes competed for the cores.
    #[arg(long, env = "ONEDOOR_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: Option<u16>,
}

pub fn run(args: AdapterArgs) -> anyhow::Result<ExitCode> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.worker_threads {
        builder.worker_threads(usize::from(threads));
    }
    let runtime = builder
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
    let mut config = AdapterConfig::new(
        agency,
        Token::new(common::dev_token())?,
        registry,
        args.nats_url,
    );
    config.token = args.token.map(Token::new).transpose()?;
    config.nats_seed = args.nats_seed;
    if let (Some(path), Some(key_id)) = (&args.signing_key, &args.key_id) {
        config.signer = Some(onedoor_bus::Signer::load(key_id.clone(), path)?);
    }
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(onedoor_adapter::server::TlsIdentity {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            client_ca_pem: args.client_ca.as_ref().map(read).transpose()?,
        });
    }
    for hex in &args.client_cert_sha256 {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect::<Option<_>>()
            .with_context(|| format!("--client-cert-sha256 {hex:?} is not hex"))?;
        let fingerprint = <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| anyhow::anyhow!("--client-cert-sha256 {hex:?} is not 32 bytes"))?;
        config.client_certs.push(fingerprint);
    }
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
