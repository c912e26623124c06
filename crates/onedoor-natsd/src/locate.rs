//! Finding the nats-server binary and checking its version.
//!
//! The search order is fixed and short, so that which binary runs is predictable:
//!
//! 1. `ONEDOOR_NATS_SERVER`: an explicit path; if it names nothing, that is an error.
//! 2. `$ONEDOOR_HOME/.tools/venv/bin/nats-server`: an installed CLI's own pinned copy.
//! 3. `<checkout>/.tools/venv/bin/nats-server`, where `<checkout>` is the workspace this crate
//!    was compiled in (what `scripts/setup.sh` installs; tests and `cargo run` land here).
//! 4. `./.tools/venv/bin/nats-server` in the current directory.
//! 5. every directory of `PATH`.
//!
//! Explicit settings come before implicit locations. The **first** binary found is used; if it
//! is older than [`MINIMUM_VERSION`] that is an error, never a reason to try the next one
//! (Debian ships 2.9 in `/usr/sbin`, which JetStream clients of today cannot talk to; with the
//! pinned install present PATH is never reached, and without it the error says what to do).
//!
//! The candidate list is plain data ([`SearchEnv`] → [`Candidate`]s), so tests inject their own
//! instead of mutating process-global environment variables.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::NatsdError;

/// Oldest nats-server onedoor accepts: 2.11 added `Nats-Expected-Last-Subject-Sequence-Subject`,
/// which per-case optimistic concurrency relies on.
pub const MINIMUM_VERSION: Version = Version::new(2, 11, 0);

/// The version `scripts/setup.sh` installs and the tests are run against.
pub const PINNED_VERSION: Version = Version::new(2, 15, 1);

/// Environment variable naming an explicit nats-server binary.
pub const NATS_SERVER_ENV: &str = "ONEDOOR_NATS_SERVER";

/// Environment variable naming an onedoor installation directory (holding `.tools/`).
pub const ONEDOOR_HOME_ENV: &str = "ONEDOOR_HOME";

/// Where `scripts/setup.sh` puts the binary, relative to a checkout or installation.
pub const PINNED_RELATIVE_PATH: &str = ".tools/venv/bin/nats-server";

/// A nats-server version, `major.minor.patch`. Pre-release suffixes (`-RC.1`) are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Reads the output of `nats-server --version`, e.g. `nats-server: v2.15.1`.
    pub fn parse_version_output(output: &str) -> Option<Self> {
        let token = output
            .split_whitespace()
            .find_map(|word| word.strip_prefix('v'))?;
        let core = token.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(str::parse::<u32>);
        let major = parts.next()?.ok()?;
        let minor = parts.next()?.ok()?;
        let patch = parts.next()?.ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self::new(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why a candidate path is on the list; shown in errors so a person knows which setting to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `ONEDOOR_NATS_SERVER`
    EnvVar,
    /// `$ONEDOOR_HOME/.tools/…`
    OnedoorHome,
    /// the checkout this crate was compiled in
    Checkout,
    /// `./.tools/…`
    CurrentDir,
    /// a `PATH` directory
    PathVar,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::EnvVar => NATS_SERVER_ENV,
            Origin::OnedoorHome => ONEDOOR_HOME_ENV,
            Origin::Checkout => "the onedoor checkout's .tools directory",
            Origin::CurrentDir => "the current directory's .tools directory",
            Origin::PathVar => "PATH",
        })
    }
}

/// One place a nats-server might be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub path: PathBuf,
    pub origin: Origin,
}

impl Candidate {
    pub fn new(path: impl Into<PathBuf>, origin: Origin) -> Self {
        Self {
            path: path.into(),
            origin,
        }
    }
}

/// The inputs of the search. [`SearchEnv::from_process`] reads them from the environment;
/// tests build one by hand.
#[derive(Debug, Clone, Default)]
pub struct SearchEnv {
    /// value of `ONEDOOR_NATS_SERVER`
    pub nats_server: Option<PathBuf>,
    /// value of `ONEDOOR_HOME`
    pub onedoor_home: Option<PathBuf>,
    /// the workspace root this crate was built in
    pub checkout: Option<PathBuf>,
    pub current_dir: Option<PathBuf>,
    /// value of `PATH`
    pub path: Option<OsString>,
}

impl SearchEnv {
    pub fn from_process() -> Self {
        Self {
            nats_server: non_empty_var(NATS_SERVER_ENV).map(PathBuf::from),
            onedoor_home: non_empty_var(ONEDOOR_HOME_ENV).map(PathBuf::from),
            checkout: compiled_checkout(),
            current_dir: std::env::current_dir().ok(),
            path: std::env::var_os("PATH"),
        }
    }

    /// The candidates in search order (see the module documentation).
    pub fn candidates(&self) -> Vec<Candidate> {
        let mut out = Vec::new();
        if let Some(path) = &self.nats_server {
            out.push(Candidate::new(path, Origin::EnvVar));
        }
        if let Some(home) = &self.onedoor_home {
            out.push(Candidate::new(
                home.join(PINNED_RELATIVE_PATH),
                Origin::OnedoorHome,
            ));
        }
        if let Some(root) = &self.checkout {
            out.push(Candidate::new(
                root.join(PINNED_RELATIVE_PATH),
                Origin::Checkout,
            ));
        }
        if let Some(cwd) = &self.current_dir {
            out.push(Candidate::new(
                cwd.join(PINNED_RELATIVE_PATH),
                Origin::CurrentDir,
            ));
        }
        if let Some(path) = &self.path {
            for dir in std::env::split_paths(path) {
                if !dir.as_os_str().is_empty() {
                    out.push(Candidate::new(dir.join("nats-server"), Origin::PathVar));
                }
            }
        }
        out
    }
}

fn non_empty_var(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// `crates/onedoor-natsd/../..`, fixed at compile time. `None` if the layout is not the
/// workspace's (e.g. the crate was vendored elsewhere).
fn compiled_checkout() -> Option<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent()?.parent()?;
    root.join("Cargo.toml")
        .is_file()
        .then(|| root.to_path_buf())
}

/// A nats-server binary whose version has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsBinary {
    pub path: PathBuf,
    pub origin: Origin,
    pub version: Version,
}

impl NatsBinary {
    /// Runs `path --version` and reads the version; does not check the minimum.
    pub fn inspect(candidate: &Candidate) -> Result<Self, NatsdError> {
        let output = Command::new(&candidate.path)
            .arg("--version")
            .output()
            .map_err(|source| NatsdError::VersionCommand {
                path: candidate.path.clone(),
                source,
            })?;
        // nats-server prints its version on stdout; be lenient in case a wrapper uses stderr.
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let version =
            Version::parse_version_output(&text).ok_or_else(|| NatsdError::VersionUnparsable {
                path: candidate.path.clone(),
                output: text.trim().to_owned(),
            })?;
        Ok(Self {
            path: candidate.path.clone(),
            origin: candidate.origin,
            version,
        })
    }
}

/// Finds the nats-server to use from the process environment. See the module docs for the order.
pub fn locate() -> Result<NatsBinary, NatsdError> {
    locate_from(SearchEnv::from_process().candidates())
}

/// Finds the nats-server to use among `candidates`, in order: the first existing file is
/// inspected, and refused if older than [`MINIMUM_VERSION`].
pub fn locate_from(
    candidates: impl IntoIterator<Item = Candidate>,
) -> Result<NatsBinary, NatsdError> {
    let mut searched = Vec::new();
    for candidate in candidates {
        if !candidate.path.is_file() {
            if candidate.origin == Origin::EnvVar {
                return Err(NatsdError::ConfiguredBinaryMissing {
                    path: candidate.path,
                    origin: candidate.origin,
                });
            }
            searched.push(candidate.path);
            continue;
        }
        let binary = NatsBinary::inspect(&candidate)?;
        if binary.version < MINIMUM_VERSION {
            return Err(NatsdError::TooOld {
                path: binary.path,
                origin: binary.origin,
                found: binary.version,
                minimum: MINIMUM_VERSION,
            });
        }
        tracing::debug!(path = %binary.path.display(), version = %binary.version, origin = %binary.origin, "found nats-server");
        return Ok(binary);
    }
    Err(NatsdError::NotFound { searched })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_output_of_real_servers_parses() {
        assert_eq!(
            Version::parse_version_output("nats-server: v2.15.1\n"),
            Some(Version::new(2, 15, 1))
        );
        assert_eq!(
            Version::parse_version_output("nats-server: v2.9.10"),
            Some(Version::new(2, 9, 10))
        );
        assert_eq!(
            Version::parse_version_output("nats-server: v2.12.0-RC.2"),
            Some(Version::new(2, 12, 0))
        );
        assert_eq!(Version::parse_version_output("hello"), None);
        assert_eq!(Version::parse_version_output("nats-server: v2.x"), None);
    }

    #[test]
    fn versions_compare_numerically_not_as_text() {
        assert!(Version::new(2, 9, 10) < MINIMUM_VERSION);
        assert!(Version::new(2, 11, 0) >= MINIMUM_VERSION);
        assert!(Version::new(2, 100, 0) > Version::new(2, 15, 1));
    }

    #[test]
    fn explicit_settings_come_before_pinned_installs_and_path_comes_last() {
        let env = SearchEnv {
            nats_server: Some("/opt/explicit/nats-server".into()),
            onedoor_home: Some("/home/od".into()),
            checkout: Some("/src/onedoor".into()),
            current_dir: Some("/work".into()),
            path: Some(OsString::from("/usr/local/bin::/usr/sbin")),
        };
        let got: Vec<(PathBuf, Origin)> = env
            .candidates()
            .into_iter()
            .map(|c| (c.path, c.origin))
            .collect();
        let want = vec![
            ("/opt/explicit/nats-server".into(), Origin::EnvVar),
            (
                "/home/od/.tools/venv/bin/nats-server".into(),
                Origin::OnedoorHome,
            ),
            (
                "/src/onedoor/.tools/venv/bin/nats-server".into(),
                Origin::Checkout,
            ),
            (
                "/work/.tools/venv/bin/nats-server".into(),
                Origin::CurrentDir,
            ),
            ("/usr/local/bin/nats-server".into(), Origin::PathVar),
            ("/usr/sbin/nats-server".into(), Origin::PathVar),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn the_checkout_this_crate_was_built_in_is_a_candidate() {
        let root = compiled_checkout().expect("crate is built inside the workspace");
        assert!(root.join("crates/onedoor-natsd/Cargo.toml").is_file());
    }

    #[test]
    fn a_missing_explicit_binary_is_an_error_not_a_fallthrough() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = locate_from([
            Candidate::new(dir.path().join("nope"), Origin::EnvVar),
            Candidate::new("/bin/sh", Origin::PathVar),
        ])
        .expect_err("must refuse");
        assert!(
            matches!(err, NatsdError::ConfiguredBinaryMissing { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("ONEDOOR_NATS_SERVER"), "{err}");
    }

    #[test]
    fn nothing_found_lists_where_it_looked_and_how_to_install() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("bin/nats-server");
        let err = locate_from([Candidate::new(&missing, Origin::PathVar)]).expect_err("none");
        let msg = err.to_string();
        assert!(msg.contains(&missing.display().to_string()), "{msg}");
        assert!(msg.contains("scripts/setup.sh"), "{msg}");
    }
}
