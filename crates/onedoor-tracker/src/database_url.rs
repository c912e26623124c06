//! [`DatabaseUrl`]: which database the tracker stores its views in, as an operator writes it.
//!
//! SQLite takes `sqlite:///var/lib/onedoor/tracker.db`, `sqlite://tracker.db` (relative),
//! `sqlite:tracker.db`, or a bare path; the file is created when missing, as a tracker's first
//! start expects, unless the URL asks otherwise (`?mode=rw`, `?mode=ro`). PostgreSQL takes
//! `postgres://` or `postgresql://` URLs. Anything else, and a URL either driver would refuse,
//! is refused here with what is wrong, before anything connects.

use std::fmt;
use std::path::Path;
use std::str::FromStr as _;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use crate::error::TrackerError;

/// Which SQL database a URL names; the few statements that differ (column types in the
/// migrations) are chosen by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A database URL. It may hold a password, so `Debug` and `Display` show it with the password
/// replaced; [`DatabaseUrl::expose`] gives the real text to the driver only.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Checks `text` as the driver will read it and, for a SQLite file, asks for it to be
    /// created when missing.
    pub fn parse(text: &str) -> Result<Self, TrackerError> {
        let text = text.trim();
        let url = match scheme(text) {
            Some("sqlite") => sqlite(text)?,
            Some("postgres" | "postgresql") => {
                PgConnectOptions::from_str(text).map_err(|e| refused(text, &e))?;
                DatabaseUrl(text.to_owned())
            }
            Some(other) => {
                return Err(config(format!(
                    "{} names a database of kind {other:?}; the tracker stores in SQLite \
                     (sqlite:///path/to/tracker.db, or just the path) or PostgreSQL \
                     (postgres://USER@HOST/DATABASE)",
                    DatabaseUrl(text.to_owned())
                )));
            }
            None if text.is_empty() => return Err(config("is empty".to_owned())),
            None => sqlite(&format!("sqlite:{}", encode_path(text)))?,
        };
        Ok(url)
    }

    /// A SQLite file, created when missing.
    pub fn sqlite_file(path: &Path) -> Self {
        let path = encode_path(&path.to_string_lossy());
        let prefix = if path.starts_with('/') {
            "sqlite://"
        } else {
            "sqlite:"
        };
        DatabaseUrl(format!("{prefix}{path}?mode=rwc"))
    }

    pub fn backend(&self) -> Result<Backend, TrackerError> {
        match scheme(&self.0) {
            Some("sqlite") => Ok(Backend::Sqlite),
            Some("postgres" | "postgresql") => Ok(Backend::Postgres),
            _ => Err(config(format!(
                "{self} is neither sqlite://FILE nor postgres://USER@HOST/DATABASE"
            ))),
        }
    }

    /// The URL with its password, for the database driver.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn redacted(&self) -> String {
        // scheme://user:password@host… → scheme://user:***@host…
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return self.0.clone();
        };
        let Some((userinfo, host)) = rest.split_once('@') else {
            return self.0.clone();
        };
        match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => self.0.clone(),
        }
    }
}

/// The URL scheme of `text`, if it has one. A bare path has none; so has a Windows-style
/// drive letter, which is no scheme either.
fn scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once(':')?;
    let is_scheme = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    is_scheme.then_some(scheme)
}

/// A SQLite URL, checked by sqlx's own parser, with `mode=rwc` added unless it sets a mode.
///
/// Written back as `sqlite:///absolute/path` or `sqlite:relative/path`: through sqlx's Any
/// driver the URL is parsed as a URL first, and in `sqlite://Data/x.db` the first segment is a
/// host, which URL parsing lowercases (`data/x.db`, another file).
fn sqlite(text: &str) -> Result<DatabaseUrl, TrackerError> {
    let options = SqliteConnectOptions::from_str(text).map_err(|e| refused(text, &e))?;
    let (_, query) = text.split_once('?').unwrap_or((text, ""));
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    // An explicit mode (`ro`, `rw`, `memory`) and an in-memory database stay as written.
    let sets_mode = params.iter().any(|pair| pair.starts_with("mode="));
    let file = options.get_filename().to_string_lossy();
    if sets_mode || file.starts_with("file:sqlx-in-memory") {
        return Ok(DatabaseUrl(text.to_owned()));
    }
    if file.is_empty() {
        return Err(config(format!(
            "{text} names no file: write sqlite:///absolute/path/tracker.db, \
             sqlite:relative/path/tracker.db or just the path"
        )));
    }
    params.push("mode=rwc");
    let prefix = if file.starts_with('/') {
        "sqlite://"
    } else {
        "sqlite:"
    };
    Ok(DatabaseUrl(format!(
        "{prefix}{}?{}",
        encode_path(&file),
        params.join("&")
    )))
}

/// A path as the path part of a SQLite URL: the characters a URL would read as something else
/// are percent-encoded (sqlx decodes them).
fn encode_path(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' => encoded.push_str("%25"),
            '?' => encoded.push_str("%3F"),
            '#' => encoded.push_str("%23"),
            _ => encoded.push(c),
        }
    }
    encoded
}

fn config(why: String) -> TrackerError {
    TrackerError::Config {
        key: "database_url",
        why,
    }
}

fn refused(text: &str, error: &sqlx::Error) -> TrackerError {
    config(format!(
        "{} is not usable: {error}",
        DatabaseUrl(text.to_owned())
    ))
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file the tracker's driver (sqlx Any) opens for `url`, and whether it creates it.
    fn opened(url: &DatabaseUrl) -> (String, bool) {
        let any = sqlx::any::AnyConnectOptions::from_str(url.expose()).expect("a URL");
        let options = SqliteConnectOptions::try_from(&any).expect("sqlx parses it");
        let created = url.expose().contains("mode=rwc");
        (options.get_filename().display().to_string(), created)
    }

    #[test]
    fn every_sqlite_form_names_its_file_and_creates_it() {
        for (text, file) in [
            (
                "sqlite:///var/lib/onedoor/tracker.db",
                "/var/lib/onedoor/tracker.db",
            ),
            ("sqlite://tracker.db", "tracker.db"),
            ("sqlite://data/tracker.db", "data/tracker.db"),
            ("sqlite://Data/Tracker.db", "Data/Tracker.db"),
            ("sqlite:///var/x.db?cache=private", "/var/x.db"),
            ("sqlite:tracker.db", "tracker.db"),
            ("/var/lib/onedoor/tracker.db", "/var/lib/onedoor/tracker.db"),
            ("data/tracker.db", "data/tracker.db"),
            ("./odd name?#%.db", "./odd name?#%.db"),
            ("sqlite:///var/lib/x.db?mode=rwc", "/var/lib/x.db"),
        ] {
            let url = DatabaseUrl::parse(text).expect(text);
            assert_eq!(url.backend().ok(), Some(Backend::Sqlite), "{text}");
            assert_eq!(opened(&url), (file.to_owned(), true), "{text}");
        }
        for path in ["/srv/a b/#1.db", "Rel/x.db"] {
            let file = DatabaseUrl::sqlite_file(Path::new(path));
            assert_eq!(opened(&file), (path.to_owned(), true));
        }
    }

    #[test]
    fn an_explicit_mode_and_memory_stay_as_written() {
        for text in [
            "sqlite:///var/lib/x.db?mode=ro",
            "sqlite://x.db?mode=rw",
            "sqlite::memory:",
        ] {
            let url = DatabaseUrl::parse(text).expect(text);
            assert_eq!(url.expose(), text);
        }
    }

    #[test]
    fn a_malformed_url_names_the_problem() {
        for (text, named) in [
            ("sqlite://", "names no file"),
            (
                "sqlite:///x.db?mode=rwx",
                "unknown value \"rwx\" for `mode`",
            ),
            (
                "sqlite:///x.db?journal=wal",
                "unknown query parameter `journal`",
            ),
            ("postgres://onedoor@db:port/tracker", "port"),
            ("mysql://onedoor@db/tracker", "of kind \"mysql\""),
            ("  ", "is empty"),
        ] {
            let error = DatabaseUrl::parse(text).expect_err(text).to_string();
            assert!(error.contains(named), "{text}: {error}");
            assert!(
                error.starts_with("configuration database_url"),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn a_password_never_shows() {
        let url = DatabaseUrl::parse("postgres://onedoor:s3cret@db/tracker").expect("valid");
        assert!(!url.to_string().contains("s3cret"));
        assert!(!format!("{url:?}").contains("s3cret"));
    }
}
