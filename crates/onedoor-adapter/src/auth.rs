//! Who may call an agency's adapter: that agency's own systems, proven by a TLS client
//! certificate the adapter knows, or by a bearer token whose SHA-256 the registry (or the
//! adapter's configuration) lists. The adapter never keeps a token in plain text.

use std::fmt;
use std::sync::Arc;

use onedoor_case::{AgencyCode, Registry};
use sha2::{Digest as _, Sha256};
use tonic::{Request, Status};

use crate::devpki::hex;
use crate::error::AdapterError;

/// A secret that never prints.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(secret: impl Into<String>) -> Result<Self, AdapterError> {
        let secret = secret.into();
        // Short secrets are guessable; dev tokens from `up` are 32 random bytes in hex.
        if secret.len() < 16 {
            return Err(AdapterError::Config(
                "agency token must be at least 16 characters".into(),
            ));
        }
        Ok(Token(secret))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(****)")
    }
}

/// What the adapter accepts for its agency, in hashed form only.
#[derive(Clone)]
pub struct Credentials {
    agency: AgencyCode,
    /// (hash, label): tokens that authenticate.
    tokens: Arc<Vec<([u8; 32], String)>>,
    /// (hash, label): tokens listed as revoked, refused with a message that says so.
    revoked: Arc<Vec<([u8; 32], String)>>,
    /// SHA-256 of the agency's client certificates (DER).
    client_certs: Arc<Vec<[u8; 32]>>,
}

impl Credentials {
    /// The registry's token hashes for `agency`, plus `extra` (a configured token, hashed here
    /// and then forgotten), plus the client certificate fingerprints.
    pub fn new(
        agency: &AgencyCode,
        registry: &Registry,
        extra: Option<&Token>,
        client_certs: Vec<[u8; 32]>,
    ) -> Self {
        let mut tokens = Vec::new();
        let mut revoked = Vec::new();
        if let Some(entry) = registry.agency(agency) {
            for token in &entry.tokens {
                let item = (token.sha256, token.label.clone());
                if token.revoked {
                    revoked.push(item)
                } else {
                    tokens.push(item)
                }
            }
        }
        if let Some(token) = extra {
            tokens.push((token.sha256(), "configured".to_owned()));
        }
        Credentials {
            agency: agency.clone(),
            tokens: Arc::new(tokens),
            revoked: Arc::new(revoked),
            client_certs: Arc::new(client_certs),
        }
    }

    fn check<T>(&self, request: &Request<T>) -> Result<(), AdapterError> {
        // A client certificate, when the connection has one, decides: it was already verified
        // against the CA by TLS; here it must be one of this agency's.
        if let Some(leaf) = request
            .peer_certs()
            .and_then(|certs| certs.first().cloned())
        {
            let fingerprint: [u8; 32] = Sha256::digest(leaf.as_ref()).into();
            if self.client_certs.contains(&fingerprint) {
                return Ok(());
            }
            return Err(AdapterError::ForeignCertificate {
                agency: self.agency.to_string(),
                fingerprint: hex(&fingerprint),
            });
        }
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            // The auth scheme is case-insensitive (RFC 7235); the token itself is not.
            .and_then(|value| {
                value
                    .split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            })
            .map(|(_, token)| token.trim())
            .ok_or(AdapterError::Unauthenticated)?;
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Compare every listed hash without stopping early: the time taken says nothing about
        // which, if any, matched.
        let matches = |list: &[([u8; 32], String)]| -> Option<String> {
            let mut found = None;
            for (listed, label) in list {
                let same = listed
                    .iter()
                    .zip(hash.iter())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0;
                if same {
                    found = Some(label.clone());
                }
            }
            found
        };
        if matches(&self.tokens).is_some() {
            return Ok(());
        }
        if let Some(label) = matches(&self.revoked) {
            return Err(AdapterError::RevokedToken { label });
        }
        Err(AdapterError::Unauthenticated)
    }
}

/// A tonic interceptor enforcing [`Credentials`] on every call.
pub fn interceptor(
    credentials: Credentials,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |request: Request<()>| match credentials.check(&request) {
        Ok(()) => Ok(request),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_do_not_print() {
        let token = Token::new("0123456789abcdef0123").expect("long enough");
        assert_eq!(format!("{token:?}"), "Token(****)");
    }

    #[test]
    fn short_tokens_are_refused() {
        assert!(Token::new("short").is_err());
    }
}
