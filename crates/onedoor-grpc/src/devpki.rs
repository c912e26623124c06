//! Certificates for the adapters' gRPC TLS. [`DevPki`] is the development set for `onedoor up`
//! and the tests: one CA, one server certificate for the loopback adapters, and one client
//! certificate per agency. [`Ca`] is what `onedoor certs` issues from in production: a CA kept
//! in PEM files, server certificates for named hosts, client certificates for agencies.
//! Only the fingerprints and the CA enter the adapter's configuration.

use std::collections::BTreeMap;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
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

/// How long certificates made here are valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub days: u32,
}

impl Validity {
    fn apply(self, params: &mut CertificateParams) {
        // A day back absorbs clock skew between the issuing and the verifying machine.
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(i64::from(self.days));
    }
}

/// A certificate authority that signs agencies' and servers' certificates, as PEM.
pub struct Ca {
    pub cert_pem: String,
    pub key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ca(key ****)")
    }
}

fn ca_params(
    common_name: &str,
    validity: Option<Validity>,
) -> Result<CertificateParams, GrpcError> {
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| pki_error("CA parameters", e))?;
    // Signs end-entity certificates only: no intermediate CA may hang below it.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    if let Some(validity) = validity {
        validity.apply(&mut params);
    }
    Ok(params)
}

/// A server certificate's parameters: `names` (DNS names or IP addresses) as its SANs, which
/// is what clients check; the first also as its common name, for people reading it.
fn server_params(
    names: &[String],
    validity: Option<Validity>,
) -> Result<CertificateParams, GrpcError> {
    let mut params =
        CertificateParams::new(names.to_vec()).map_err(|e| pki_error("server names", e))?;
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    if let Some(validity) = validity {
        validity.apply(&mut params);
    }
    Ok(params)
}

/// A client certificate's parameters: the agency code as common name. Adapters recognise it
/// by its SHA-256, not by its name.
fn client_params(
    agency: &str,
    organization: &str,
    validity: Option<Validity>,
) -> Result<CertificateParams, GrpcError> {
    let mut params = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| pki_error("client parameters", e))?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, agency);
    name.push(DnType::OrganizationName, organization);
    params.distinguished_name = name;
    if let Some(validity) = validity {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity.apply(&mut params);
    }
    Ok(params)
}

fn new_key(what: &'static str) -> Result<KeyPair, GrpcError> {
    KeyPair::generate().map_err(|e| pki_error(what, e))
}

/// Refuses a CA key that is not the certificate's: what it signed would name this CA as issuer
/// and fail every verification, far from here. A certificate embeds its subject's public key
/// info as is, so the key's encoding must occur in the certificate.
fn check_pair(cert_pem: &str, key: &KeyPair) -> Result<(), GrpcError> {
    use rcgen::PublicKeyData as _;
    use rustls_pki_types::pem::PemObject as _;
    let der =
        rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| {
            GrpcError::Config {
                key: "ca",
                why: format!("CA certificate: {e}"),
            }
        })?;
    let spki = key.subject_public_key_info();
    if der
        .windows(spki.len())
        .any(|window| window == spki.as_slice())
    {
        return Ok(());
    }
    Err(GrpcError::Config {
        key: "ca",
        why: "the CA private key does not belong to the CA certificate".to_owned(),
    })
}

impl Ca {
    /// A new CA named `common_name`.
    pub fn generate(common_name: &str, validity: Validity) -> Result<Self, GrpcError> {
        let params = ca_params(common_name, Some(validity))?;
        let key = new_key("CA key")?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| pki_error("CA certificate", e))?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA from its certificate and private key (PEM), e.g. files `onedoor certs ca` wrote.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, GrpcError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| pki_error("CA private key", e))?;
        check_pair(cert_pem, &key)?;
        let issuer =
            Issuer::from_ca_cert_pem(cert_pem, key).map_err(|e| pki_error("CA certificate", e))?;
        Ok(Ca {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            issuer,
        })
    }

    /// A server certificate for `names` (DNS names or IP addresses; at least one).
    pub fn server(&self, names: &[String], validity: Validity) -> Result<CertifiedKey, GrpcError> {
        let params = server_params(names, Some(validity))?;
        certified(
            &params,
            new_key("server key")?,
            &self.issuer,
            "server certificate",
        )
    }

    /// A client certificate for `agency`.
    pub fn client(&self, agency: &str, validity: Validity) -> Result<CertifiedKey, GrpcError> {
        let params = client_params(agency, "onedoor", Some(validity))?;
        certified(
            &params,
            new_key("client key")?,
            &self.issuer,
            "client certificate",
        )
    }
}

impl DevPki {
    pub fn generate<'a>(agencies: impl IntoIterator<Item = &'a str>) -> Result<Self, GrpcError> {
        let ca_params = ca_params("onedoor development CA", None)?;
        let ca_key = new_key("CA key")?;
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(|e| pki_error("CA certificate", e))?;
        let ca_cert_pem = ca_cert.pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let loopback = ["127.0.0.1", "::1", "localhost"].map(str::to_owned);
        let server = certified(
            &server_params(&loopback, None)?,
            new_key("server key")?,
            &issuer,
            "server certificate",
        )?;

        let mut clients = BTreeMap::new();
        for agency in agencies {
            let params = client_params(agency, "onedoor development", None)?;
            clients.insert(
                agency.to_owned(),
                certified(
                    &params,
                    new_key("client key")?,
                    &issuer,
                    "client certificate",
                )?,
            );
        }
        Ok(DevPki {
            ca_cert_pem,
            server,
            clients,
        })
    }
}
