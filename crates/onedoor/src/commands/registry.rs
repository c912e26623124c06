//! `onedoor registry check|diff|apply`: validate a registry file, say in words what changes
//! from one registry to the next, and plan (a dry run) that change on a running bus.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use onedoor_case::{Registry, RegistryDiff, RegistryError};

#[derive(Debug, clap::Subcommand)]
pub enum RegistryCommand {
    /// Validate a registry file: prints every problem, or a one-line summary.
    Check {
        /// The registry TOML file, e.g. deploy/registry/lao-2025.toml.
        file: PathBuf,
    },
    /// Say in words what changes from OLD to NEW: agencies added, renamed, merged (with their
    /// successors), retired, and services whose routes change.
    Diff {
        /// The registry in force now, e.g. deploy/registry/lao-2021.toml.
        old: PathBuf,
        /// The registry to move to, e.g. deploy/registry/lao-2025.toml.
        new: PathBuf,
    },
    /// Plan moving a running bus to NEW (dry run: changes nothing): NATS users added and
    /// revoked, inbox consumers to create, drain and delete, open tasks to move to successors,
    /// credentials to revoke. Exit 1, naming the tasks, when an agency that ends with no
    /// successor still holds open tasks.
    Apply(Box<super::registry_apply::ApplyArgs>),
}

pub fn run(command: RegistryCommand) -> anyhow::Result<ExitCode> {
    match command {
        RegistryCommand::Check { file } => check(&file),
        RegistryCommand::Diff { old, new } => diff(&old, &new),
        RegistryCommand::Apply(args) => super::registry_apply::run(*args),
    }
}

/// Exit status 0 with a summary when the file is valid; 1 with one line per problem when not,
/// so a script (or CI for a registry repository) can gate on it.
pub fn check(file: &Path) -> anyhow::Result<ExitCode> {
    match Registry::load(file) {
        Ok(registry) => {
            println!("ok {}: {}", file.display(), registry.summary());
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => Ok(refused(err)),
    }
}

/// Prints every problem of an invalid registry on stdout; the exit code is 1.
pub(super) fn refused(err: RegistryError) -> ExitCode {
    match err {
        RegistryError::Invalid { file, problems } => {
            for problem in &problems {
                println!("{file}: {problem}");
            }
            eprintln!("{file}: {} problem(s); nothing was loaded", problems.len());
        }
        other => println!("{other}"),
    }
    ExitCode::FAILURE
}

/// Exit status 0 with the changes, one per line; 1 when either file is invalid or NEW does
/// not follow OLD.
pub fn diff(old: &Path, new: &Path) -> anyhow::Result<ExitCode> {
    let (old, new) = match (Registry::load(old), Registry::load(new)) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(err), _) | (_, Err(err)) => return Ok(refused(err)),
    };
    match RegistryDiff::between(&old, &new) {
        Ok(diff) => {
            for line in diff.lines() {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("error: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}
