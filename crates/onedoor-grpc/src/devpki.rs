//! A development PKI for `onedoor up` and the tests: one CA, one server certificate for the
//! loopback adapters, and one client certificate per agency. Production deployments bring their
//! own certificates; only the fingerprints and the CA enter the adapter's configuration.

use std::collections::BTreeMap;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use sha2::{Digest as _, Sha256};

use crate::error::GrpcError;
use crate::tls::hex;

/// A certificate and its private key, PEM encoded.
#[derive(Clone)]
pub struct CertifiedKey {
    pub cert_pem: String,
    pub key_pem: String,
    /// SHA-256 of the certificate's DER: how an adapter recognises an agency's client
    /// certificate.
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CertifiedKey(sha256 {}, key ****)", hex(&self.sha256))
    }
}

pub struct DevPki {
    pub ca_cert_pem: String,
    /// For every adapter: SANs `127.0.0.1`, `::1` and `localhost`.
    pub server: CertifiedKey,
    /// By agency code; the certificate's common name is the code.
    pub clients: BTreeMap<String, CertifiedKey>,
}

fn pki_error(what: &'static str, source: rcgen::Error) -> GrpcError {
    GrpcError::Pki { what, source }
}

fn certified(
    params: &CertificateParams,
    key: KeyPair,
    issuer: &Issuer<'_, KeyPair>,
    what: &'static str,
) -> Result<CertifiedKey, GrpcError> {
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|e| pki_error(what, e))?;
    Ok(CertifiedKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        sha256: Sha256::digest(cert.der()).into(),
    })
}

impl DevPki {
    pub fn generate<'a>(agencies: impl IntoIterator<Item = &'a str>) -> Result<Self, GrpcError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| pki_error("CA parameters", e))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "onedoor development CA");
        ca_params.distinguished_name = name;
        let ca_key = KeyPair::generate().map_err(|e| pki_error("CA key", e))?;
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(|e| pki_error("CA certificate", e))?;
        let ca_cert_pem = ca_cert.pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_params = CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
        ])
        .map_err(|e| pki_error("server parameters", e))?;
        let server = certified(
            &server_params,
            KeyPair::generate().map_err(|e| pki_error("server key", e))?,
            &issuer,
            "server certificate",
        )?;

        let mut clients = BTreeMap::new();
        for agency in agencies {
            let mut params = CertificateParams::new(Vec::<String>::new())
                .map_err(|e| pki_error("client parameters", e))?;
            let mut name = DistinguishedName::new();
            name.push(DnType::CommonName, agency);
            name.push(DnType::OrganizationName, "onedoor development");
            params.distinguished_name = name;
            let key = KeyPair::generate().map_err(|e| pki_error("client key", e))?;
            clients.insert(
                agency.to_owned(),
                certified(&params, key, &issuer, "client certificate")?,
            );
        }
        Ok(DevPki {
            ca_cert_pem,
            server,
            clients,
        })
    }
}
