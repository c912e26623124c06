//! `onedoor tracker bench`: how fast the tracker projects, rebuilds and answers `ListCases`.
//!
//! # Phases, in this order
//! 1. **Listing** (`listing`): `--cases` case views are made by the case rules and written
//!    straight into a fresh SQLite database (`fill`: a bulk path without NATS and without
//!    `events` rows, which `ListCases` never reads); then a real tracker serves them and the
//!    bench calls `ListCases` over loopback gRPC with each filter, HDR histograms per filter.
//!    It runs first, while the stream is still empty, so that tracker's projection has nothing
//!    to add. `--listing-db` keeps that database and reuses it in later runs.
//! 2. **Stream** (`publish`): `--events` events of realistic cases, written by the bus's
//!    write path, signed, and published with JetStream async publish.
//! 3. **Live projection** (`project`): a real tracker (signature checking on) projects the
//!    whole stream into a fresh SQLite database, then into a fresh PostgreSQL database; the
//!    rate is events over the time from its start until every event is stored.
//!    `--skip-live` leaves this phase out. Both trackers, and the listing's, run in this
//!    process (`running`).
//! 4. **Rebuild**: `onedoor_tracker::rebuild` replays the stream into the SQLite database,
//!    and with `--rebuild-postgres` then into the PostgreSQL one.
//!
//! Progress bars draw on stderr when stdout is a terminal; stdout is one JSON line. The
//! nats-server comes from `crate::nats`, as for `onedoor bench`.

mod fill;
mod history;
mod listing;
mod project;
mod publish;
mod running;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use onedoor_bus::Signer;
use onedoor_case::AgencyCode;
use onedoor_tracker::DatabaseUrl;
use serde::Serialize;
use time::OffsetDateTime;

use self::fill::Listing;
use self::history::Catalogue;
use self::listing::Latencies;
use self::project::Rebuilt;
use crate::BenchError;
use crate::nats::Nats;
use crate::proc::load_average;
use crate::progress::bar as progress_bar;

/// The machine's PostgreSQL; the bench makes its own database there.
const DEFAULT_POSTGRES_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

#[derive(Debug, Clone, clap::Args)]
pub struct TrackerBenchArgs {
    /// Events published to the stream, projected live and rebuilt.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Cases in the database `ListCases` is measured on.
    #[arg(long, default_value_t = 1_000_000)]
    pub cases: u64,
    /// `ListCases` calls per filter (after a warm-up of a tenth as many).
    #[arg(long, default_value_t = 300)]
    pub queries: u64,
    /// Pages followed through the cursor in the deep-paging measurement.
    #[arg(long, default_value_t = 20)]
    pub pages: u64,
    /// Cases per `ListCases` page.
    #[arg(long, default_value_t = 50)]
    pub page_size: u32,
    /// PostgreSQL database for the projection measurement (it is emptied); by default a fresh
    /// database on the machine's server, dropped afterwards.
    #[arg(long, env = "ONEDOOR_BENCH_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Skip the PostgreSQL projection.
    #[arg(long)]
    pub no_postgres: bool,
    /// Skip the live projections (SQLite and PostgreSQL): measure the rebuild alone, which
    /// then runs into a fresh database. Their figures are null.
    #[arg(long)]
    pub skip_live: bool,
    /// Also rebuild into PostgreSQL (after the SQLite rebuild), even with `--skip-live`.
    #[arg(long)]
    pub rebuild_postgres: bool,
    /// Use this nats-server (its ONEDOOR stream must be empty) instead of a fresh one.
    #[arg(long)]
    pub nats_url: Option<String>,
    /// Registry file; by default the shipped 2025 registry.
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Where the SQLite databases go (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// SQLite file for the listing measurement, kept afterwards: filled when missing or empty,
    /// reused (not filled again) when it already holds `--cases` cases. Default: a fresh file
    /// in the work directory.
    #[arg(long)]
    pub listing_db: Option<PathBuf>,
}

/// The one JSON line.
#[derive(Debug, Serialize)]
pub struct Report {
    events: u64,
    stream_cases: u64,
    publish_s: f64,
    projection_sqlite_events_per_s: Option<f64>,
    projection_sqlite_s: Option<f64>,
    projection_pg_events_per_s: Option<f64>,
    projection_pg_s: Option<f64>,
    rebuild_events: u64,
    rebuild_s: f64,
    rebuild_events_per_s: f64,
    /// CPU seconds of this process (not nats-server) during the rebuild.
    rebuild_cpu_s: Option<f64>,
    /// The same into PostgreSQL, with `--rebuild-postgres`.
    rebuild_pg_s: Option<f64>,
    rebuild_pg_events_per_s: Option<f64>,
    rebuild_pg_cpu_s: Option<f64>,
    signatures_checked: bool,
    cases: u64,
    overdue_cases: u64,
    listing_fill: String,
    /// Null when `--listing-db` was reused.
    listing_fill_s: Option<f64>,
    queries: u64,
    page_size: u32,
    #[serde(flatten)]
    list: Latencies,
    nats_server: Option<String>,
    uptime_load: Option<String>,
    uptime_load_end: Option<String>,
}

impl TrackerBenchArgs {
    fn validate(&self) -> Result<(), BenchError> {
        let problem = [
            (self.events > 0, "--events must be at least 1"),
            (self.cases > 0, "--cases must be at least 1"),
            (self.queries > 0, "--queries must be at least 1"),
            (self.pages > 1, "--pages must be at least 2"),
            (
                (1..=500).contains(&self.page_size),
                "--page-size must be 1..=500",
            ),
        ]
        .into_iter()
        .find(|(ok, _)| !ok);
        match problem {
            Some((_, why)) => Err(BenchError::InvalidArgument(why.to_owned())),
            None => Ok(()),
        }
    }
}

/// `onedoor tracker bench`: measures and prints the JSON line on stdout.
pub fn run(args: TrackerBenchArgs) -> Result<ExitCode, BenchError> {
    let report = measure(args)?;
    crate::print_json_line(&report)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the whole bench on a runtime of its own and returns its figures.
pub fn measure(args: TrackerBenchArgs) -> Result<Report, BenchError> {
    args.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("starting the async runtime"))?;
    runtime.block_on(bench(args))
}

/// A PostgreSQL database for the projection phase, dropped at the end when the bench made it.
struct Postgres {
    url: DatabaseUrl,
    made: bool,
}

impl Postgres {
    async fn open(url: Option<&str>) -> Result<Postgres, BenchError> {
        if let Some(url) = url {
            return Ok(Postgres {
                url: DatabaseUrl::parse(url)?,
                made: false,
            });
        }
        let name = format!(
            "onedoor_tracker_bench_{}",
            ulid::Ulid::generate().to_string().to_lowercase()
        );
        let url = DatabaseUrl::parse(&format!("{DEFAULT_POSTGRES_SERVER}/{name}"))?;
        onedoor_tracker::Store::create_database(&url)
            .await
            .map_err(|source| BenchError::Connect {
                action: format!(
                    "creating a database on {DEFAULT_POSTGRES_SERVER} (or pass --no-postgres)"
                ),
                source: source.into(),
            })?;
        Ok(Postgres { url, made: true })
    }

    async fn close(self) {
        if self.made
            && let Err(error) = onedoor_tracker::Store::drop_database(&self.url).await
        {
            tracing::warn!(%error, "could not drop the bench database");
        }
    }
}

async fn bench(args: TrackerBenchArgs) -> Result<Report, BenchError> {
    let uptime_load = load_average();
    let now = OffsetDateTime::now_utc();
    let (catalogue, signers) = catalogue_with_keys(&args, now)?;
    let temp = tempfile::Builder::new()
        .prefix("onedoor-tracker-bench-")
        .tempdir()
        .map_err(BenchError::io("making a temporary directory"))?;
    let work_dir = args.work_dir.clone().unwrap_or_else(|| temp.path().into());
    std::fs::create_dir_all(&work_dir)
        .map_err(BenchError::io(format!("creating {}", work_dir.display())))?;

    let nats = Nats::start(args.nats_url.as_deref()).await?;
    let postgres = if args.no_postgres || (args.skip_live && !args.rebuild_postgres) {
        None
    } else {
        Some(Postgres::open(args.database_url.as_deref()).await?)
    };
    let outcome = phases(
        &args,
        &nats,
        postgres.as_ref().map(|p| &p.url),
        &work_dir,
        catalogue,
        signers,
        now,
    )
    .await;
    if let Some(postgres) = postgres {
        postgres.close().await;
    }
    let nats_server = nats.version.clone();
    nats.stop().await;
    Ok(Report::new(&args, outcome?, nats_server, uptime_load))
}

/// The registry's histories, with a signing key for every agency that acts in them, valid
/// since before the oldest generated event.
fn catalogue_with_keys(
    args: &TrackerBenchArgs,
    now: OffsetDateTime,
) -> Result<(Arc<Catalogue>, HashMap<AgencyCode, Signer>), BenchError> {
    let registry = crate::load_registry(args.registry.as_deref())?;
    let agencies = Catalogue::new(Arc::new(registry.clone()))?.agencies();
    let (registry, signers) = crate::keys::registry_with_keys(
        registry,
        &agencies,
        "tracker-bench",
        (now - time::Duration::days(365)).date(),
    )?;
    Ok((
        Arc::new(Catalogue::new(registry)?),
        signers.into_iter().collect(),
    ))
}

impl Report {
    fn new(
        args: &TrackerBenchArgs,
        measured: Measured,
        nats_server: Option<String>,
        uptime_load: Option<String>,
    ) -> Report {
        let projected = measured.projected;
        let per_s = |events: u64, s: f64| events as f64 / s;
        Report {
            events: args.events,
            stream_cases: measured.stream_cases,
            publish_s: measured.publish_s,
            projection_sqlite_events_per_s: projected.sqlite_s.map(|s| per_s(args.events, s)),
            projection_sqlite_s: projected.sqlite_s,
            projection_pg_events_per_s: projected.pg_s.map(|s| per_s(args.events, s)),
            projection_pg_s: projected.pg_s,
            rebuild_events: projected.rebuild.events,
            rebuild_s: projected.rebuild.s,
            rebuild_events_per_s: per_s(projected.rebuild.events, projected.rebuild.s),
            rebuild_cpu_s: projected.rebuild.cpu_s,
            rebuild_pg_s: projected.rebuild_pg.map(|r| r.s),
            rebuild_pg_events_per_s: projected.rebuild_pg.map(|r| per_s(r.events, r.s)),
            rebuild_pg_cpu_s: projected.rebuild_pg.and_then(|r| r.cpu_s),
            signatures_checked: true,
            cases: args.cases,
            overdue_cases: measured.listing.overdue_cases,
            listing_fill: measured.listing.how,
            listing_fill_s: measured.listing.fill_s,
            queries: args.queries,
            page_size: args.page_size,
            list: measured.list,
            nats_server,
            uptime_load,
            uptime_load_end: load_average(),
        }
    }
}

/// What the phases measured.
struct Measured {
    listing: Listing,
    list: Latencies,
    stream_cases: u64,
    publish_s: f64,
    projected: Projected,
}

/// The projection phases' figures.
struct Projected {
    /// Seconds until the live SQLite projection stored every event (`None`: `--skip-live`).
    sqlite_s: Option<f64>,
    pg_s: Option<f64>,
    rebuild: Rebuilt,
    rebuild_pg: Option<Rebuilt>,
}

async fn phases(
    args: &TrackerBenchArgs,
    nats: &Nats,
    postgres: Option<&DatabaseUrl>,
    work_dir: &Path,
    catalogue: Arc<Catalogue>,
    signers: HashMap<AgencyCode, Signer>,
    now: OffsetDateTime,
) -> Result<Measured, BenchError> {
    let js = nats.jetstream().await?;
    refuse_busy_stream(&js, &nats.url).await?;

    // 1. Listing, while the stream is empty.
    let listing_path = args
        .listing_db
        .clone()
        .unwrap_or_else(|| work_dir.join("listing.db"));
    let bar = progress_bar(args.cases, "fill");
    let listing = fill::prepare(&listing_path, catalogue.clone(), args.cases, now, |n| {
        bar.set_position(n)
    })
    .await?;
    bar.finish_and_clear();
    let listing_db = DatabaseUrl::sqlite_file(&listing_path);
    let list =
        listing::measure(&nats.url, &listing_db, catalogue.clone(), args, args.cases).await?;

    // 2. The stream.
    let bar = progress_bar(args.events, "publish");
    let started = Instant::now();
    let stream_cases = publish::publish(
        &js,
        catalogue.clone(),
        Arc::new(signers),
        args.events,
        now,
        |n| bar.set_position(n),
    )
    .await?;
    let publish_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    // 3. Live projection into each database; 4. rebuild.
    let live = project::Live {
        nats_url: &nats.url,
        registry: Arc::new(catalogue.registry().clone()),
        events: args.events,
    };
    let projected = project(args, &live, work_dir, postgres).await?;
    Ok(Measured {
        listing,
        list,
        stream_cases,
        publish_s,
        projected,
    })
}

/// The bench counts every event it finds in the stream as its own.
async fn refuse_busy_stream(
    js: &async_nats::jetstream::Context,
    url: &str,
) -> Result<(), BenchError> {
    let mut stream = js
        .get_stream(onedoor_bus::STREAM_NAME)
        .await
        .map_err(BenchError::nats("binding to the ONEDOOR stream"))?;
    let before = stream
        .info()
        .await
        .map_err(BenchError::nats("reading the stream's state"))?
        .state
        .messages;
    if before > 0 {
        return Err(BenchError::Unfit(format!(
            "the ONEDOOR stream at {url} already holds {before} messages; the bench needs an empty one"
        )));
    }
    Ok(())
}

/// The live projections (unless `--skip-live`), then the rebuilds, SQLite first.
async fn project(
    args: &TrackerBenchArgs,
    live: &project::Live<'_>,
    work_dir: &Path,
    postgres: Option<&DatabaseUrl>,
) -> Result<Projected, BenchError> {
    let sqlite = DatabaseUrl::sqlite_file(&work_dir.join("projection.db"));
    let sqlite_s = if args.skip_live {
        None
    } else {
        Some(live.measure(&sqlite, "bench-sqlite").await?)
    };
    let pg_s = match postgres {
        Some(url) if !args.skip_live => Some(live.measure(url, "bench-postgres").await?),
        _ => None,
    };
    let rebuild = live.rebuild(&sqlite, "bench-sqlite").await?;
    let rebuild_pg = match postgres {
        Some(url) if args.rebuild_postgres => Some(live.rebuild(url, "bench-postgres").await?),
        _ => None,
    };
    Ok(Projected {
        sqlite_s,
        pg_s,
        rebuild,
        rebuild_pg,
    })
}
