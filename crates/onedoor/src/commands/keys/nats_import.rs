//! `keys nats-import`: the operator's half of onboarding an agency on NATS. The agency keeps
//! its seed; the operator's credentials list only the public key, and the server configuration
//! is rewritten from them.

use std::process::ExitCode;

use anyhow::Context as _;
use onedoor_case::AgencyCode;
use onedoor_natsauth::{CredentialSet, Identity, PublicKey};

use crate::commands::common;
use crate::commands::nats::{NatsConfigArgs, nats_config};

#[derive(Debug, clap::Args)]
pub struct NatsImportArgs {
    /// The agency code, e.g. MOF; it must be in the registry.
    #[arg(long)]
    pub agency: String,
    /// The agency's NATS public key (U…), as `onedoor keys new` printed it.
    #[arg(long)]
    pub public_key: String,
    /// Where `onedoor nats-config` wrote, and the registry it read.
    #[command(flatten)]
    pub config: NatsConfigArgs,
}

pub fn run(args: NatsImportArgs) -> anyhow::Result<ExitCode> {
    let (registry, name) = common::load_registry(args.config.registry.as_deref())?;
    let code =
        AgencyCode::parse(&args.agency).with_context(|| format!("agency {:?}", args.agency))?;
    if registry.agency(&code).is_none() {
        anyhow::bail!("agency {code} is not in the registry ({name})");
    }
    let public = PublicKey::parse(args.public_key.trim())?;
    let dir = args.config.out.join("credentials");
    let mut credentials = CredentialSet::load_or_generate(&dir, &registry)?;
    credentials.import_public_key(Identity::Agency(code.clone()), public)?;
    let outcome = nats_config(args.config)?;
    println!(
        "{code} is now NATS user {}; reload every nats-server (`nats-server --signal reload`) \
         for it to take effect",
        args.public_key.trim()
    );
    Ok(outcome)
}
