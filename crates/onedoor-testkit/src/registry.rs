//! The shipped registry, as tests use it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use onedoor_bus::Signer;
use onedoor_case::{AgencyCode, AgencyKey, Registry};

/// The front office most tests open cases at.
pub const FRONT: &str = "ODSC-VTE-SAYSETTHA";
/// A second front office.
pub const OTHER_FRONT: &str = "ODSC-CPS-PAKSE";

pub fn code(text: &str) -> AgencyCode {
    AgencyCode::parse(text).expect("test agency code is valid")
}

/// `deploy/registry/lao-2025.toml`, as shipped.
pub fn shipped_registry() -> Registry {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2025.toml");
    Registry::load(&path).expect("shipped registry is valid")
}

/// The shipped registry, with a fresh signing key for every agency (as `onedoor up` does).
pub fn registry_with_keys() -> (Arc<Registry>, HashMap<String, Signer>) {
    let mut registry = shipped_registry();
    let mut signers = HashMap::new();
    let codes: Vec<AgencyCode> = registry.agencies.keys().cloned().collect();
    for code in codes {
        let signer = Signer::generate(format!("{code}-test"));
        let key = AgencyKey {
            id: signer.key_id().to_owned(),
            public_key: signer.public_key(),
            valid_from: time::macros::date!(2020 - 01 - 01),
            valid_until: None,
        };
        registry.add_key(&code, key).expect("fresh key id");
        signers.insert(code.to_string(), signer);
    }
    (Arc::new(registry), signers)
}

/// The development bearer token of `agency`'s adapter.
pub fn token_for(agency: &str) -> String {
    format!("dev-token-{agency}-0123456789abcdef")
}

/// A fresh idempotency key.
pub fn key() -> String {
    format!("key-{}", ulid::Ulid::generate())
}

/// The text of a shipped registry file (`lao-2021.toml`, `lao-2025.toml`), as the operator
/// publishes it.
pub fn shipped_text(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/registry")
        .join(file);
    std::fs::read_to_string(&path).expect("shipped registry file")
}

/// A key file (`Registry::add_keys_from_toml`) listing each agency's signer and, when given,
/// the operator's key, all valid from 2020.
pub fn key_file(agencies: &[(&str, &Signer)], operator: Option<&Signer>) -> String {
    let mut text = String::new();
    for (agency, signer) in agencies {
        text.push_str(&format!(
            "[[key]]\nagency = \"{agency}\"\nid = \"{}\"\npublic_key = \"{}\"\nvalid_from = 2020-01-01\n\n",
            signer.key_id(),
            signer.public_key_base64()
        ));
    }
    if let Some(operator) = operator {
        text.push_str(&format!(
            "[[operator_key]]\nid = \"{}\"\npublic_key = \"{}\"\nvalid_from = 2020-01-01\n",
            operator.key_id(),
            operator.public_key_base64()
        ));
    }
    text
}

/// A shipped registry file with its key file, loaded as a process on it runs.
pub fn with_key_file(registry_text: &str, keys: &str) -> Registry {
    let mut registry = Registry::from_toml(registry_text, "test registry").expect("valid registry");
    registry
        .add_keys_from_toml(keys, "test key file")
        .expect("valid key file");
    registry
}
