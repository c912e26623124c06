//! One published registry: the exact TOML text of the registry file, the text of the key file
//! read with it (public keys and token hashes a deployment keeps beside the registry, e.g. the
//! development keys `onedoor up` makes), and the operator's Ed25519 signature over both.

use base64::Engine as _;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use onedoor_case::{Registry, RegistryDiff};
use serde::{Deserialize, Serialize};
use time::Date;

use crate::audit::Signer;

/// The value's `format`; another one is refused rather than half understood.
pub const PUBLICATION_FORMAT: &str = "onedoor-registry-v1";

/// What the signature covers starts with this. Its first byte, `o`, opens no valid protobuf
/// field (wire type 7), so these bytes can never also be a signed case event's.
const DOMAIN: &[u8] = b"onedoor-registry-v1\n";

/// The value stored under the bucket's key, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    pub format: String,
    pub registry_toml: String,
    /// A key file's text (`[[key]]`, `[[operator_key]]`, `[[token]]`), or empty.
    #[serde(default)]
    pub keys_toml: String,
    /// The operator key that signed, as the registry readers run lists it.
    #[serde(default)]
    pub key_id: String,
    /// Base64 of the 64-byte signature; empty when unsigned (always refused).
    #[serde(default)]
    pub signature: String,
}

/// Why a reader did not move to a published registry. It keeps running on the one it has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a registry publication: {0}")]
    Malformed(String),
    #[error("the publication is not signed")]
    Unsigned,
    #[error(
        "key {key_id:?} is not an operator key of the registry running here (version {running}); an agency key never publishes a registry"
    )]
    UnknownKey { key_id: String, running: String },
    #[error("operator key {key_id:?} is not valid on {date}")]
    KeyNotValid { key_id: String, date: Date },
    #[error("the signature does not match the registry text (altered or forged)")]
    BadSignature,
    #[error("the published registry is invalid: {0}")]
    Invalid(String),
    #[error("{0}")]
    NotNewer(String),
}

impl Refusal {
    /// A short fixed label, for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed",
            Refusal::Unsigned => "unsigned",
            Refusal::UnknownKey { .. } => "unknown_key",
            Refusal::KeyNotValid { .. } => "key_not_valid",
            Refusal::BadSignature => "bad_signature",
            Refusal::Invalid(_) => "invalid",
            Refusal::NotNewer(_) => "not_newer",
        }
    }
}

/// What a verified publication means for a reader.
#[derive(Debug)]
pub enum Verdict {
    /// The registry it already runs (a restart, or history read again).
    Running,
    /// A later registry, checked: move to it.
    Newer(Box<Registry>),
}

impl Publication {
    /// `registry_toml` and `keys_toml` signed with the operator's `signer`.
    pub fn signed(registry_toml: &str, keys_toml: &str, signer: &Signer) -> Self {
        let mut publication = Publication {
            format: PUBLICATION_FORMAT.to_owned(),
            registry_toml: registry_toml.to_owned(),
            keys_toml: keys_toml.to_owned(),
            key_id: signer.key_id().to_owned(),
            signature: String::new(),
        };
        let signature = signer.sign_bytes(&publication.signed_bytes());
        publication.signature = base64::engine::general_purpose::STANDARD.encode(signature);
        publication
    }

    pub fn decode(value: &[u8]) -> Result<Self, Refusal> {
        let publication: Publication =
            serde_json::from_slice(value).map_err(|e| Refusal::Malformed(e.to_string()))?;
        if publication.format != PUBLICATION_FORMAT {
            return Err(Refusal::Malformed(format!(
                "format {:?}, expected {PUBLICATION_FORMAT:?}",
                publication.format
            )));
        }
        Ok(publication)
    }

    pub fn encode(&self) -> Vec<u8> {
        // Strings only: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The registry it holds, with its key file, validated as `registry check` does.
    pub fn registry(&self) -> Result<Registry, Refusal> {
        let invalid = |e: onedoor_case::RegistryError| Refusal::Invalid(e.to_string());
        let mut registry =
            Registry::from_toml(&self.registry_toml, "the published registry").map_err(invalid)?;
        if !self.keys_toml.trim().is_empty() {
            registry
                .add_keys_from_toml(&self.keys_toml, "the published key file")
                .map_err(invalid)?;
        }
        Ok(registry)
    }

    /// Checks the publication against the registry a reader runs: signed by an operator key
    /// that `running` lists, valid `today`; a valid registry; later than `running` in version
    /// and effective date (the rule `registry diff` and `registry apply` use), or `running`
    /// itself.
    pub fn verify(&self, running: &Registry, today: Date) -> Result<Verdict, Refusal> {
        if self.signature.is_empty() {
            return Err(Refusal::Unsigned);
        }
        let key = running
            .operator_key(&self.key_id)
            .ok_or_else(|| Refusal::UnknownKey {
                key_id: self.key_id.clone(),
                running: running.version.to_string(),
            })?;
        if !key.valid_on(today) {
            return Err(Refusal::KeyNotValid {
                key_id: self.key_id.clone(),
                date: today,
            });
        }
        let signature = base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .ok_or(Refusal::BadSignature)?;
        VerifyingKey::from_bytes(&key.public_key)
            .ok()
            .and_then(|public| public.verify(&self.signed_bytes(), &signature).ok())
            .ok_or(Refusal::BadSignature)?;
        let registry = self.registry()?;
        if registry == *running {
            return Ok(Verdict::Running);
        }
        RegistryDiff::between(running, &registry).map_err(|e| Refusal::NotNewer(e.to_string()))?;
        Ok(Verdict::Newer(Box::new(registry)))
    }

    /// The bytes the signature covers: the domain, then each part length-prefixed, so no
    /// text can be moved from one part to the next.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut bytes = DOMAIN.to_vec();
        for part in [&self.registry_toml, &self.keys_toml, &self.key_id] {
            bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
            bytes.extend_from_slice(part.as_bytes());
        }
        bytes
    }
}
