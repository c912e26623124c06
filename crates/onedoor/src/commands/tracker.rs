//! `onedoor tracker`: the tracker standalone (projection + CaseTracker gRPC);
//! `onedoor tracker rebuild`, which replays the stream into an empty database; and two staff
//! reports read straight from the tracker's database and the bus: `stats` (overdue tasks,
//! cases per day, median time held) and `stuck` (deliveries an inbox gave up on).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use onedoor_tracker::store::{DayCount, HeldStat, RejectedMessage, TaskView};
use onedoor_tracker::stuck::stuck_deliveries;
use onedoor_tracker::{DatabaseUrl, Store, TrackerConfig};
use time::OffsetDateTime;

use onedoor_natsauth::{CredentialSet, Identity};
use serde::{Deserialize, Serialize};

use super::common::{self, say};
use super::settings::{self, Resolved, Secret};

/// The SQLite file the tracker keeps under the data dir when no `--database-url` is given.
pub const SQLITE_FILE: &str = "tracker.db";

/// The tracker's settings may come from `--config FILE` (keys are these flags' names with
/// `_`), from the environment, or from the flags; a flag wins over a variable, which wins over
/// the file. The subcommands take flags and the environment only.
#[derive(Debug, Default, clap::Args, Serialize, Deserialize)]
#[command(args_conflicts_with_subcommands = true)]
#[serde(default)]
pub struct TrackerArgs {
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<TrackerCommand>,
    #[command(flatten)]
    #[serde(skip)]
    pub file: settings::FileFlags,
    #[command(flatten)]
    #[serde(flatten)]
    pub options: TrackerOptions,
    /// Address the gRPC server binds; port 0 picks a free one (printed at start); default
    /// 127.0.0.1:0.
    #[arg(long, env = "ONEDOOR_TRACKER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Serve Prometheus metrics on this address (`/metrics`).
    #[arg(long, env = "ONEDOOR_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Address the staff web page binds (its own port); port 0 picks a free one; default
    /// 127.0.0.1:0.
    #[arg(long, env = "ONEDOOR_WEB_LISTEN")]
    pub web_listen: Option<SocketAddr>,
    /// Staff accounts for the web page's sign-in (TOML, Argon2 password hashes); without it
    /// the page has no sign-in, so only bind it to loopback.
    #[arg(long, env = "ONEDOOR_STAFF_ACCOUNTS")]
    pub staff_accounts: Option<PathBuf>,
    /// Address blocks of proxies in front of the web page (e.g. 10.0.0.5/32); only their
    /// X-Forwarded-For names the client for the sign-in limits. Repeat or separate with commas.
    #[arg(long, env = "ONEDOOR_WEB_TRUSTED_PROXY", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxy: Vec<String>,
    #[command(flatten)]
    #[serde(flatten)]
    pub security: TrackerSecurity,
    /// Seconds without a district office's status (sent every 5 s while its link is up) after
    /// which the tracker shows it disconnected; default 15.
    #[arg(long, env = "ONEDOOR_OFFICE_SILENCE", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(6..=86_400))]
    pub office_silence: Option<u64>,
}

/// Where the tracker listens when no layer says: free loopback ports.
const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// TLS and who may read CaseTracker. Agencies always authenticate with their registry tokens
/// (or client certificates) and see only their own cases.
#[derive(Debug, Default, Clone, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct TrackerSecurity {
    /// Server certificate chain (PEM) for gRPC and the web page; without it both are plaintext,
    /// for loopback only. Needs --tls-key.
    #[arg(long, env = "ONEDOOR_TRACKER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The server certificate's private key (PEM).
    #[arg(long, env = "ONEDOOR_TRACKER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that signs agencies' client certificates, accepted on gRPC (needs TLS).
    #[arg(long, env = "ONEDOOR_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// An agency's client certificate (PEM), as AGENCY=FILE; repeat for each agency.
    #[arg(long = "client-cert", value_name = "AGENCY=FILE")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_certs: Vec<String>,
    /// SHA-256 (64 hex) of a supervisor token, which reads every case; repeat or separate
    /// with commas. Make one with `printf %s "$TOKEN" | sha256sum`.
    #[arg(
        long = "supervisor-token-sha256",
        env = "ONEDOOR_SUPERVISOR_TOKEN_SHA256",
        value_delimiter = ','
    )]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supervisor_token_sha256: Vec<String>,
    /// Serve plaintext on a non-loopback address anyway (behind a proxy that terminates TLS);
    /// without it, such a start is refused, since tokens and sessions would cross the network
    /// in clear.
    #[arg(long)]
    #[serde(skip_serializing_if = "settings::is_false")]
    pub allow_plaintext: bool,
}

impl TrackerSecurity {
    /// The settings that go in pairs, checked once every layer is in.
    fn validate(&self) -> anyhow::Result<()> {
        settings::check_tls(
            self.tls_cert.is_some(),
            self.tls_key.is_some(),
            self.client_ca.is_some(),
        )?;
        Ok(())
    }

    fn apply(&self, config: &mut TrackerConfig, listens: &[SocketAddr]) -> anyhow::Result<()> {
        let exposed = listens.iter().any(|address| !address.ip().is_loopback());
        if self.tls_cert.is_none() && exposed && !self.allow_plaintext {
            anyhow::bail!(
                "refusing to serve gRPC and the web page in plaintext on a non-loopback address: \
                 pass --tls-cert and --tls-key (or --allow-plaintext behind a TLS proxy)"
            );
        }
        let read = |path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        };
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config.tls = Some(onedoor_tracker::TlsIdentity {
                cert_pem: read(cert)?,
                key_pem: read(key)?,
                client_ca_pem: self.client_ca.as_deref().map(read).transpose()?,
            });
        }
        let mut client_certs = Vec::new();
        for item in &self.client_certs {
            let (agency, file) = item
                .split_once('=')
                .with_context(|| format!("--client-cert {item:?} is not AGENCY=FILE"))?;
            let agency = onedoor_case::AgencyCode::parse(agency)?;
            let pem = read(Path::new(file))?;
            client_certs.push((agency, onedoor_grpc::tls::certificate_sha256(&pem)?));
        }
        let supervisor = self
            .supervisor_token_sha256
            .iter()
            .map(|hex| onedoor_grpc::tls::parse_sha256("supervisor_token_sha256", hex))
            .collect::<Result<Vec<_>, _>>()?;
        config.grpc_access = Some(onedoor_tracker::GrpcAccess::new(
            &config.registry.current(),
            &supervisor,
            &client_certs,
        ));
        Ok(())
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum TrackerCommand {
    /// Replay the whole stream into an empty database (stop the running tracker, and anything
    /// else with the database open, first; on SQLite the rebuild refuses while another process
    /// it can see has the file open). The views come out identical to the live ones.
    /// SQLite is rebuilt into a new file beside the database (FILE.rebuilding, written without
    /// a journal) that replaces it once complete; PostgreSQL is emptied and refilled in place.
    /// The listing indexes (and on SQLite the text search) are set aside during the replay and
    /// made at the end; the tracker's consumer is made again once everything is in place, just
    /// past the replay. If the rebuild is cut short, a SQLite database is left as it was (the
    /// next rebuild throws the half-written file away); a tracker started then replays the
    /// stream from its start (storing an event twice changes nothing) and makes any index
    /// still set aside. With NATS authorization on, it runs as the tracker's identity, which
    /// may delete and make again its own consumer and the rebuild's (`tracker-rebuild`).
    Rebuild(TrackerOptions),
    /// Overdue tasks now (with working days late), cases opened and resolved per day, the
    /// median time each agency holds each service's tasks, and stream messages the tracker
    /// could not use.
    Stats(ReportArgs),
    /// Inbox deliveries that exhausted their attempts (the ONEDOOR_STUCK bucket).
    Stuck(ReportArgs),
    /// The district offices the running tracker hears from: connected, or disconnected since
    /// when, and how many steps wait at each for the link (asks the tracker's gRPC API as a
    /// supervisor).
    Offices(super::offices::OfficesArgs),
    /// Measure the tracker on generated cases: live projection into SQLite and PostgreSQL,
    /// rebuild time, and `ListCases` latency per filter over gRPC; prints one JSON line.
    Bench(onedoor_bench::TrackerBenchArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub options: TrackerOptions,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Default, Clone, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct TrackerOptions {
    /// The bus's data dir: its endpoints.json gives the NATS URL, and the default SQLite
    /// database lives here (tracker.db); default .onedoor.
    #[arg(long, env = "ONEDOOR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// NATS with the ONEDOOR stream, as the `tracker` identity; by default the URL in
    /// DATA_DIR/endpoints.json and the tracker's seed under DATA_DIR/nats-credentials when
    /// `onedoor up` made one there.
    #[command(flatten)]
    #[serde(flatten)]
    pub nats: super::nats::NatsArgs,
    /// sqlite:///PATH/tracker.db (or just the path; created if missing) or
    /// postgres://USER@HOST/DATABASE; by default DATA_DIR/tracker.db.
    #[arg(long, env = "ONEDOOR_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,
    /// Registry file (its working calendar counts lateness); by default the built-in one.
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
}

impl TrackerOptions {
    fn config(&self) -> anyhow::Result<TrackerConfig> {
        let (registry, _) = common::load_registry(self.registry.as_deref())?;
        let mut config = TrackerConfig::new(String::new(), self.database()?, registry);
        let data_dir = self.data_dir();
        config.nats = self.nats.settings_or(super::nats::Fallback {
            data_dir: &data_dir,
            seed: up_seed(&data_dir),
        })?;
        config.validate()?;
        Ok(config)
    }

    fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(common::DEFAULT_DATA_DIR))
    }

    fn database(&self) -> anyhow::Result<DatabaseUrl> {
        match &self.database_url {
            Some(url) => Ok(DatabaseUrl::parse(url.expose())?),
            None => {
                let dir = self.data_dir();
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating data dir {}", dir.display()))?;
                Ok(DatabaseUrl::sqlite_file(&dir.join(SQLITE_FILE)))
            }
        }
    }
}

/// The tracker's seed file `onedoor up` wrote under `data_dir`, if any.
fn up_seed(data_dir: &Path) -> Option<PathBuf> {
    let credentials = CredentialSet::load(&data_dir.join("nats-credentials")).ok()?;
    credentials
        .seed_file(&Identity::Tracker)
        .map(Path::to_path_buf)
}

pub fn run(mut args: TrackerArgs) -> anyhow::Result<ExitCode> {
    let command = match args.command.take() {
        // The bench builds its own runtime.
        Some(TrackerCommand::Bench(args)) => return Ok(onedoor_bench::tracker::run(args)?),
        command => command,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match command {
        Some(TrackerCommand::Rebuild(options)) => runtime.block_on(rebuild(options)),
        Some(TrackerCommand::Stats(args)) => runtime.block_on(stats(args)),
        Some(TrackerCommand::Stuck(args)) => runtime.block_on(stuck(args)),
        Some(TrackerCommand::Offices(args)) => runtime.block_on(super::offices::run(args)),
        Some(TrackerCommand::Bench(args)) => Ok(onedoor_bench::tracker::run(args)?),
        None => {
            let flags = args.file.clone();
            let validate = |args: &TrackerArgs| {
                args.options.nats.validate(false)?;
                args.security.validate()
            };
            let Resolved::Run(args) = settings::resolve(&flags, args, validate, &["database_url"])?
            else {
                return Ok(ExitCode::SUCCESS);
            };
            check_files(&args)?;
            runtime.block_on(serve(args))
        }
    }
}

/// Owner-only files from here on, and no start from a secret or store others can read.
fn check_files(args: &TrackerArgs) -> anyhow::Result<()> {
    crate::file_modes::owner_only_umask();
    let database = args.options.data_dir().join(SQLITE_FILE);
    let default_database =
        (args.options.database_url.is_none() && database.exists()).then_some(database.as_path());
    crate::file_modes::check_secrets(&[
        ("TLS key", args.security.tls_key.as_deref()),
        ("NATS seed", args.options.nats.nats_seed.as_deref()),
        ("NATS credentials", args.options.nats.nats_creds.as_deref()),
        ("NATS TLS key", args.options.nats.nats_tls_key.as_deref()),
        ("staff accounts file", args.staff_accounts.as_deref()),
        ("tracker database", default_database),
    ])
}

/// `--office-silence SECONDS`, when given, over the default.
fn set_office_silence(config: &mut TrackerConfig, seconds: Option<u64>) {
    if let Some(seconds) = seconds {
        config.office_silence = Duration::from_secs(seconds);
    }
}

async fn serve(args: TrackerArgs) -> anyhow::Result<ExitCode> {
    let TrackerArgs {
        options,
        staff_accounts,
        trusted_proxy,
        metrics_listen,
        security,
        ..
    } = args;
    let (listen, web_listen) = (
        args.listen.unwrap_or(DEFAULT_LISTEN),
        args.web_listen.unwrap_or(DEFAULT_LISTEN),
    );
    let mut config = options.config()?;
    config.follow_registry = true;
    common::reload_on_sighup(options.registry.as_deref(), &config.registry)?;
    security.apply(&mut config, &[listen, web_listen])?;
    set_office_silence(&mut config, args.office_silence);
    let proxies = trusted_proxy
        .iter()
        .map(|block| block.parse::<onedoor_web::Cidr>())
        .collect::<Result<Vec<_>, _>>()
        .context("--trusted-proxy")?;
    let mut web_config = onedoor_web::WebConfig {
        tls: config.tls.clone(),
        trusted_proxies: onedoor_web::TrustedProxies(proxies),
        ..onedoor_web::WebConfig::default()
    };
    if let Some(path) = &staff_accounts {
        let accounts = onedoor_web::StaffAccounts::load(path, &config.registry.current())?;
        web_config.staff_accounts = Some(std::sync::Arc::new(accounts));
    }
    if let Some(address) = metrics_listen {
        super::metrics::install(address)?;
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let address = listener.local_addr().context("reading the bound address")?;
    let web_listener = tokio::net::TcpListener::bind(web_listen)
        .await
        .with_context(|| format!("binding {web_listen}"))?;
    let web_address = web_listener
        .local_addr()
        .context("reading the bound address")?;
    let web_page = onedoor_web::WebPage::new(web_listener, web_config)?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!("onedoor tracker");
    println!("  gRPC       {scheme}://{address}");
    println!(
        "  web page   {scheme}://{web_address}/  ({})",
        if staff_accounts.is_some() {
            "staff sign-in"
        } else {
            "no sign-in"
        }
    );
    println!("  NATS       {}", config.nats.urls_text());
    println!("  database   {}", config.database);
    println!("Ctrl-C stops it.");
    let shutdown = async {
        if let Err(err) = common::shutdown_signal().await {
            tracing::error!(error = %err, "signal handling failed; stopping");
        }
    };
    let telemetry = super::telemetry::init("onedoor-tracker")?;
    let outcome = async {
        let tracker = onedoor_tracker::Tracker::start(config, listener, shutdown).await?;
        web_page.serve_beside(tracker).await
    }
    .await;
    telemetry.shutdown().await;
    outcome?;
    Ok(ExitCode::SUCCESS)
}

async fn rebuild(options: TrackerOptions) -> anyhow::Result<ExitCode> {
    let config = options.config()?;
    println!(
        "rebuilding {} from the stream at {} …",
        config.database,
        config.nats.urls_text()
    );
    let report = onedoor_tracker::rebuild(&config).await?;
    println!(
        "rebuilt: {} messages up to stream sequence {} ({} events, {} rejected) in {:.1} s",
        report.messages,
        report.last_sequence,
        report.events,
        report.rejected,
        report.elapsed.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// What `tracker stats` reports, read once from the database.
struct Stats {
    overdue: Vec<TaskView>,
    days: Vec<DayCount>,
    held: Vec<HeldStat>,
    rejected: Vec<RejectedMessage>,
}

async fn stats(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let (registry, _) = common::load_registry(args.options.registry.as_deref())?;
    let calendar = &registry.calendar;
    let default_file = args.options.data_dir().join(SQLITE_FILE);
    if args.options.database_url.is_none() && !default_file.exists() {
        // Opening would create an empty database and report "nothing overdue": a wrong data
        // dir must not read as good news.
        anyhow::bail!(
            "no tracker database at {}: pass --data-dir where `onedoor up` or `onedoor tracker` \
             runs, or --database-url",
            default_file.display()
        );
    }
    let store = Store::connect(&args.options.database()?).await?;
    let now = OffsetDateTime::now_utc();
    let stats = Stats {
        overdue: store.overdue_tasks(None, calendar, now).await?,
        days: store.daily_counts(calendar.utc_offset).await?,
        held: store.median_time_held().await?,
        rejected: store.rejected_messages().await?,
    };
    store.close().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats_json(&stats))?);
    } else {
        print_stats(&stats, calendar.utc_offset);
    }
    Ok(ExitCode::SUCCESS)
}

fn stats_json(stats: &Stats) -> serde_json::Value {
    serde_json::json!({
        "overdue_tasks": stats.overdue.iter().map(|t| serde_json::json!({
            "case_id": t.task.case_id,
            "agency": t.task.agency,
            "service": t.task.service,
            "citizen_ref": t.citizen_ref,
            "due_at": rfc3339(t.task.due_at),
            "working_days_late": t.working_days_late,
        })).collect::<Vec<_>>(),
        "days": stats.days.iter().map(|d| serde_json::json!({
            "date": d.date.to_string(), "opened": d.opened, "resolved": d.resolved,
        })).collect::<Vec<_>>(),
        "median_time_held": stats.held.iter().map(|h| serde_json::json!({
            "agency": h.agency, "service": h.service, "tasks": h.tasks,
            "median_seconds": h.median.whole_seconds(),
        })).collect::<Vec<_>>(),
        "rejected_messages": stats.rejected.iter().map(|r| serde_json::json!({
            "stream_sequence": r.stream_sequence, "subject": r.subject, "reason": r.reason,
            "recorded_at": rfc3339(r.recorded_at),
        })).collect::<Vec<_>>(),
    })
}

fn print_stats(stats: &Stats, offset: time::UtcOffset) {
    let civil = |at: OffsetDateTime| {
        let at = at.to_offset(offset);
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute()
        )
    };
    say(&format!("Overdue tasks ({})", stats.overdue.len()));
    for t in &stats.overdue {
        say(&format!(
            "  {}  {:<8} due {}  {} working day(s) late  {}  {}",
            t.task.case_id,
            t.task.agency,
            civil(t.task.due_at),
            t.working_days_late,
            t.task.service,
            t.citizen_ref
        ));
    }
    say("");
    say("Cases per day (opened / resolved)");
    for d in &stats.days {
        say(&format!("  {}  {:>5}  {:>5}", d.date, d.opened, d.resolved));
    }
    say("");
    say("Median time held, over finished tasks");
    for h in &stats.held {
        say(&format!(
            "  {:<8} {:<28} {:>5} task(s)  {:.1} h",
            h.agency,
            h.service,
            h.tasks,
            h.median.as_seconds_f64() / 3600.0
        ));
    }
    if !stats.rejected.is_empty() {
        say("");
        say(&format!(
            "Stream messages the tracker could not use ({})",
            stats.rejected.len()
        ));
        for r in &stats.rejected {
            say(&format!(
                "  error: stream sequence {} ({}): {}",
                r.stream_sequence, r.subject, r.reason
            ));
        }
    }
}

async fn stuck(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let config = args.options.config()?;
    let client = config.connect_nats("onedoor-tracker-stuck").await?;
    let report = stuck_deliveries(&async_nats::jetstream::new(client)).await?;
    if args.json {
        let out = serde_json::json!({
            "stuck": report.deliveries,
            "unreadable": report.unreadable.iter().map(|u| serde_json::json!({
                "key": u.key, "why": u.why,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if report.deliveries.is_empty() && report.unreadable.is_empty() {
        say("No stuck deliveries.");
    }
    for d in &report.deliveries {
        say(&format!(
            "  {}  {:<8} case {}  event {}  seq {}  {} deliveries  {}",
            rfc3339(d.recorded_at),
            d.agency,
            d.case_id,
            d.event_id,
            d.stream_sequence,
            d.deliveries,
            d.reason
        ));
    }
    for u in &report.unreadable {
        say(&format!(
            "  error: entry {} is not a stuck-delivery record: {}",
            u.key, u.why
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
