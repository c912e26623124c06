//! `onedoor adapter`: one agency's AgencyGateway, as a ministry runs it in production.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use onedoor_adapter::webhook::{WebhookConfig, WebhookSecrets};
use onedoor_adapter::{AdapterConfig, Token};
use onedoor_case::AgencyCode;

use serde::{Deserialize, Serialize};

use super::common;
use super::settings::{self, Resolved, Secret};

/// Where the adapter listens when no layer says: loopback, the ministry's own machine.
const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// `--case-reads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseReadsArg {
    Reader,
    Stream,
}

/// Every setting may come from `--config FILE` (keys are these flags' names with `_`), from the
/// environment, or from the flag; a flag wins over a variable, which wins over the file.
#[derive(Debug, Default, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct AdapterArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub file: settings::FileFlags,
    /// The agency this adapter speaks for, e.g. MOIC (required).
    #[arg(long, env = "ONEDOOR_AGENCY")]
    pub agency: Option<String>,
    /// Address the gRPC server binds (use 0.0.0.0:PORT to serve the agency's network);
    /// default 127.0.0.1:50051.
    #[arg(long, env = "ONEDOOR_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// NATS with the ONEDOOR stream (a URL is required), as the agency's NATS identity.
    #[command(flatten)]
    #[serde(flatten)]
    pub nats: super::nats::NatsArgs,
    /// A bearer token accepted besides those the registry lists by hash (`[[agency.token]]`);
    /// prefer the environment or the config file over the command line, which other users
    /// can see.
    #[arg(long, env = "ONEDOOR_AGENCY_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// The agency's Ed25519 event-signing key file (base64 seed); needs --key-id, its key id
    /// in the registry.
    #[arg(long, env = "ONEDOOR_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// The signing key's id, as the registry lists it under the agency (`[[agency.key]]`).
    #[arg(long, env = "ONEDOOR_KEY_ID")]
    pub key_id: Option<String>,
    /// Serve TLS with this certificate and key (PEM, both needed); with --client-ca, agencies'
    /// client certificates are accepted too (their SHA-256 in --client-cert-sha256).
    #[arg(long, env = "ONEDOOR_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key (PEM).
    #[arg(long, env = "ONEDOOR_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that signs the agency's client certificates (needs TLS).
    #[arg(long, env = "ONEDOOR_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// SHA-256 (64 hex) of each client certificate (DER) that speaks for the agency; repeat
    /// or separate with commas.
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_cert_sha256: Vec<String>,
    /// Push the inbox to this URL as signed POSTs instead of waiting to be pulled (one per
    /// agency; docs/webhooks.md); needs --webhook-secrets.
    #[arg(long, env = "ONEDOOR_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Owner-only file of webhook signing secrets (`whsec_…`), one a line, newest first; two
    /// only while rotating.
    #[arg(long, env = "ONEDOOR_WEBHOOK_SECRETS")]
    pub webhook_secrets: Option<PathBuf>,
    /// CA (PEM) to trust for an https webhook URL instead of the system's roots.
    #[arg(long, env = "ONEDOOR_WEBHOOK_CA")]
    pub webhook_ca: Option<PathBuf>,
    /// Seconds one webhook POST may take, answer included (default 10; below the inbox's
    /// shortest backoff step).
    #[arg(long, env = "ONEDOOR_WEBHOOK_TIMEOUT")]
    pub webhook_timeout: Option<u64>,
    /// Serve gRPC only, without the HTTP/JSON face on the same port (`docs/http-json.md`).
    #[arg(long, env = "ONEDOOR_NO_JSON")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_json: bool,
    /// Registry file (agencies, services, calendar); by default the shipped 2025 registry.
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Public key file (`[[key]]` entries: agency, id, public_key, valid_from) added to the
    /// registry, as `onedoor up` writes its development keys; for a registry that does not list
    /// the agencies' keys itself.
    #[arg(long, env = "ONEDOOR_KEYS")]
    pub keys: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (`/metrics`).
    #[arg(long, env = "ONEDOOR_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Where cases are read: `reader` (default) asks the case reader (`onedoor reader`), the
    /// only way under the agency's confined NATS user; `stream` reads the stream directly, for a
    /// development NATS without users.
    #[arg(long, env = "ONEDOOR_CASE_READS", value_enum)]
    pub case_reads: Option<CaseReadsArg>,
    /// A district office's own nats-server (e.g. `nats://127.0.0.1:4222`, from
    /// `deploy/nats/district-office.conf`): writes the capital cannot take now go to its outbox
    /// and a forwarder delivers them when the link allows (docs/district-offices.md).
    #[arg(long, env = "ONEDOOR_OFFICE_NODE")]
    pub office_node: Option<String>,
    /// Runtime worker threads (default: one per core). One thread wakes other threads less:
    /// `onedoor bench --rate 1000 --adapter-threads 1` on 2 cores measured about a fifth less
    /// adapter CPU than two, and a worse p99 while other processes competed for the cores.
    #[arg(long, env = "ONEDOOR_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: Option<u16>,
}

impl AdapterArgs {
    /// Checks what no single layer can: required settings and the ones that go in pairs.
    fn validate(&self) -> anyhow::Result<()> {
        let missing = |name: &str, env: &str| {
            anyhow::anyhow!(
                "{name} is required: --{name}, {env}, or `{}` in --config",
                name.replace('-', "_")
            )
        };
        if self.agency.is_none() {
            return Err(missing("agency", "ONEDOOR_AGENCY"));
        }
        self.nats.validate(true)?;
        if self.signing_key.is_some() != self.key_id.is_some() {
            anyhow::bail!("signing_key and key_id go together: give both or neither");
        }
        settings::check_tls(
            self.tls_cert.is_some(),
            self.tls_key.is_some(),
            self.client_ca.is_some(),
        )?;
        if self.webhook_url.is_some() != self.webhook_secrets.is_some() {
            anyhow::bail!("webhook_url and webhook_secrets go together: give both or neither");
        }
        if self.webhook_url.is_none()
            && (self.webhook_ca.is_some() || self.webhook_timeout.is_some())
        {
            anyhow::bail!("webhook_ca and webhook_timeout need webhook_url");
        }
        if let Some(threads) = self.worker_threads
            && threads == 0
        {
            anyhow::bail!("worker_threads must be at least 1");
        }
        Ok(())
    }
}

pub fn run(args: AdapterArgs) -> anyhow::Result<ExitCode> {
    let flags = args.file.clone();
    let Resolved::Run(args) = settings::resolve(&flags, args, AdapterArgs::validate, &["token"])?
    else {
        return Ok(ExitCode::SUCCESS);
    };
    crate::file_modes::owner_only_umask();
    crate::file_modes::check_secrets(&[
        ("signing key", args.signing_key.as_deref()),
        ("TLS key", args.tls_key.as_deref()),
        ("NATS seed", args.nats.nats_seed.as_deref()),
        ("NATS credentials", args.nats.nats_creds.as_deref()),
        ("NATS TLS key", args.nats.nats_tls_key.as_deref()),
        ("webhook secrets", args.webhook_secrets.as_deref()),
    ])?;
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
    let agency_text = args.agency.clone().unwrap_or_default();
    let agency =
        AgencyCode::parse(&agency_text).with_context(|| format!("agency {agency_text:?}"))?;
    let (registry, _) =
        common::load_registry_with_keys(args.registry.as_deref(), args.keys.as_deref())?;
    if let Some(address) = args.metrics_listen {
        super::metrics::install(address)?;
    }
    let mut config = AdapterConfig::new(
        agency,
        Token::new(common::dev_token())?,
        registry,
        String::new(),
    );
    config.nats = args.nats.settings()?;
    if args.no_json {
        config.http = None;
    }
    config.office_node = args.office_node.clone();
    config.follow_registry = true;
    common::reload_on_sighup(args.registry.as_deref(), &config.registry)?;
    config.reads = match args.case_reads {
        None | Some(CaseReadsArg::Reader) => onedoor_adapter::CaseReads::Reader,
        Some(CaseReadsArg::Stream) => onedoor_adapter::CaseReads::Stream,
    };
    config.token = args
        .token
        .as_ref()
        .map(|token| Token::new(token.expose().to_owned()))
        .transpose()?;
    if let (Some(path), Some(key_id)) = (&args.signing_key, &args.key_id) {
        config.signer = Some(onedoor_bus::Signer::load(key_id.clone(), path)?);
    }
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(onedoor_grpc::TlsIdentity {
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
    config.webhook = webhook(&args)?;
    let listen = match args.listen {
        Some(address) => address,
        None => DEFAULT_LISTEN
            .parse()
            .context("the default listen address")?,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
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

/// The webhook settings, when a URL is given (`validate` made sure its secrets are too).
fn webhook(args: &AdapterArgs) -> anyhow::Result<Option<WebhookConfig>> {
    let (Some(url), Some(secrets)) = (&args.webhook_url, &args.webhook_secrets) else {
        return Ok(None);
    };
    webhook_config(
        url,
        WebhookSecrets::load(secrets)?,
        args.webhook_ca.as_deref(),
        args.webhook_timeout,
    )
    .map(Some)
}

/// The webhook settings from the adapter's flags; `onedoor conformance` takes the same ones.
pub fn webhook_config(
    url: &str,
    secrets: WebhookSecrets,
    ca: Option<&std::path::Path>,
    timeout_seconds: Option<u64>,
) -> anyhow::Result<WebhookConfig> {
    let mut config = WebhookConfig::new(url, secrets);
    config.ca_pem = ca
        .map(|path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        })
        .transpose()?;
    if let Some(seconds) = timeout_seconds {
        config.timeout = std::time::Duration::from_secs(seconds);
    }
    Ok(config)
}
