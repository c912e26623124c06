//! Development signing keys: `onedoor up` makes one Ed25519 key per agency under the data dir
//! (private seeds owner-only, public keys in a key file other commands load with `--keys`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use onedoor_bus::Signer;
use onedoor_case::{AgencyKey, Registry};

use super::common;

pub const KEYS_DIR: &str = "keys";
pub const PUBLIC_KEYS_FILE: &str = "public-keys.toml";

pub fn public_keys_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEYS_DIR).join(PUBLIC_KEYS_FILE)
}

/// Makes a key for every agency, adds the public halves to `registry`, writes the seeds and the
/// key file, and returns each agency's signer.
pub fn make_dev_keys(
    data_dir: &Path,
    registry: &mut Registry,
) -> anyhow::Result<Vec<(String, Signer)>> {
    let dir = data_dir.join(KEYS_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let today = time::OffsetDateTime::now_utc().date();
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut public =
        String::from("# Development public keys made by `onedoor up`; load with --keys.\n");
    let mut signers = Vec::new();
    let codes: Vec<_> = registry.agencies.keys().cloned().collect();
    for code in codes {
        let signer = Signer::generate(format!("{code}-dev-{stamp}"));
        common::write_secret(&dir.join(format!("{code}.seed")), &signer.seed_file_text())?;
        let key = AgencyKey {
            id: signer.key_id().to_owned(),
            public_key: signer.public_key(),
            valid_from: today,
            valid_until: None,
        };
        registry.add_key(&code, key).map_err(anyhow::Error::msg)?;
        let _ = write!(
            public,
            "\n[[key]]\nagency = \"{code}\"\nid = \"{}\"\npublic_key = \"{}\"\nvalid_from = {today}\n",
            signer.key_id(),
            signer.public_key_base64()
        );
        signers.push((code.to_string(), signer));
    }
    let path = public_keys_path(data_dir);
    std::fs::write(&path, public).with_context(|| format!("writing {}", path.display()))?;
    Ok(signers)
}
