//! Development signing keys: `onedoor up` makes one Ed25519 key per agency under the data dir
//! (private seeds owner-only, public keys in a key file other commands load with `--keys`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use onedoor_bus::Signer;
use onedoor_case::{AgencyKey, Registry};

use crate::commands::common::{self, Existing, LooseDir};

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
    common::private_dir(&dir, LooseDir::Tighten)?;
    let today = time::OffsetDateTime::now_utc().date();
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut public =
        String::from("# Development public keys made by `onedoor up`; load with --keys.\n");
    let mut signers = Vec::new();
    let codes: Vec<_> = registry.agencies.keys().cloned().collect();
    for code in codes {
        let signer = Signer::generate(format!("{code}-dev-{stamp}"));
        common::write_secret(
            &dir.join(format!("{code}.seed")),
            &signer.seed_file_text(),
            Existing::Replace,
        )?;
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

/// A development bearer token per agency; the registry learns only their SHA-256, as a
/// production registry would.
pub fn make_dev_tokens(
    registry: &mut Registry,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    use sha2::Digest as _;
    let mut tokens = std::collections::BTreeMap::new();
    let codes: Vec<_> = registry.agencies.keys().cloned().collect();
    for code in codes {
        let token = common::dev_token();
        let sha256: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let hash = onedoor_case::TokenHash {
            label: "onedoor-up-dev".to_owned(),
            sha256,
            revoked: false,
        };
        registry
            .add_token(&code, hash)
            .map_err(anyhow::Error::msg)?;
        tokens.insert(code.to_string(), token);
    }
    Ok(tokens)
}

pub const TLS_DIR: &str = "tls";

/// Paths of the development PKI written under `DATA/tls/`.
pub struct DevTlsFiles {
    pub ca_cert: PathBuf,
    pub client_cert: std::collections::BTreeMap<String, (PathBuf, PathBuf)>,
}

/// Makes a development CA, the adapters' server certificate and one client certificate per
/// agency, and writes them (private keys owner-only) under `DATA/tls/`.
pub fn make_dev_pki(
    data_dir: &Path,
    registry: &Registry,
) -> anyhow::Result<(onedoor_grpc::devpki::DevPki, DevTlsFiles)> {
    let codes: Vec<String> = registry.agencies.keys().map(ToString::to_string).collect();
    let pki = onedoor_grpc::devpki::DevPki::generate(codes.iter().map(String::as_str))?;
    let dir = data_dir.join(TLS_DIR);
    common::private_dir(&dir.join("clients"), LooseDir::Tighten)?;
    let ca_cert = dir.join("ca.pem");
    std::fs::write(&ca_cert, &pki.ca_cert_pem)
        .with_context(|| format!("writing {}", ca_cert.display()))?;
    let mut client_cert = std::collections::BTreeMap::new();
    for (code, certified) in &pki.clients {
        let cert = dir.join("clients").join(format!("{code}.pem"));
        let key = dir.join("clients").join(format!("{code}-key.pem"));
        std::fs::write(&cert, &certified.cert_pem)
            .with_context(|| format!("writing {}", cert.display()))?;
        common::write_secret(&key, &certified.key_pem, Existing::Replace)?;
        client_cert.insert(code.clone(), (cert, key));
    }
    Ok((
        pki,
        DevTlsFiles {
            ca_cert,
            client_cert,
        },
    ))
}
