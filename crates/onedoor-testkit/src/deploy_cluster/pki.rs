//! The certificates a production cluster needs, made fresh for one test: a clients' CA with
//! one server certificate every node presents to clients, and a separate routes' CA with one
//! certificate per node, as `docs/operations.md` asks operators to keep them apart.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};

use crate::error::TestkitError;

/// SANs of every certificate: the nodes run on loopback and are reached by address.
const LOOPBACK_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

/// Paths of the PEM files written under one directory.
#[derive(Debug, Clone)]
pub struct ClusterTls {
    /// The CA clients trust to reach the nodes (`--nats-ca` or the library's root cert).
    pub client_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// The CA that signs route certificates, and nothing else.
    pub route_ca: PathBuf,
    /// `(certificate, key)` per node, in node order.
    pub routes: Vec<(PathBuf, PathBuf)>,
}

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn pki_error(what: &str) -> impl FnOnce(rcgen::Error) -> TestkitError + '_ {
    move |source| TestkitError::Pki(format!("{what}: {source}"))
}

fn new_ca(common_name: &str) -> Result<Ca, TestkitError> {
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(pki_error("CA parameters"))?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    let key = KeyPair::generate().map_err(pki_error("CA key"))?;
    let pem = params
        .self_signed(&key)
        .map_err(pki_error("CA certificate"))?
        .pem();
    Ok(Ca {
        pem,
        issuer: Issuer::new(params, key),
    })
}

/// A loopback certificate signed by `ca`, written as `<stem>.pem` and `<stem>-key.pem`.
fn issue(
    ca: &Ca,
    common_name: &str,
    dir: &Path,
    stem: &str,
) -> Result<(PathBuf, PathBuf), TestkitError> {
    let mut params = CertificateParams::new(LOOPBACK_NAMES.map(str::to_owned).to_vec())
        .map_err(pki_error("certificate parameters"))?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    let key = KeyPair::generate().map_err(pki_error("key"))?;
    let cert = params
        .signed_by(&key, &ca.issuer)
        .map_err(pki_error("certificate"))?;
    let cert_path = dir.join(format!("{stem}.pem"));
    let key_path = dir.join(format!("{stem}-key.pem"));
    write(&cert_path, &cert.pem())?;
    write(&key_path, &key.serialize_pem())?;
    Ok((cert_path, key_path))
}

pub(crate) fn write(path: &Path, text: &str) -> Result<(), TestkitError> {
    std::fs::write(path, text).map_err(|source| TestkitError::Io {
        action: "writing",
        path: path.to_path_buf(),
        source,
    })
}

impl ClusterTls {
    /// Generates both CAs and every certificate into `dir` (which must exist).
    pub fn generate(dir: &Path, node_names: &[String]) -> Result<Self, TestkitError> {
        let clients = new_ca("onedoor test NATS clients CA")?;
        let client_ca = dir.join("ca.pem");
        write(&client_ca, &clients.pem)?;
        let (server_cert, server_key) = issue(&clients, "onedoor-nats", dir, "server")?;

        let routes_ca = new_ca("onedoor test NATS routes CA")?;
        let route_ca = dir.join("route-ca.pem");
        write(&route_ca, &routes_ca.pem)?;
        let routes = node_names
            .iter()
            .map(|name| issue(&routes_ca, name, dir, &format!("route-{name}")))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            client_ca,
            server_cert,
            server_key,
            route_ca,
            routes,
        })
    }
}
