//! `onedoor keys`: an agency's credentials, made by its IT team or the national operator
//! outside `onedoor up`, and the development keys `up` makes for itself ([`dev`]).
//!
//! An agency's key directory (`--out`), owner-only:
//!
//! ```text
//! DIR/                          0700
//!   signing/MOF-2026-12-05-1a2b.seed   Ed25519 seed (base64), 0600; the file stem is the key id
//!   nats/MOF-2026-12-05-1a2b.nk        NATS user nkey seed, 0600
//! ```
//!
//! Nothing is ever deleted or overwritten there: a retired signing key's public half must stay
//! in the registry for old signatures to verify, and its seed is the only proof of which key
//! was the agency's. Bearer tokens are not stored at all: printed once, the registry keeps
//! their SHA-256.

mod agency;
mod dev;
mod nats_import;
mod report;

pub use dev::{DevTlsFiles, make_dev_keys, make_dev_pki, make_dev_tokens, public_keys_path};

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Make an agency's Ed25519 signing key, NATS nkey and gRPC bearer token; print the
    /// registry lines, the NATS public key and the token (once).
    New(NewArgs),
    /// Make a new signing key, token or NATS nkey beside the old one; print how to retire it.
    Rotate(RotateArgs),
    /// (Operator) List an agency's NATS public key, made with `keys new`, in the NATS
    /// credentials and rewrite the server configuration (as `onedoor nats-config` does).
    NatsImport(nats_import::NatsImportArgs),
}

/// What every `keys` command that makes secrets needs: whose, where, checked against which
/// registry.
#[derive(Debug, clap::Args)]
pub struct AgencyDir {
    /// The agency code, e.g. MOF; it must be in the registry.
    #[arg(long)]
    pub agency: String,
    /// The agency's key directory (created 0700; an existing one must be owner-only).
    #[arg(long)]
    pub out: PathBuf,
    /// Registry file the agency must be in; by default the built-in 2025 registry.
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    #[command(flatten)]
    pub dir: AgencyDir,
    /// Make a new set even though DIR already holds keys of this agency (nothing is
    /// overwritten: the new files get new names).
    #[arg(long)]
    pub force: bool,
    /// The token's label in the registry: which system holds it (default: the key id).
    #[arg(long)]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum What {
    /// The Ed25519 event-signing key.
    Signing,
    /// The gRPC bearer token.
    Token,
    /// The NATS user nkey.
    Nats,
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub dir: AgencyDir,
    /// Which credential to replace.
    #[arg(long, value_enum)]
    pub what: What,
    /// The new token's label in the registry (default: the new key id).
    #[arg(long)]
    pub label: Option<String>,
}

pub fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::New(args) => agency::new(&args),
        KeysCommand::Rotate(args) => agency::rotate(&args),
        KeysCommand::NatsImport(args) => nats_import::run(args),
    }
}
