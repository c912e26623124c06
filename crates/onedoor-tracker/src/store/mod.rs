//! The tracker's database: one SQL layer over SQLite and PostgreSQL through sqlx's Any driver.
//! Every statement is written once, with `$1` placeholders, and runs unchanged on both; only the
//! migrations' column types differ (see `migrations/`).
//!
//! - `write`: verifying and storing messages, in batches.
//! - `verifying`: the case state each message is verified against.
//! - `rows`: writing the rows of the cases a transaction moved.
//! - `reverify`: verifying a case again from everything stored of it.
//! - `rejected`: messages not believed, recorded and read per case.
//! - `bulk`: multi-row statements, so a batch of events costs a few statements.
//! - `cache`: recently folded case states, so the next event folds onto them.
//! - `read`: what `GetCase`, `ListCases` and `WatchCase` read.
//! - `staff`: per-agency task lists, the overdue list and statistics.
//! - `access`: which cases an agency is part of (the tracker's per-agency confinement).
//! - `lookup`: small reads for the web page (case by trace id, open tasks per agency, origins).
//! - `connections`: the pool's guard against connections in an unknown transaction state.
//! - `writable`: a SQLite file or directory the tracker cannot write is refused at start.

mod access;
mod bulk;
mod cache;
mod connections;
mod deferred;
mod lookup;
mod names;
mod read;
mod rebuild_file;
mod rejected;
mod reverify;
mod rows;
mod staff;
mod verifying;
mod writable;
mod write;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use onedoor_case::LiveRegistry;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor as _, Row as _, SqlSafeStr as _};
use time::OffsetDateTime;

pub use read::{CaseFilter, Cursor};
pub use rebuild_file::RebuildFile;
pub use rejected::RejectedMessage;
pub use staff::{DayCount, HeldStat, OverdueFilter, OverdueOrder, TaskView};
pub use write::{Applied, Checked, Incoming, Writing};

use crate::config::{Backend, DatabaseUrl};
use crate::error::TrackerError;

/// The projection's tables, for [`Store::reset`]; `_sqlx_migrations` goes with them so the
/// migrations run again from the start.
const TABLES: [&str; 7] = [
    "deferred_indexes",
    "events",
    "cases",
    "cases_text",
    "tasks",
    "rejected_messages",
    "_sqlx_migrations",
];

fn migrator(backend: Backend) -> Migrator {
    let files: [(i64, &str, &str); 6] = match backend {
        Backend::Sqlite => [
            (
                1,
                "projection",
                include_str!("../../migrations/sqlite/0001_projection.sql"),
            ),
            (
                2,
                "list indexes",
                include_str!("../../migrations/sqlite/0002_list_indexes.sql"),
            ),
            (
                3,
                "agency listing",
                include_str!("../../migrations/sqlite/0003_agency_listing.sql"),
            ),
            (
                4,
                "overdue listing",
                include_str!("../../migrations/sqlite/0004_overdue_listing.sql"),
            ),
            (
                5,
                "bulk writes",
                include_str!("../../migrations/sqlite/0005_bulk_writes.sql"),
            ),
            (
                6,
                "quarantine by case",
                include_str!("../../migrations/sqlite/0006_quarantine_by_case.sql"),
            ),
        ],
        Backend::Postgres => [
            (
                1,
                "projection",
                include_str!("../../migrations/postgres/0001_projection.sql"),
            ),
            (
                2,
                "list indexes",
                include_str!("../../migrations/postgres/0002_list_indexes.sql"),
            ),
            (
                3,
                "agency listing",
                include_str!("../../migrations/postgres/0003_agency_listing.sql"),
            ),
            (
                4,
                "overdue listing",
                include_str!("../../migrations/postgres/0004_overdue_listing.sql"),
            ),
            (
                5,
                "bulk writes",
                include_str!("../../migrations/postgres/0005_bulk_writes.sql"),
            ),
            (
                6,
                "quarantine by case",
                include_str!("../../migrations/postgres/0006_quarantine_by_case.sql"),
            ),
        ],
    };
    Migrator::with_migrations(
        files
            .into_iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(name),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// What a connection pool is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Serve,
    Rebuild,
}

/// A handle on the tracker's database; cheap to clone (a pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// When set, every message's signature is checked against these agency keys, and who may
    /// open a case against its catalogue, before it is believed (`onedoor_bus::verify`).
    audit: Option<LiveRegistry>,
    /// When set, a text search also finds the cases of agencies whose names (then or now)
    /// contain the text (`names`).
    names: Option<LiveRegistry>,
    cache: Arc<cache::CaseCache>,
    resets: Arc<connections::Resets>,
}

impl Store {
    /// Creates the (PostgreSQL) database `url` names; SQLite files are created on connect.
    pub async fn create_database(url: &DatabaseUrl) -> Result<(), TrackerError> {
        sqlx::any::install_default_drivers();
        <sqlx::Any as sqlx::migrate::MigrateDatabase>::create_database(url.expose())
            .await
            .map_err(TrackerError::db("creating a database"))
    }

    /// Drops the (PostgreSQL) database `url` names, ending any connections still on it.
    pub async fn drop_database(url: &DatabaseUrl) -> Result<(), TrackerError> {
        sqlx::any::install_default_drivers();
        <sqlx::Any as sqlx::migrate::MigrateDatabase>::force_drop_database(url.expose())
            .await
            .map_err(TrackerError::db("dropping a database"))
    }

    /// Answers when the database does: the tracker's health follows it.
    pub async fn ping(&self) -> Result<(), TrackerError> {
        sqlx::query("SELECT 1")
            .execute(self.pool())
            .await
            .map(|_| ())
            .map_err(TrackerError::db("checking the database"))
    }

    /// Lets a text search find cases by the names `registry` gives their agencies.
    pub fn with_names(mut self, registry: impl Into<LiveRegistry>) -> Self {
        self.names = Some(registry.into());
        self
    }

    /// Checks every message's signature against `registry`'s keys before believing it.
    /// A [`LiveRegistry`] swapped meanwhile applies from the next batch.
    pub fn with_audit(mut self, registry: impl Into<LiveRegistry>) -> Self {
        self.audit = Some(registry.into());
        self
    }

    /// Connects and brings the schema up to date (creating any index a rebuild that stopped
    /// part-way left set aside).
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, TrackerError> {
        Self::open(url, Use::Serve).await
    }

    /// Connects for a rebuild, which fills the database from scratch through one connection.
    /// A SQLite `url` must be a new file ([`RebuildFile::url`]): it is written with no journal
    /// and no syncs, and [`Store::finish_rebuild`] makes it an ordinary database again.
    pub async fn connect_for_rebuild(url: &DatabaseUrl) -> Result<Self, TrackerError> {
        Self::open(url, Use::Rebuild).await
    }

    async fn open(url: &DatabaseUrl, purpose: Use) -> Result<Self, TrackerError> {
        let backend = url.backend()?;
        if backend == Backend::Sqlite {
            writable::check(url)?;
        }
        sqlx::any::install_default_drivers();
        let options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        match purpose {
                            // WAL lets the gRPC readers run while the projection writes;
                            // NORMAL sync is durable across application crashes, and a lost
                            // last commit after a power cut is re-delivered by JetStream (it
                            // was not acked).
                            Use::Serve => {
                                conn.execute("PRAGMA journal_mode = WAL").await?;
                                conn.execute("PRAGMA synchronous = NORMAL").await?;
                            }
                            // A new file nobody reads until it is complete (see
                            // `rebuild_file`): no log, no syncs. 1,000,000-event rebuilds
                            // spent a tenth of their time copying pages into the log and
                            // from it into the file.
                            Use::Rebuild => {
                                conn.execute("PRAGMA journal_mode = OFF").await?;
                                conn.execute("PRAGMA synchronous = OFF").await?;
                            }
                        }
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        // The default 2 MB page cache re-read the indexes' pages from the
                        // kernel on every batch of a million-case projection; 64 MiB holds
                        // their upper levels and the hot leaves. Reads beyond it come through
                        // a memory map instead of a read call each.
                        conn.execute("PRAGMA cache_size = -65536").await?;
                        conn.execute("PRAGMA mmap_size = 1073741824").await?;
                        conn.execute("PRAGMA temp_store = MEMORY").await?;
                        if purpose == Use::Rebuild {
                            // 256 MiB of page cache: the events' (case, version) index takes
                            // a row at a random place, and a million events' index no longer
                            // fits the serving 64 MiB. SQLite walks its whole cache at the end
                            // of every write transaction, which cost more than the re-reads
                            // saved while a rebuild committed every batch; it commits every 64
                            // batches now (1,000,000 events: 99.6 s against 104.5 s with 8 MiB,
                            // 16 batches per transaction).
                            conn.execute("PRAGMA cache_size = -262144").await?;
                        }
                    }
                    Ok(())
                })
            });
        let resets = Arc::default();
        let options = connections::guarded(options, &resets);
        let options = match (backend, purpose) {
            // A rebuild is one writer. With more connections its transactions would take turns
            // on them, and each SQLite connection throws its page cache (and its prepared
            // statements) away when it sees that another one wrote.
            (_, Use::Rebuild) => options.max_connections(1),
            // One writer (the projection) and a few readers; more connections only add lock
            // contention on a single file.
            (Backend::Sqlite, Use::Serve) => options.max_connections(4),
            (Backend::Postgres, Use::Serve) => options.max_connections(10),
        };
        let pool = options
            .connect(url.expose())
            .await
            .map_err(TrackerError::db("connecting"))?;
        let store = Store {
            pool,
            backend,
            audit: None,
            names: None,
            cache: Arc::default(),
            resets,
        };
        store.migrate().await?;
        store.restore_indexes().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), TrackerError> {
        // PostgreSQL migrations take an advisory lock; SQLite's take none, so two processes
        // opening one fresh file (the tracker and a rebuild, or a tool) can both try to apply
        // the same migration. The statements are idempotent (IF NOT EXISTS) and the loser fails
        // only on recording the version, so running again finds it applied.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match migrator(self.backend).run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(error) if attempt < 3 && self.backend == Backend::Sqlite => {
                    tracing::debug!(%error, attempt, "migration raced another process; again");
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Empties the database (drops the projection's tables and re-creates them), for a rebuild
    /// from the stream.
    pub async fn reset(&self) -> Result<(), TrackerError> {
        self.cache.clear();
        for table in TABLES {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
                .execute(&self.pool)
                .await
                .map_err(TrackerError::db("dropping the projection's tables"))?;
        }
        self.migrate().await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Closes a store opened by [`Store::connect_for_rebuild`]. A SQLite file is switched to
    /// the write-ahead log the tracker serves with, so the tracker's first connection finds it
    /// ready.
    pub async fn finish_rebuild(self) -> Result<(), TrackerError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .fetch_all(&self.pool)
                .await
                .map_err(TrackerError::db("switching the rebuilt file to WAL"))?;
        }
        self.close().await;
        Ok(())
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Unix nanoseconds, the database's time format. Saturates outside ±292 years of 1970, which no
/// event or due time reaches.
pub(crate) fn to_ns(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(if at.unix_timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

pub(crate) fn from_ns(ns: i64) -> Result<OffsetDateTime, TrackerError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).map_err(|e| TrackerError::Corrupt {
        what: "timestamp".into(),
        why: e.to_string(),
    })
}

pub(crate) fn to_i64(value: u64, what: &'static str) -> Result<i64, TrackerError> {
    i64::try_from(value).map_err(|_| TrackerError::invalid(what, format!("{value} is too large")))
}

/// Reads a column, naming it when the type does not fit (a schema bug, not caller input).
pub(crate) fn column<'r, T>(row: &'r AnyRow, name: &'static str) -> Result<T, TrackerError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name).map_err(|e| TrackerError::Corrupt {
        what: format!("column {name}"),
        why: e.to_string(),
    })
}
