//! `keys new` and `keys rotate`: the files they write and the checks before writing any.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use onedoor_bus::Signer;
use onedoor_case::AgencyCode;
use onedoor_natsauth::{PublicKey, Seed};

use super::report::{self, Made, NewToken};
use super::{AgencyDir, NewArgs, RotateArgs, What};
use crate::commands::common::{self, Existing, LooseDir};

pub(super) const SIGNING_DIR: &str = "signing";
pub(super) const NATS_DIR: &str = "nats";

pub(super) fn new(args: &NewArgs) -> anyhow::Result<ExitCode> {
    let (code, registry_name) = checked(&args.dir)?;
    let existing = existing_keys(&args.dir.out, &code)?;
    if let Some(first) = existing.first()
        && !args.force
    {
        anyhow::bail!(
            "{} already holds keys of {code} ({}); use `onedoor keys rotate` to replace one, \
             or --force for a whole new set beside them",
            args.dir.out.display(),
            first.display()
        );
    }
    let mut made = Made::new(code, &absolute(&args.dir.out)?, registry_name);
    made.signing = Some(make_signing(&made)?);
    made.nats = Some(make_nats(&made)?);
    made.token = Some(make_token(&made, args.label.as_deref()));
    report::print_new(&made);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn rotate(args: &RotateArgs) -> anyhow::Result<ExitCode> {
    // Before `checked`, which would create it.
    if !args.dir.out.is_dir() {
        anyhow::bail!(
            "{} does not exist; make the agency's keys first with `onedoor keys new`",
            args.dir.out.display()
        );
    }
    let (code, registry_name) = checked(&args.dir)?;
    let older = older_stems(&args.dir.out, &code, args.what)?;
    let mut made = Made::new(code, &absolute(&args.dir.out)?, registry_name);
    match args.what {
        What::Signing => made.signing = Some(make_signing(&made)?),
        What::Nats => made.nats = Some(make_nats(&made)?),
        What::Token => made.token = Some(make_token(&made, args.label.as_deref())),
    }
    report::print_rotation(&made, args.what, &older);
    Ok(ExitCode::SUCCESS)
}

/// The agency, known to the registry, and its key directory, private. Checked before anything
/// is made, so a typo in the code leaves no stray keys behind.
fn checked(dir: &AgencyDir) -> anyhow::Result<(AgencyCode, String)> {
    let (registry, name) = common::load_registry(dir.registry.as_deref())?;
    let code =
        AgencyCode::parse(&dir.agency).with_context(|| format!("agency {:?}", dir.agency))?;
    if registry.agency(&code).is_none() {
        anyhow::bail!(
            "agency {code} is not in the registry ({name}); add its [[agency]] entry first, \
             or pass --registry with the registry that lists it"
        );
    }
    common::private_dir(&dir.out, LooseDir::Refuse)?;
    Ok((code, name))
}

/// The adapter settings printed must work from any working directory.
fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))
}

/// Key files of `code` already in `dir`, signing and NATS.
fn existing_keys(dir: &Path, code: &AgencyCode) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for (sub, extension) in [(SIGNING_DIR, "seed"), (NATS_DIR, "nk")] {
        found.extend(
            key_stems(&dir.join(sub), code, extension)?
                .into_iter()
                .map(|stem| dir.join(sub).join(format!("{stem}.{extension}"))),
        );
    }
    Ok(found)
}

/// The ids of the keys a rotation of `what` replaces (none for tokens: they are not kept).
fn older_stems(dir: &Path, code: &AgencyCode, what: What) -> anyhow::Result<Vec<String>> {
    match what {
        What::Signing => key_stems(&dir.join(SIGNING_DIR), code, "seed"),
        What::Nats => key_stems(&dir.join(NATS_DIR), code, "nk"),
        What::Token => Ok(Vec::new()),
    }
}

/// File stems `CODE-…` with `extension` in `dir`, oldest first (stems start with the date).
fn key_stems(dir: &Path, code: &AgencyCode, extension: &str) -> anyhow::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
    };
    let prefix = format!("{code}-");
    let mut stems = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().and_then(|e| e.to_str()) != Some(extension) {
            continue;
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            && stem.starts_with(&prefix)
        {
            stems.push(stem.to_owned());
        }
    }
    stems.sort();
    Ok(stems)
}

fn make_signing(made: &Made) -> anyhow::Result<(PathBuf, Signer)> {
    let signer = Signer::generate(made.key_id.clone());
    let path = made
        .dir
        .join(SIGNING_DIR)
        .join(format!("{}.seed", made.key_id));
    common::write_secret(&path, &signer.seed_file_text(), Existing::Refuse)?;
    Ok((path, signer))
}

fn make_nats(made: &Made) -> anyhow::Result<(PathBuf, PublicKey)> {
    let seed = Seed::generate()?;
    let path = made.dir.join(NATS_DIR).join(format!("{}.nk", made.key_id));
    common::write_secret(
        &path,
        &format!("{}\n", seed.expose_secret()),
        Existing::Refuse,
    )?;
    Ok((path, seed.public_key().clone()))
}

fn make_token(made: &Made, label: Option<&str>) -> NewToken {
    use sha2::Digest as _;
    let secret = common::dev_token();
    let sha256 = sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    NewToken {
        secret,
        label: label.unwrap_or(&made.key_id).to_owned(),
        sha256,
    }
}
