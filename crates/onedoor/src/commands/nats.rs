//! Connecting CLI commands to NATS, as the identity the bus hands out in `endpoints.json`, and
//! `onedoor nats-config`, which writes a secured nats-server configuration from a registry.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use onedoor_natsauth::{ConnectSettings, CredentialSet, Identity, NatsCredentials, NatsTls};
use serde::{Deserialize, Deserializer, Serialize};

use super::common;
use crate::data_dir::Endpoints;

/// How a command reaches NATS: the same flags (and `--config` keys) on every command that
/// talks to the bus.
#[derive(Debug, Default, Clone, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsArgs {
    /// NATS server URL(s), nats:// or tls://: repeat, or separate with commas, to list every
    /// node of a cluster (any one that answers will do).
    #[arg(
        long,
        env = "ONEDOOR_NATS_URL",
        value_delimiter = ',',
        value_name = "URL"
    )]
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub nats_url: Vec<String>,
    /// The identity's NATS nkey seed file (mode 0600), as `onedoor nats-config` writes it.
    #[arg(
        long,
        visible_alias = "nats-nkey",
        env = "ONEDOOR_NATS_SEED",
        value_name = "FILE"
    )]
    pub nats_seed: Option<PathBuf>,
    /// A NATS `.creds` file (user JWT and seed), for servers on decentralized JWT
    /// authentication; instead of --nats-seed.
    #[arg(long, env = "ONEDOOR_NATS_CREDS", value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// CA certificate(s) (PEM) of the NATS servers; makes TLS required (so does a tls:// URL).
    #[arg(long, env = "ONEDOOR_NATS_CA", value_name = "FILE")]
    pub nats_ca: Option<PathBuf>,
    /// Client certificate (PEM) for NATS servers that verify clients; needs --nats-tls-key.
    #[arg(long, env = "ONEDOOR_NATS_TLS_CERT", value_name = "FILE")]
    pub nats_tls_cert: Option<PathBuf>,
    /// The NATS client certificate's private key (PEM).
    #[arg(long, env = "ONEDOOR_NATS_TLS_KEY", value_name = "FILE")]
    pub nats_tls_key: Option<PathBuf>,
    /// Seconds to keep trying at start while no NATS server answers (0: for ever); default
    /// 60. A refused identity or a TLS failure ends the wait at once.
    #[arg(long, env = "ONEDOOR_NATS_CONNECT_TIMEOUT", value_name = "SECONDS")]
    pub nats_connect_timeout: Option<u64>,
}

/// Where a command without --nats-url finds the bus: a data dir's `endpoints.json`, and the
/// seed file `onedoor up` wrote there for the command's identity.
pub struct Fallback<'a> {
    pub data_dir: &'a Path,
    pub seed: Option<PathBuf>,
}

impl NatsArgs {
    /// Checks what no single layer can: one kind of credentials, TLS pairs, and (when
    /// `required`) at least one URL.
    pub fn validate(&self, required: bool) -> anyhow::Result<()> {
        if required && self.nats_url.is_empty() {
            anyhow::bail!(
                "nats-url is required: --nats-url, ONEDOOR_NATS_URL, or `nats_url` in --config"
            );
        }
        if self.nats_seed.is_some() && self.nats_creds.is_some() {
            anyhow::bail!("nats_seed and nats_creds are two ways to say who this is: give one");
        }
        if self.nats_tls_cert.is_some() != self.nats_tls_key.is_some() {
            anyhow::bail!("nats_tls_cert and nats_tls_key go together: give both or neither");
        }
        if !self.nats_url.is_empty() {
            self.with_urls(self.nats_url.clone()).validate()?;
        }
        Ok(())
    }

    /// The settings the flags give; `--nats-url` is required.
    pub fn settings(&self) -> anyhow::Result<ConnectSettings> {
        self.validate(true)?;
        Ok(self.with_urls(self.nats_url.clone()))
    }

    /// The settings the flags give, the bus in `fallback.data_dir` filling in the URL, and
    /// `fallback.seed` the identity, when no flag names them.
    pub fn settings_or(&self, fallback: Fallback<'_>) -> anyhow::Result<ConnectSettings> {
        self.validate(false)?;
        let urls = if self.nats_url.is_empty() {
            match Endpoints::read(fallback.data_dir)? {
                Some(endpoints) => vec![endpoints.nats.url],
                None => anyhow::bail!(
                    "no running bus found in {} (pass --nats-url, or --data-dir where `onedoor up` runs)",
                    fallback.data_dir.display()
                ),
            }
        } else {
            self.nats_url.clone()
        };
        let mut settings = self.with_urls(urls);
        if settings.credentials == NatsCredentials::None
            && let Some(seed) = fallback.seed
        {
            settings.credentials = NatsCredentials::Seed(seed);
        }
        Ok(settings)
    }

    fn with_urls(&self, urls: Vec<String>) -> ConnectSettings {
        let credentials = match (&self.nats_seed, &self.nats_creds) {
            (Some(seed), _) => NatsCredentials::Seed(seed.clone()),
            (None, Some(creds)) => NatsCredentials::CredsFile(creds.clone()),
            (None, None) => NatsCredentials::None,
        };
        ConnectSettings {
            urls,
            credentials,
            tls: NatsTls {
                ca: self.nats_ca.clone(),
                cert: self.nats_tls_cert.clone(),
                key: self.nats_tls_key.clone(),
            },
            startup_timeout: match self.nats_connect_timeout {
                Some(0) => None,
                Some(seconds) => Some(Duration::from_secs(seconds)),
                None => Some(onedoor_natsauth::DEFAULT_STARTUP_TIMEOUT),
            },
        }
    }
}

/// `nats_url` in a config file: one URL, a comma-separated list, or an array.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let urls = match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(text) => vec![text],
        OneOrMany::Many(urls) => urls,
    };
    Ok(urls
        .iter()
        .flat_map(|text| text.split(','))
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Connects a command as the auditor: URL and seed from the flags, else from `endpoints.json`
/// in `data_dir`.
pub async fn connect_auditor(
    data_dir: &Path,
    nats: &NatsArgs,
) -> anyhow::Result<async_nats::Client> {
    let seed = Endpoints::read(data_dir)?
        .and_then(|endpoints| endpoints.nats.auditor)
        .map(|auditor| PathBuf::from(auditor.seed_file));
    let settings = nats.settings_or(Fallback { data_dir, seed })?;
    Ok(settings
        .connect(&Identity::Auditor, |options| options.name("onedoor-audit"))
        .await?)
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
