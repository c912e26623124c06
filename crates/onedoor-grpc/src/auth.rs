//! Who is calling a gRPC server of the bus: proven by a TLS client certificate the server
//! knows, or by a bearer token whose SHA-256 the registry (or the server's configuration)
//! lists. No server keeps a token in plain text.
//!
//! [`Keyring`] is the shared part: the adapter's keyring names one caller (its own agency); the
//! tracker's names every agency plus its supervisor. Both answer with the same codes: a
//! missing, unknown or revoked token is UNAUTHENTICATED; a certificate the keyring does not
//! know, or one that names someone other than the token presented with it, is
//! PERMISSION_DENIED.

use std::fmt;
use std::sync::Arc;

use onedoor_case::{AgencyCode, Registry};
use sha2::{Digest as _, Sha256};
use tonic::Request;

use crate::error::GrpcError;
use crate::tls::hex;

/// A secret that never prints.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(secret: impl Into<String>) -> Result<Self, GrpcError> {
        let secret = secret.into();
        // Short secrets are guessable; dev tokens from `up` are 32 random bytes in hex.
        if secret.len() < 16 {
            return Err(GrpcError::Config {
                key: "token",
                why: "a token must be at least 16 characters".into(),
            });
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

/// Why a call was refused; never says which token, if any, was close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing or unknown bearer token")]
    Unauthenticated,
    #[error("token {label:?} has been revoked; ask the operator for a new one")]
    Revoked { label: String },
    #[error("this TLS client certificate (sha256 {fingerprint}) is not known here")]
    UnknownCertificate { fingerprint: String },
    #[error(
        "the TLS client certificate and the bearer token name different callers: present one identity"
    )]
    Mismatch,
}

/// Credentials in hashed form only, each naming a caller `P`.
#[derive(Clone)]
pub struct Keyring<P> {
    /// (hash, label, caller): tokens that authenticate.
    tokens: Arc<Vec<([u8; 32], String, P)>>,
    /// (hash, label): tokens listed as revoked, refused with a message that says so.
    revoked: Arc<Vec<([u8; 32], String)>>,
    /// SHA-256 of client certificates (DER) and whom each names.
    certificates: Arc<Vec<([u8; 32], P)>>,
}

impl<P> Default for Keyring<P> {
    fn default() -> Self {
        Keyring {
            tokens: Arc::default(),
            revoked: Arc::default(),
            certificates: Arc::default(),
        }
    }
}

/// Compares every listed hash without stopping early: the time taken says nothing about which,
/// if any, matched.
fn find<'a, T>(list: &'a [([u8; 32], T)], hash: &[u8; 32]) -> Option<&'a T> {
    let mut found = None;
    for (listed, item) in list {
        let same = listed
            .iter()
            .zip(hash.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if same {
            found = Some(item);
        }
    }
    found
}

/// The bearer token of a request, if it carries one.
pub fn bearer<T>(request: &Request<T>) -> Option<&str> {
    request
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
}

impl<P: Clone + PartialEq> Keyring<P> {
    pub fn new() -> Self {
        Self::default()
    }

    /// A token, by its SHA-256, naming `caller`.
    pub fn add_token(&mut self, sha256: [u8; 32], label: impl Into<String>, caller: P) {
        Arc::make_mut(&mut self.tokens).push((sha256, label.into(), caller));
    }

    pub fn add_revoked(&mut self, sha256: [u8; 32], label: impl Into<String>) {
        Arc::make_mut(&mut self.revoked).push((sha256, label.into()));
    }

    /// A client certificate, by the SHA-256 of its DER, naming `caller`.
    pub fn add_certificate(&mut self, sha256: [u8; 32], caller: P) {
        Arc::make_mut(&mut self.certificates).push((sha256, caller));
    }

    /// Every token the registry lists for `agency` (revoked ones as revoked), naming `caller`.
    pub fn add_registry_tokens(&mut self, registry: &Registry, agency: &AgencyCode, caller: P) {
        let Some(entry) = registry.agency(agency) else {
            return;
        };
        for token in &entry.tokens {
            if token.revoked {
                self.add_revoked(token.sha256, token.label.clone());
            } else {
                self.add_token(token.sha256, token.label.clone(), caller.clone());
            }
        }
    }

    fn token_caller(&self, presented: &str) -> Result<P, AuthError> {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let tokens: Vec<([u8; 32], &P)> = self.tokens.iter().map(|(h, _, p)| (*h, p)).collect();
        if let Some(caller) = find(&tokens, &hash) {
            return Ok((*caller).clone());
        }
        if let Some(label) = find(&self.revoked, &hash) {
            return Err(AuthError::Revoked {
                label: label.clone(),
            });
        }
        Err(AuthError::Unauthenticated)
    }

    /// Who is calling. A client certificate, when the connection has one, decides (TLS already
    /// verified it against the CA; here it must be one this keyring knows); a token sent with
    /// it must not name someone else.
    pub fn identify<T>(&self, request: &Request<T>) -> Result<P, AuthError> {
        let token = bearer(request);
        if let Some(leaf) = request
            .peer_certs()
            .and_then(|certs| certs.first().cloned())
        {
            let fingerprint: [u8; 32] = Sha256::digest(leaf.as_ref()).into();
            let Some(caller) = find(&self.certificates, &fingerprint) else {
                return Err(AuthError::UnknownCertificate {
                    fingerprint: hex(&fingerprint),
                });
            };
            if let Some(Ok(other)) = token.map(|t| self.token_caller(t))
                && other != *caller
            {
                return Err(AuthError::Mismatch);
            }
            return Ok(caller.clone());
        }
        self.token_caller(token.ok_or(AuthError::Unauthenticated)?)
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

    fn with_token(token: &str) -> Request<()> {
        let mut request = Request::new(());
        let value = format!("Bearer {token}").parse().expect("ascii");
        request.metadata_mut().insert("authorization", value);
        request
    }

    #[test]
    fn a_keyring_names_the_caller_of_a_token_and_refuses_the_rest() {
        let mut keyring = Keyring::new();
        let good = Token::new("good-token-0123456789").expect("long");
        let old = Token::new("old-token-0123456789").expect("long");
        keyring.add_token(good.sha256(), "good", "MOF");
        keyring.add_revoked(old.sha256(), "old");
        assert_eq!(keyring.identify(&with_token(good.expose())), Ok("MOF"));
        assert_eq!(
            keyring.identify(&with_token(old.expose())),
            Err(AuthError::Revoked {
                label: "old".into()
            })
        );
        assert_eq!(
            keyring.identify(&with_token("nobody-0123456789")),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(
            keyring.identify(&Request::new(())),
            Err(AuthError::Unauthenticated)
        );
    }
}
