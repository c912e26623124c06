//! `onedoor up`: the single-machine bus. Starts the pinned nats-server on ports it picks (or is
//! given), makes sure the ONEDOOR stream exists with the contract configuration, starts every
//! agency's adapter on a free loopback port, writes `endpoints.json`, and runs until Ctrl-C or
//! SIGTERM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use onedoor_adapter::{AdapterConfig, Token};
use onedoor_bus::Signer;
use onedoor_case::Registry;
use onedoor_grpc::TlsIdentity;
use onedoor_natsd::{NatsBinary, NatsServer, Port, ServerSpec};
use tokio::sync::watch;
use tokio::task::JoinSet;

use serde::{Deserialize, Serialize};

use super::common;
use super::settings::{self, Resolved};

mod summary;
mod webhooks;
use crate::data_dir::{
    self, AgencyEndpoint, Endpoints, NatsEndpoint, NatsIdentity, TrackerEndpoint,
};
use crate::file_modes;
use onedoor_natsauth::{CredentialSet, Identity};

/// Settings may come from `--config FILE` (keys are these flags' names with `_`), from the
/// environment, or from the flags; a flag wins over a variable, which wins over the file.
#[derive(Debug, Default, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct UpArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub file: settings::FileFlags,
    /// Where the bus keeps its state and writes endpoints.json; default .onedoor.
    #[arg(long, env = "ONEDOOR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// NATS client port; by default a free port is picked (a machine may already run a NATS on
    /// 4222).
    #[arg(long)]
    pub nats_port: Option<u16>,
    /// Registry file (agencies, services, calendar); by default the shipped 2025 registry.
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Once up, send one demo case (a construction permit) through its agencies, as
    /// `onedoor demo` does.
    #[arg(long)]
    #[serde(skip_serializing_if = "settings::is_false")]
    pub demo: bool,
    /// TOML file of agencies whose adapter pushes its inbox to a webhook instead of being
    /// pulled: one table per agency code (`url`, `secrets`, optional `ca`, `timeout`,
    /// `max_deliver`, `retry_first`; docs/webhooks.md).
    #[arg(long, value_name = "FILE")]
    pub webhooks: Option<PathBuf>,
}

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let flags = args.file.clone();
    let Resolved::Run(args) = settings::resolve(&flags, args, |_| Ok(()), &[])? else {
        return Ok(ExitCode::SUCCESS);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(up(args))
}

async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let dir = args
        .data_dir
        .unwrap_or_else(|| PathBuf::from(common::DEFAULT_DATA_DIR));
    // The data dir holds the supervisor token and the development keys.
    file_modes::owner_only_umask();
    common::private_dir(&dir, common::LooseDir::Tighten)?;
    file_modes::tighten_tree(&dir)?;
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
    let (mut registry, registry_name) = common::load_registry_mut(args.registry.as_deref())?;
    tracing::debug!(registry = %registry_name, summary = %registry.summary(), "registry loaded");
    let webhooks = webhooks::load(args.webhooks.as_deref(), &registry)?;
    let signers = super::keys::make_dev_keys(&dir, &mut registry)?;
    let tokens = super::keys::make_dev_tokens(&mut registry)?;
    let (pki, tls_files) = super::keys::make_dev_pki(&dir, &registry)?;
    let registry = Arc::new(registry);
    // NATS with one nkey user per agency, permissions generated from the registry: an agency
    // can publish only its own events and pull only its own inbox, even outside its adapter.
    let nats = CredentialSet::load_or_generate(&dir.join("nats-credentials"), &registry)?;
    let credentials = DevCredentials {
        nats,
        signers: signers.into_iter().collect(),
        tokens,
        pki,
        tls_files,
        webhooks,
    };

    let telemetry = super::telemetry::init("onedoor")?;
    let binary = onedoor_natsd::locate()?;
    let mut spec = ServerSpec::new(binary.clone(), dir.join("nats"));
    spec.client_port = args.nats_port.map_or(Port::Random, Port::Fixed);
    spec.server_name = Some("onedoor-dev".to_owned());
    spec.extra_config = onedoor_natsauth::render_config(&registry, &credentials.nats)?;
    let mut server = NatsServer::start(spec)
        .await
        .context("starting nats-server")?;
    let outcome = serve(
        &dir,
        &server,
        &binary,
        registry,
        credentials,
        &registry_name,
        args.demo,
    )
    .await;
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
    telemetry.shutdown().await;
    outcome
}

/// A free loopback port for the metrics exporter, which binds by address itself. The port is
/// released before the exporter binds it: a small race, acceptable for a development bus.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

async fn serve(
    dir: &Path,
    server: &NatsServer,
    binary: &NatsBinary,
    registry: Arc<Registry>,
    mut credentials: DevCredentials,
    registry_name: &str,
    demo: bool,
) -> anyhow::Result<ExitCode> {
    // Caught from before endpoints.json exists: a script that reads it may stop `up` at once.
    let signals = common::ShutdownSignals::install()?;
    let url = server.client_url();
    provision(&credentials.nats, &url, &registry, &credentials.webhooks).await?;
    let metrics_port = free_port()?;
    super::metrics::install(([127, 0, 0, 1], metrics_port).into())?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = Servers::new();
    start_reader(&mut servers, &stop_rx, &registry, &url, &credentials.nats).await?;
    let agencies =
        start_adapters(&mut servers, &stop_rx, &registry, &url, &mut credentials).await?;
    let tracker = start_tracker(&mut servers, &stop_rx, dir, &registry, &url, &credentials).await?;

    let endpoints = Endpoints {
        version: data_dir::ENDPOINTS_VERSION,
        pid: std::process::id(),
        started_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        registry: registry_name.to_owned(),
        nats: nats_endpoint(server, binary, &credentials.nats),
        agencies,
        tracker: Some(tracker),
        tls_ca_cert: Some(credentials.tls_files.ca_cert.display().to_string()),
        metrics_url: Some(format!("http://127.0.0.1:{metrics_port}/metrics")),
    };
    let path = endpoints.write(dir)?;
    summary::wait_until_serving(&endpoints).await;
    // The demo's journey comes before the summary, which stays the last thing on screen.
    if demo {
        let service = onedoor_case::ServiceCode::parse("construction-permit")?;
        if let Err(err) = super::demo::journey(&endpoints, &registry, &service, None).await {
            eprintln!("demo failed: {err:#}");
        }
    }
    summary::print(&endpoints, &path, dir, binary);
    run_until_stopped(servers, stop_tx, signals).await
}

/// Every server task `up` runs, each ending with its name and how it ended.
type Servers = JoinSet<(String, anyhow::Result<()>)>;

/// Waits for Ctrl-C, SIGTERM or the first server to end, then stops them all.
async fn run_until_stopped(
    mut servers: Servers,
    stop_tx: watch::Sender<bool>,
    signals: common::ShutdownSignals,
) -> anyhow::Result<ExitCode> {
    let outcome = tokio::select! {
        () = signals.recv() => Ok(ExitCode::SUCCESS),
        Some(joined) = servers.join_next() => match joined {
            Ok((name, Err(err))) => Err(anyhow::anyhow!("{name} failed: {err:#}")),
            Ok((name, Ok(()))) => Err(anyhow::anyhow!("{name} stopped unexpectedly")),
            Err(err) => Err(anyhow::anyhow!("a server task panicked: {err}")),
        },
    };
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    while let Some(joined) = servers.join_next().await {
        if let Ok((name, Err(err))) = joined {
            tracing::warn!(server = %name, error = %err, "did not stop cleanly");
        }
    }
    outcome
}

/// The operator identity sets up what agencies may not: the stream, every inbox consumer, the
/// tracker's consumer and the stuck bucket, by the same code as `onedoor provision`.
async fn provision(
    nats: &CredentialSet,
    url: &str,
    registry: &Registry,
    webhooks: &webhooks::Webhooks,
) -> anyhow::Result<()> {
    let operator = nats
        .connect_options(&Identity::Operator)?
        .connect(url)
        .await
        .with_context(|| format!("connecting to {url} as the operator"))?;
    let mut desired = super::provision::desired(registry, onedoor_bus::StreamSettings::default())?;
    webhooks::apply_to(&mut desired, webhooks)?;
    let jetstream = async_nats::jetstream::new(operator);
    let changes = onedoor_natsauth::provision(&jetstream, &desired, false).await?;
    tracing::debug!(
        objects = changes.len(),
        "stream, consumers and stuck bucket ready"
    );
    Ok(())
}

/// The case reader, through which every adapter reads (an agency's NATS user may not read the
/// stream). Answering before the adapters start.
async fn start_reader(
    servers: &mut Servers,
    stop_rx: &watch::Receiver<bool>,
    registry: &Arc<Registry>,
    url: &str,
    nats: &CredentialSet,
) -> anyhow::Result<()> {
    let client = nats
        .connect_options(&Identity::Reader)?
        .name("onedoor-reader")
        .ping_interval(onedoor_natsauth::PING_INTERVAL)
        .connect(url)
        .await
        .with_context(|| format!("connecting to {url} as the case reader"))?;
    let mut reader = super::reader::start(
        client,
        registry.clone(),
        onedoor_bus::read::READER_CACHED_CASES,
    )
    .await?;
    let mut stop = stop_rx.clone();
    servers.spawn(async move {
        let outcome = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => {
                reader.abort();
                Ok(())
            }
            ended = &mut reader => Err(match ended {
                Ok(()) => anyhow::anyhow!("its NATS connection closed"),
                Err(err) => anyhow::anyhow!("it panicked: {err}"),
            }),
        };
        ("case reader".to_owned(), outcome)
    });
    Ok(())
}

/// Every agency in the registry gets its adapter, merged-away ones included: they still hold
/// tasks on cases in flight and must be able to finish them.
async fn start_adapters(
    servers: &mut Servers,
    stop_rx: &watch::Receiver<bool>,
    registry: &Arc<Registry>,
    url: &str,
    credentials: &mut DevCredentials,
) -> anyhow::Result<BTreeMap<String, AgencyEndpoint>> {
    let mut agencies = BTreeMap::new();
    for agency in registry.agencies.values() {
        let code = agency.code.to_string();
        let token = credentials
            .tokens
            .remove(&code)
            .context("a development token per agency")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding an adapter port")?;
        let address = listener.local_addr()?;
        let mut config = AdapterConfig::new(
            agency.code.clone(),
            Token::new(token.clone())?,
            registry.clone(),
            url.to_owned(),
        );
        config.signer = credentials.signers.remove(agency.code.as_str());
        config.tls = Some(credentials.server_tls());
        config.nats.credentials =
            seed_credentials(&credentials.nats, &Identity::Agency(agency.code.clone()));
        config.reads = onedoor_adapter::CaseReads::Reader;
        config.follow_registry = true;
        if let Some(webhook) = credentials.webhooks.get(&code) {
            config.inbox = webhook.inbox();
            config.webhook = Some(webhook.config()?);
        }
        config.client_certs = credentials
            .pki
            .clients
            .get(&code)
            .map(|c| vec![c.sha256])
            .unwrap_or_default();
        let mut stop = stop_rx.clone();
        servers.spawn(async move {
            let result = onedoor_adapter::run(config, listener, async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
            .await;
            (
                format!("adapter {code}"),
                result.map_err(anyhow::Error::from),
            )
        });
        let (client_cert, client_key) = credentials
            .tls_files
            .client_cert
            .get(agency.code.as_str())
            .map(|(cert, key)| {
                (
                    Some(cert.display().to_string()),
                    Some(key.display().to_string()),
                )
            })
            .unwrap_or_default();
        agencies.insert(
            agency.code.to_string(),
            AgencyEndpoint {
                grpc: format!("https://{address}"),
                json: Some(format!("https://{address}")),
                token,
                kind: agency.kind.as_str().to_owned(),
                name_en: agency.name_en.clone(),
                name_lo: agency.name_lo.clone(),
                client_cert,
                client_key,
            },
        );
    }
    Ok(agencies)
}

/// The tracker projects every event into SQLite under the data dir and serves CaseTracker;
/// the staff web page gets its own free port (browsers, HTTP/1.1), listed as `tracker.web`.
async fn start_tracker(
    servers: &mut Servers,
    stop_rx: &watch::Receiver<bool>,
    dir: &Path,
    registry: &Arc<Registry>,
    url: &str,
    credentials: &DevCredentials,
) -> anyhow::Result<TrackerEndpoint> {
    let tracker_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the tracker port")?;
    let tracker_address = tracker_listener.local_addr()?;
    let web_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the web page port")?;
    let web_address = web_listener.local_addr()?;
    let supervisor_token = common::dev_token();
    let supervisor_file = dir.join(SUPERVISOR_TOKEN_FILE);
    common::write_secret(
        &supervisor_file,
        &supervisor_token,
        common::Existing::Replace,
    )?;
    let tracker_config = tracker_config(dir, registry, url, credentials, &supervisor_token)?;
    // Staff sign-in on the web page when the data dir has an accounts file (format in
    // onedoor_web::auth); without one the page is open, on loopback only.
    let mut web_config = onedoor_web::WebConfig {
        tls: Some(credentials.server_tls()),
        ..onedoor_web::WebConfig::default()
    };
    let staff = dir.join("staff.toml");
    if staff.exists() {
        let accounts = onedoor_web::StaffAccounts::load(&staff, registry)?;
        web_config.staff_accounts = Some(Arc::new(accounts));
    }
    let web_page = onedoor_web::WebPage::new(web_listener, web_config)?;
    let mut stop = stop_rx.clone();
    servers.spawn(async move {
        let result = async {
            let tracker =
                onedoor_tracker::Tracker::start(tracker_config, tracker_listener, async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await?;
            web_page.serve_beside(tracker).await
        }
        .await;
        ("tracker".to_owned(), result.map_err(anyhow::Error::from))
    });
    Ok(TrackerEndpoint {
        grpc: format!("https://{tracker_address}"),
        web: Some(format!("https://{web_address}/")),
        supervisor_token: Some(supervisor_token),
        supervisor_token_file: Some(supervisor_file.display().to_string()),
    })
}

/// The tracker checks each case's signatures as it projects (`up` made every agency's key) and
/// serves gRPC with the adapters' TLS identity; agencies read it with their own tokens or
/// client certificates (confined to their cases), staff tools with the supervisor token, whose
/// hash alone the tracker keeps.
fn tracker_config(
    dir: &Path,
    registry: &Arc<Registry>,
    url: &str,
    credentials: &DevCredentials,
    supervisor_token: &str,
) -> anyhow::Result<onedoor_tracker::TrackerConfig> {
    let mut config = onedoor_tracker::TrackerConfig::new(
        url.to_owned(),
        onedoor_tracker::DatabaseUrl::sqlite_file(&dir.join("tracker.db")),
        registry.clone(),
    );
    config.verify_signatures = true;
    config.follow_registry = true;
    config.nats.credentials = seed_credentials(&credentials.nats, &Identity::Tracker);
    config.tls = Some(credentials.server_tls());
    let client_certs: Vec<_> = registry
        .agencies
        .values()
        .filter_map(|agency| {
            credentials
                .pki
                .clients
                .get(agency.code.as_str())
                .map(|cert| (agency.code.clone(), cert.sha256))
        })
        .collect();
    config.grpc_access = Some(onedoor_tracker::GrpcAccess::new(
        registry,
        &[Token::new(supervisor_token.to_owned())?.sha256()],
        &client_certs,
    ));
    Ok(config)
}

fn nats_endpoint(server: &NatsServer, binary: &NatsBinary, nats: &CredentialSet) -> NatsEndpoint {
    NatsEndpoint {
        url: server.client_url(),
        monitor_url: format!("http://{}", server.monitor_addr()),
        stream: onedoor_bus::STREAM_NAME.to_owned(),
        server_version: binary.version.to_string(),
        auditor: nats.seed_file(&Identity::Auditor).map(|seed| NatsIdentity {
            identity: Identity::Auditor.to_string(),
            seed_file: seed.display().to_string(),
            public_key: nats
                .public_key(&Identity::Auditor)
                .map(ToString::to_string)
                .unwrap_or_default(),
            inbox_prefix: Identity::Auditor.inbox_prefix(),
        }),
    }
}

/// The development supervisor token for CaseTracker, under the data dir (mode 0600).
const SUPERVISOR_TOKEN_FILE: &str = "supervisor.token";

/// What `up` makes for a development bus: signing keys, bearer tokens (the registry holds their
/// hashes), and a CA with server and client certificates.
struct DevCredentials {
    /// One nkey identity per agency, plus operator, tracker and auditor.
    nats: CredentialSet,
    /// Taken out one by one as each agency's adapter starts.
    signers: BTreeMap<String, Signer>,
    tokens: BTreeMap<String, String>,
    pki: onedoor_grpc::devpki::DevPki,
    tls_files: super::keys::DevTlsFiles,
    /// The agencies that push to a webhook, with their signing secrets (`--webhooks`).
    webhooks: webhooks::Webhooks,
}

impl DevCredentials {
    /// The development server certificate every server here presents; client certificates
    /// are checked against the development CA.
    fn server_tls(&self) -> TlsIdentity {
        TlsIdentity {
            cert_pem: self.pki.server.cert_pem.clone(),
            key_pem: self.pki.server.key_pem.clone(),
            client_ca_pem: Some(self.pki.ca_cert_pem.clone()),
        }
    }
}

/// The seed file `up` made for `identity`, as NATS credentials.
fn seed_credentials(
    credentials: &onedoor_natsauth::CredentialSet,
    identity: &Identity,
) -> onedoor_natsauth::NatsCredentials {
    credentials
        .seed_file(identity)
        .map_or(onedoor_natsauth::NatsCredentials::None, |path| {
            onedoor_natsauth::NatsCredentials::Seed(path.to_path_buf())
        })
}
