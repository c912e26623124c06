//! gRPC channels to the bus's servers: plaintext, or TLS trusting the CA `endpoints.json` names.

use std::path::Path;

use anyhow::Context as _;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// The development certificates name `localhost` (and the loopback addresses); clients that
/// dial `127.0.0.1` verify against this name.
const DEV_SERVER_NAME: &str = "localhost";

pub async fn channel(address: &str, ca_cert: Option<&str>) -> anyhow::Result<Channel> {
    let mut endpoint = Channel::from_shared(address.to_owned())
        .with_context(|| format!("{address} is not a URL"))?;
    if address.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().domain_name(DEV_SERVER_NAME);
        if let Some(ca) = ca_cert {
            let pem = std::fs::read_to_string(Path::new(ca))
                .with_context(|| format!("reading CA certificate {ca}"))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint.tls_config(tls)?;
    }
    Ok(endpoint.connect().await?)
}
