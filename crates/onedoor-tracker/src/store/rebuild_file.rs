//! A SQLite rebuild writes a new file beside the database and moves it over the old one once
//! it is complete.
//!
//! The new file is written with no rollback journal and no write-ahead log: each page goes to
//! the file once, not to a log first and to the file at the next checkpoint. Nothing in the
//! projection's writes undoes part of a transaction (see `bulk::insert_events`), which is the
//! one thing a database without a journal cannot do. A rebuild cut short leaves the new file
//! half-written, and the next rebuild throws it away; the old database stays as it was until
//! the new one replaces it whole.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use sqlx::sqlite::SqliteConnectOptions;

use crate::config::{Backend, DatabaseUrl};
use crate::error::TrackerError;

/// What SQLite keeps beside a database file: its write-ahead log and shared index, and the
/// rollback journal. Left from an older database, any of them would be read as the new
/// file's.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// The file a SQLite rebuild writes, and the database file it replaces.
#[derive(Debug)]
pub struct RebuildFile {
    database: PathBuf,
    building: PathBuf,
}

impl RebuildFile {
    /// For a SQLite database, the new file a rebuild writes (`<database>.rebuilding`), with
    /// whatever a rebuild cut short left there removed. `None` for PostgreSQL, which is
    /// rebuilt in place.
    pub fn prepare(url: &DatabaseUrl) -> Result<Option<Self>, TrackerError> {
        if url.backend()? != Backend::Sqlite {
            return Ok(None);
        }
        let options =
            SqliteConnectOptions::from_str(url.expose()).map_err(|e| TrackerError::Config {
                key: "database_url",
                why: format!("{url} is not a SQLite URL sqlx understands: {e}"),
            })?;
        let memory_mode = url
            .expose()
            .split_once('?')
            .is_some_and(|(_, query)| query.split('&').any(|pair| pair == "mode=memory"));
        // sqlx names `sqlite::memory:` databases `file:sqlx-in-memory-N`.
        let memory_name = options
            .get_filename()
            .to_str()
            .is_some_and(|name| name == ":memory:" || name.starts_with("file:sqlx-in-memory"));
        if memory_mode || memory_name {
            return Err(TrackerError::Config {
                key: "database_url",
                why: format!(
                    "{url} is an in-memory database: a rebuild would be gone when it ends"
                ),
            });
        }
        let database = options.get_filename().to_path_buf();
        refuse_if_open_elsewhere(&database)?;
        let building = with_suffix(&database, ".rebuilding");
        remove_with_companions(&building)?;
        Ok(Some(RebuildFile { database, building }))
    }

    /// Where the rebuild writes.
    pub fn url(&self) -> DatabaseUrl {
        DatabaseUrl::sqlite_file(&self.building)
    }

    /// Puts the new file (closed by then) in the database's place: written through to disk
    /// first, the old database's log and journal removed, then renamed over the old file in
    /// one step.
    ///
    /// Refused while another process has the old database open: it would go on with the old
    /// file and lose what it writes.
    pub async fn install(self) -> Result<(), TrackerError> {
        let database = self.database.clone();
        tokio::task::spawn_blocking(move || self.install_blocking())
            .await
            .map_err(|e| TrackerError::File {
                action: "moving the rebuilt database into place",
                path: database,
                source: std::io::Error::other(e),
            })?
    }

    fn install_blocking(&self) -> Result<(), TrackerError> {
        // The rebuild wrote unsynced: the durable consumer made next says everything up to
        // here is stored, so it must be on disk before then.
        sync(&self.building, "writing the rebuilt database to disk")?;
        refuse_if_open_elsewhere(&self.database)?;
        // A log left from the old database would be replayed into the new one when it is
        // next opened. If the rebuild stops between this and the rename, the old database
        // is missing its last commits: the durable consumer is gone by then, so a tracker
        // started on it replays the stream and stores them again.
        for suffix in COMPANIONS {
            remove(&with_suffix(&self.database, suffix))?;
        }
        std::fs::rename(&self.building, &self.database).map_err(|source| TrackerError::File {
            action: "moving the rebuilt database over",
            path: self.database.clone(),
            source,
        })?;
        if let Some(folder) = self.database.parent() {
            let folder = if folder.as_os_str().is_empty() {
                Path::new(".")
            } else {
                folder
            };
            sync(folder, "writing the rename to disk")?;
        }
        Ok(())
    }
}

/// Fails when another process has the database (or its log) open, as far as this process may
/// see (Linux's `/proc`; processes of other users are not visible to an unprivileged one).
/// Asking SQLite's own locks instead would mean opening the file here, and closing it would
/// drop any lock this process's connections hold on it.
fn refuse_if_open_elsewhere(database: &Path) -> Result<(), TrackerError> {
    let mut files = Vec::new();
    for path in std::iter::once(database.to_path_buf()).chain(
        COMPANIONS
            .iter()
            .map(|suffix| with_suffix(database, suffix)),
    ) {
        if let Ok(real) = std::fs::canonicalize(&path) {
            files.push(real);
        }
    }
    if files.is_empty() {
        return Ok(());
    }
    let pids = processes_holding(&files);
    if pids.is_empty() {
        Ok(())
    } else {
        Err(TrackerError::DatabaseInUse {
            path: database.to_path_buf(),
            pids,
        })
    }
}

/// Other processes with any of `files` open.
fn processes_holding(files: &[PathBuf]) -> Vec<u32> {
    let own = std::process::id();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = processes
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                    .any(|target| files.contains(&target))
            })
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// `path` with `suffix` appended to its file name (SQLite's `-wal`, `-shm`, `-journal`).
pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_with_companions(path: &Path) -> Result<(), TrackerError> {
    remove(path)?;
    for suffix in COMPANIONS {
        remove(&with_suffix(path, suffix))?;
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), TrackerError> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(TrackerError::File {
            action: "removing",
            path: path.to_path_buf(),
            source: error,
        }),
        _ => Ok(()),
    }
}

fn sync(path: &Path, action: &'static str) -> Result<(), TrackerError> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|source| TrackerError::File {
            action,
            path: path.to_path_buf(),
            source,
        })
}
