//! A SQLite file the tracker cannot write opens anyway (SQLite falls back to read-only) and
//! fails only at the first event to store. So the tracker refuses to start instead, naming
//! the path and what to change.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use sqlx::sqlite::SqliteConnectOptions;

use super::rebuild_file::with_suffix;
use crate::config::DatabaseUrl;
use crate::error::TrackerError;

const DIRECTORY_FIX: &str = "the tracker writes its SQLite file and the file's -wal and -shm \
     logs there: make the directory writable by the tracker's user (or its file system \
     read-write), or set database_url to a file elsewhere";
const FILE_FIX: &str = "make it writable by the tracker's user (chown or chmod; a file left \
     by a run as another user is the usual cause), or its file system read-write";

/// Fails unless the directory of the SQLite file `url` names, and the file and its logs
/// where they exist, can be written. In-memory and read-only (`mode=ro`) URLs pass.
pub(crate) fn check(url: &DatabaseUrl) -> Result<(), TrackerError> {
    let Ok(options) = SqliteConnectOptions::from_str(url.expose()) else {
        // DatabaseUrl::parse checked it; a URL built otherwise fails at connect, with sqlx's
        // own message.
        return Ok(());
    };
    let file = options.get_filename();
    let query = url.expose().split_once('?').map_or("", |(_, q)| q);
    let untouched = query
        .split('&')
        .any(|pair| pair == "mode=ro" || pair == "mode=memory")
        || file.to_string_lossy().starts_with("file:sqlx-in-memory");
    if untouched {
        return Ok(());
    }
    let directory = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    check_directory(&directory)?;
    for path in [
        file.to_path_buf(),
        with_suffix(file, "-wal"),
        with_suffix(file, "-shm"),
    ] {
        if path.exists()
            && let Err(error) = OpenOptions::new().read(true).write(true).open(&path)
        {
            return Err(not_writable(
                &path,
                format!("is not writable ({error})"),
                FILE_FIX,
            ));
        }
    }
    Ok(())
}

/// Creates and removes a file in `directory`: whether writing is allowed depends on the user,
/// the modes, ACLs and the mount, and only trying answers for all of them.
fn check_directory(directory: &Path) -> Result<(), TrackerError> {
    if !directory.is_dir() {
        return Err(not_writable(
            directory,
            "does not exist (or is not a directory)".to_owned(),
            "create it, writable by the tracker's user, or set database_url to a file elsewhere",
        ));
    }
    let probe = directory.join(format!(
        ".onedoor-tracker-write-check-{}",
        std::process::id()
    ));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            // Only a leftover dot-file if this fails; nothing depends on it.
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(not_writable(
            directory,
            format!("is not writable ({error})"),
            DIRECTORY_FIX,
        )),
    }
}

fn not_writable(path: &Path, problem: String, fix: &'static str) -> TrackerError {
    TrackerError::StoreNotWritable {
        path: path.to_path_buf(),
        problem,
        fix,
    }
}
