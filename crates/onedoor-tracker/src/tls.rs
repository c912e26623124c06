//! Client certificates as gRPC access knows them: by the SHA-256 of their DER.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use crate::error::TrackerError;

/// SHA-256 of the first certificate's DER in `pem`: how a client certificate is recognised.
pub fn certificate_sha256(pem: &str) -> Result<[u8; 32], TrackerError> {
    use sha2::Digest as _;
    let cert =
        CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| TrackerError::Config {
            key: "tls",
            why: format!("client certificate: {e}"),
        })?;
    Ok(sha2::Sha256::digest(cert.as_ref()).into())
}
