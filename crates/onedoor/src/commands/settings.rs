//! Settings of the long-running commands (`up`, `adapter`, `tracker`), layered: a TOML file
//! (`--config`) under the `ONEDOOR_*` environment under the command-line flags.
//!
//! The file's keys are the commands' long flags with `_` for `-` (`nats_url`, `tls_cert`), so
//! one list of settings serves all three layers and `--help` documents the file too. clap reads
//! the environment and the flags (flag over variable); what it leaves unset comes from the
//! file; defaults apply last, in each command. Layered flags therefore carry no clap default,
//! or a default would always win over the file.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `--config` and `--print-config`, the same on every long-running command.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct FileFlags {
    /// A TOML file with any of these settings (see docs/configuration.md and the examples in
    /// deploy/config/).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the settings the command would run with (TOML, secrets hidden), then exit.
    #[arg(long)]
    pub print_config: bool,
}

/// What a long-running command does with its settings.
pub enum Resolved<T> {
    /// Run with these.
    Run(T),
    /// `--print-config` printed them: exit.
    Printed,
}

/// Layers `args` under `flags.config`, checks them with `validate` once every layer is in, and
/// prints them (hiding `secrets`, by key) when asked.
pub fn resolve<T>(
    flags: &FileFlags,
    args: T,
    validate: impl FnOnce(&T) -> anyhow::Result<()>,
    secrets: &[&str],
) -> anyhow::Result<Resolved<T>>
where
    T: clap::Args + Serialize + DeserializeOwned,
{
    let args = layer(flags.config.as_deref(), args)?;
    validate(&args)?;
    if flags.print_config {
        print(&args, secrets)?;
        return Ok(Resolved::Printed);
    }
    Ok(Resolved::Run(args))
}

/// `args` with every setting it leaves unset taken from the TOML file at `file`, if any.
/// A key the command does not have, or a value of the wrong type, is refused with the file's
/// name and the key.
fn layer<T>(file: Option<&Path>, args: T) -> anyhow::Result<T>
where
    T: clap::Args + Serialize + DeserializeOwned,
{
    let Some(path) = file else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let from_file: toml::Table =
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
    check_keys::<T>(&from_file, path)?;
    // The file alone must make sense first, so a wrong type is reported against it.
    toml::from_str::<T>(&text).with_context(|| format!("config file {}", path.display()))?;
    let mut merged = from_file;
    let given = toml::Table::try_from(&args).context("reading the command-line settings")?;
    merged.extend(given);
    merged
        .try_into()
        .with_context(|| format!("settings from {} and the command line", path.display()))
}

fn check_keys<T: clap::Args>(table: &toml::Table, path: &Path) -> anyhow::Result<()> {
    let known = known_keys::<T>();
    let unknown: Vec<&str> = table
        .keys()
        .map(String::as_str)
        .filter(|key| !known.contains(*key))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "config file {}: unknown key{} {} (this command's keys: {})",
        path.display(),
        if unknown.len() == 1 { "" } else { "s" },
        unknown
            .iter()
            .map(|key| format!("`{key}`"))
            .collect::<Vec<_>>()
            .join(", "),
        known.into_iter().collect::<Vec<_>>().join(", ")
    )
}

/// Every flag's id (its field name), which is also its key in the file; `config` itself is
/// not a setting.
fn known_keys<T: clap::Args>() -> BTreeSet<String> {
    T::augment_args(clap::Command::new("settings"))
        .get_arguments()
        .map(|arg| arg.get_id().as_str().to_owned())
        .filter(|id| !matches!(id.as_str(), "config" | "print_config" | "help"))
        .collect()
}

/// Prints the settings a command would run with, as TOML, the values of `secrets` (keys)
/// replaced by a placeholder.
fn print<T: Serialize>(settings: &T, secrets: &[&str]) -> anyhow::Result<()> {
    let mut table = toml::Table::try_from(settings).context("reading the settings")?;
    for key in secrets {
        if let Some(value) = table.get_mut(*key) {
            *value = toml::Value::String(REDACTED.to_owned());
        }
    }
    let text = toml::to_string(&table).context("writing the settings as TOML")?;
    println!("{}", text.trim_end());
    Ok(())
}

/// The TLS settings go together: a certificate with its key, and a client CA only with TLS.
pub fn check_tls(tls_cert: bool, tls_key: bool, client_ca: bool) -> anyhow::Result<()> {
    if tls_cert != tls_key {
        anyhow::bail!("tls_cert and tls_key go together: give both or neither");
    }
    if client_ca && !tls_cert {
        anyhow::bail!("client_ca needs tls_cert and tls_key: client certificates need TLS");
    }
    Ok(())
}

/// For `skip_serializing_if`: an unset switch must not override the file.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes a reference
pub fn is_false(value: &bool) -> bool {
    !value
}

/// A secret setting (a bearer token, a database URL with its password): its `Debug` hides it,
/// and [`print`] is told its key. It serializes as itself only so layering keeps it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Secret(text.to_owned()))
    }
}

const REDACTED: &str = "(secret)";
