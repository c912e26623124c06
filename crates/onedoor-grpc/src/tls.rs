//! TLS for the bus's gRPC servers, and client certificates known by the SHA-256 of their DER.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use sha2::{Digest as _, Sha256};
use tonic::transport::ServerTlsConfig;

use crate::error::GrpcError;

/// A server's TLS identity, PEM encoded.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_pem: String,
    pub key_pem: String,
    /// CA that signs agencies' client certificates; `None` accepts tokens only.
    pub client_ca_pem: Option<String>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("key_pem", &"****")
            .field("client_ca", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// The gRPC server's TLS configuration: its identity and, with a client CA, client
/// certificates accepted but not required (callers with a token but no certificate still
/// connect; [`crate::Keyring::identify`] decides what a certificate proves).
pub fn server_tls_config(identity: &TlsIdentity) -> ServerTlsConfig {
    let config = ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(
        &identity.cert_pem,
        &identity.key_pem,
    ));
    match &identity.client_ca_pem {
        Some(ca) => config
            .client_ca_root(tonic::transport::Certificate::from_pem(ca))
            .client_auth_optional(true),
        None => config,
    }
}

/// SHA-256 of the first certificate's DER in `pem`: how a client certificate is recognised.
pub fn certificate_sha256(pem: &str) -> Result<[u8; 32], GrpcError> {
    let cert = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| GrpcError::Config {
        key: "client_certs",
        why: format!("client certificate: {e}"),
    })?;
    Ok(Sha256::digest(cert.as_ref()).into())
}

/// A SHA-256 written as 64 hex characters (a token's or a certificate's), for `key`.
pub fn parse_sha256(key: &'static str, text: &str) -> Result<[u8; 32], GrpcError> {
    let bad = || GrpcError::Config {
        key,
        why: "must be 64 hex characters (a SHA-256, never the secret itself)".into(),
    };
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return Err(bad());
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(hash)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
