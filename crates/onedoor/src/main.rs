//! The `onedoor` command line. `main` only parses arguments, sets up logging and hands over to
//! a command module; each command is a small function that tests can also drive through the
//! built binary.
//!
//! # Layout
//! - `commands::registry`: `onedoor registry check FILE`, `registry diff OLD NEW`.
//! - `commands::up`: `onedoor up`, the single-machine bus.
//! - `commands::demo`: `onedoor demo`, one case through every agency of a route.
//! - `commands::audit`: `onedoor audit verify`, signatures and hash chains.
//! - `commands::keys`: `onedoor keys new|rotate|nats-import`, an agency's credentials, and the
//!   development keys made by `up`.
//! - `commands::certs`: `onedoor certs ca|server|client`, the gRPC TLS certificates.
//! - `commands::adapter`: `onedoor adapter --agency X`, one agency's gRPC gateway.
//! - `commands::tracker`: `onedoor tracker` (projection + CaseTracker) and `tracker rebuild`.
//! - `commands::provision`: `onedoor provision [--check]`, the stream, consumers and bucket
//!   as the operator makes them.
//! - `commands::case`: `onedoor case show|list`, read from the tracker.
//! - `commands::conformance`: `onedoor conformance`, a ministry's webhook receiver checked.
//! - `onedoor bench` and `onedoor tracker bench` are thin: their flags and the runs are in the
//!   `onedoor-bench` crate.
//! - `commands::common`, `commands::metrics`: registry loading, dev tokens, signals, the
//!   Prometheus exporter.
//! - `data_dir`: where a running bus is found (`--data-dir`, `ONEDOOR_DATA_DIR`, `.onedoor/`)
//!   and the `endpoints.json` it writes.

mod commands;
mod data_dir;
mod file_modes;

/// jemalloc for the whole process. Built with unprefixed symbols, it also serves the C code
/// linked in (SQLite), which calls `malloc` for every value bound and every record built. Under
/// glibc's allocator that was half of the SQLite thread's time in a rebuild, and its frees
/// from other threads a good part of the readers'. 300,000-event rebuilds
/// (`onedoor tracker bench --events 300000 --skip-live --no-postgres`): 25.9 s with glibc,
/// 22.8 s with jemalloc, and a lower peak RSS (690 MB against 757 MB). `onedoor up --demo`
/// settles at 39 MB instead of 35.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "onedoor",
    version,
    about = "Coordination bus for One-Door Service Centers and the ministries behind them"
)]
struct Cli {
    /// How logs are written to stderr: `text` for people, `json` (one object per line) for
    /// log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Which logs are written, as a level or a filter: `debug`, `warn`,
    /// `info,async_nats=debug`. Overrides ONEDOOR_LOG, which takes the same text. By default
    /// (`info,async_nats=warn`) warnings, errors and each server's ready line; NATS connection
    /// chatter shows from `async_nats=info` on.
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run; boxing would buy nothing
enum Command {
    /// Start the whole bus on this machine: NATS, every adapter, the tracker and web page.
    ///
    /// A pinned nats-server with one NATS user per agency, the ONEDOOR stream, every agency's
    /// adapter, the tracker and the staff web page, all on free loopback ports listed in
    /// DATA_DIR/endpoints.json. Ctrl-C stops it.
    Up(commands::up::UpArgs),
    /// Run one agency's AgencyGateway (gRPC) next to its IT system.
    Adapter(commands::adapter::AdapterArgs),
    /// Run the tracker (case views for staff, CaseTracker gRPC), or rebuild its database.
    Tracker(commands::tracker::TrackerArgs),
    /// Run the case reader: agencies read cases only through it, and only the cases they are a
    /// party to (opened, or were sent a task on). Stateless; run two or more.
    Reader(commands::reader::ReaderArgs),
    /// Look up cases in the tracker: where a case is, who has it, since when, is it late.
    Case {
        #[command(subcommand)]
        command: commands::case::CaseCommand,
    },
    /// Write a secured nats-server configuration (accounts, one nkey user per agency with its
    /// permissions, operator/tracker/auditor identities) from a registry.
    NatsConfig(commands::nats::NatsConfigArgs),
    /// Create or update, as the NATS operator, what adapters and the tracker need: the
    /// ONEDOOR stream, every agency's inbox consumer, the tracker's consumer, the stuck bucket.
    ///
    /// Prints one line per object (created, updated with each field's old → new value, or
    /// unchanged). Refuses what JetStream cannot change in place, and fewer replicas of data
    /// without --force. With --check it changes nothing and exits 1 on drift; errors exit 2.
    Provision(commands::provision::ProvisionArgs),
    /// Send one demo case through every agency on a service's route (needs `onedoor up`).
    Demo(commands::demo::DemoArgs),
    /// Measure end-to-end hand-offs (HandOff → Inbox → Ack) on a bus of its own, beside raw
    /// JetStream on the same server; ends with one JSON line.
    Bench(onedoor_bench::BenchArgs),
    /// Check case histories: signatures and hash chains.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Work with registry files (agencies, service catalogue, calendar).
    Registry {
        #[command(subcommand)]
        command: commands::registry::RegistryCommand,
    },
    /// Make an agency's credentials: signing key, NATS nkey, bearer token; rotate them.
    Keys {
        #[command(subcommand)]
        command: commands::keys::KeysCommand,
    },
    /// Make TLS certificates for the adapters' gRPC: a CA, server and client certificates.
    Certs {
        #[command(subcommand)]
        command: commands::certs::CertsCommand,
    },
    /// Ask a running adapter or tracker its gRPC health; exits 0 only when SERVING (for
    /// container health checks and Kubernetes exec probes).
    Health(commands::health::HealthArgs),
    /// Check a ministry's own webhook receiver the way its adapter will drive it: signatures,
    /// stale timestamps, duplicates, out-of-order items, fields at the limits, the timeout.
    ///
    /// Prints a pass/fail table with how to fix each failure; exits 0 only if all pass.
    Conformance(commands::conformance::ConformanceArgs),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify one case (or --all); exits non-zero naming the first bad event of each bad case.
    Verify(commands::audit::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = init_logging(&cli) {
        eprintln!("error: {err:#}");
        return ExitCode::FAILURE;
    }
    let outcome = match cli.command {
        Command::Registry { command } => commands::registry::run(command),
        Command::Up(args) => commands::up::run(args),
        Command::Adapter(args) => commands::adapter::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Bench(args) => onedoor_bench::handoff::run(args).map_err(Into::into),
        Command::NatsConfig(args) => commands::nats::nats_config(args),
        Command::Provision(args) => commands::provision::run(args),
        Command::Tracker(args) => commands::tracker::run(args),
        Command::Reader(args) => commands::reader::run(args),
        Command::Case { command } => commands::case::run(command),
        Command::Health(args) => commands::health::run(args),
        Command::Conformance(args) => commands::conformance::run(args),
        Command::Keys { command } => commands::keys::run(command),
        Command::Certs { command } => commands::certs::run(command),
        Command::Audit {
            command: AuditCommand::Verify(args),
        } => commands::audit::verify(args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, so a command's stdout carries its result alone. The default shows what an
/// operator acts on: warnings, errors and each server's one ready line. async-nats reports every
/// connection at INFO (two lines per connection, dozens under `up`); that is DEBUG detail here.
fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    let filter = log_filter(cli)?;
    // Colours only for a person at a terminal, never escape codes in a log file.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    Ok(())
}

/// `--log-level`, else `ONEDOOR_LOG`, else the command's default. A filter that does not parse
/// is refused rather than quietly replaced, so a typo never hides the logs someone asked for.
fn log_filter(cli: &Cli) -> anyhow::Result<tracing_subscriber::EnvFilter> {
    let from_env = std::env::var(LOG_ENV)
        .ok()
        .filter(|text| !text.trim().is_empty());
    let (text, source) = match (&cli.log_level, from_env) {
        (Some(text), _) => (text.clone(), "--log-level"),
        (None, Some(text)) => (text, LOG_ENV),
        // The bench hosts adapters that log every event at info; by default it keeps stderr
        // for warnings (--log-level info measures with production logging).
        (None, None) => match cli.command {
            Command::Bench(_) => return Ok(tracing_subscriber::EnvFilter::new("warn")),
            _ => return Ok(tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER)),
        },
    };
    // A lone word that is no level would parse as a target name and silence everything else.
    let lone_word = !text.contains(['=', ',', '[', ':']);
    if lone_word
        && text
            .trim()
            .parse::<tracing_subscriber::filter::LevelFilter>()
            .is_err()
    {
        anyhow::bail!(
            "{source} {text:?} is not a log level (error, warn, info, debug, trace, off) \
             or a filter such as `info,async_nats=debug`"
        );
    }
    tracing_subscriber::EnvFilter::try_new(&text)
        .with_context(|| format!("{source} {text:?} is not a log level or filter"))
}

/// The environment variable that sets the log filter when `--log-level` does not.
const LOG_ENV: &str = "ONEDOOR_LOG";
/// Warnings, errors and ready lines; async-nats's per-connection INFO lines left out.
const DEFAULT_LOG_FILTER: &str = "info,async_nats=warn";
