//! Connecting CLI commands to NATS, as the identity the bus hands out in `endpoints.json`, and
//! `onedoor nats-config`, which writes a secured nats-server configuration from a registry.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use onedoor_natsauth::{CredentialSet, Identity};

use super::common;
use crate::data_dir::{Endpoints, NatsIdentity};

/// NATS URL and identity from flags, else from `endpoints.json` (the auditor identity).
pub async fn connect(
    data_dir: &Path,
    nats_url: Option<&str>,
    seed_file: Option<&Path>,
) -> anyhow::Result<async_nats::Client> {
    let endpoints = Endpoints::read(data_dir)?;
    let url = match (nats_url, &endpoints) {
        (Some(url), _) => url.to_owned(),
        (None, Some(endpoints)) => endpoints.nats.url.clone(),
        (None, None) => anyhow::bail!(
            "no running bus found in {} (pass --nats-url, or --data-dir where `onedoor up` runs)",
            data_dir.display()
        ),
    };
    let auditor = endpoints.as_ref().and_then(|e| e.nats.auditor.clone());
    let options = match (seed_file, auditor) {
        (Some(seed), _) => onedoor_natsauth::connect_options_from_file(&Identity::Auditor, seed)?,
        (None, Some(NatsIdentity { seed_file, .. })) => {
            onedoor_natsauth::connect_options_from_file(&Identity::Auditor, Path::new(&seed_file))?
        }
        (None, None) => async_nats::ConnectOptions::new(),
    };
    options
        .connect(&url)
        .await
        .with_context(|| format!("connecting to NATS at {url}"))
}

#[derive(Debug, clap::Args)]
pub struct NatsConfigArgs {
    /// Where to write `nats-auth.conf` (include it from the server's configuration) and the
    /// credentials directory (nkey seeds, owner-only, plus `credentials.json`).
    #[arg(long, default_value = "nats-auth")]
    pub out: PathBuf,
    /// Registry file whose agencies get NATS users; by default the built-in 2025 registry.
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
}

/// Writes the accounts, one nkey user per agency with its permissions, and the operator,
/// tracker and auditor identities. Existing seeds are kept; new agencies get new ones.
pub fn nats_config(args: NatsConfigArgs) -> anyhow::Result<ExitCode> {
    let (registry, name) = common::load_registry(args.registry.as_deref())?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let credentials = CredentialSet::load_or_generate(&args.out.join("credentials"), &registry)?;
    let config = onedoor_natsauth::render_config(&registry, &credentials)?;
    let path = args.out.join("nats-auth.conf");
    std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
    println!(
        "wrote {} ({} identities from {name}); seeds in {}",
        path.display(),
        credentials.identities().count(),
        credentials.dir().display()
    );
    Ok(ExitCode::SUCCESS)
}
