//! gRPC channels to the bus's servers: plaintext, or TLS trusting the CA `endpoints.json` names;
//! and the bearer token a call carries.

use std::path::Path;

use anyhow::Context as _;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// An endpoint for `address`, with TLS (trusting `ca_cert` when given) for `https://`. The
/// server's certificate must name `server_name` when given, else the URL's host (a DNS name or
/// an IP address: the development certificates carry `localhost` and the loopback addresses).
pub fn endpoint(
    address: &str,
    ca_cert: Option<&str>,
    server_name: Option<&str>,
) -> anyhow::Result<Endpoint> {
    let mut endpoint = Channel::from_shared(address.to_owned())
        .with_context(|| format!("{address} is not a URL"))?;
    if address.starts_with("https://") {
        let host = endpoint.uri().host().unwrap_or_default();
        // An IPv6 host comes bracketed in the URL; the certificate names the bare address.
        let name = server_name.unwrap_or(host).trim_matches(['[', ']']);
        let mut tls = ClientTlsConfig::new().domain_name(name);
        if let Some(ca) = ca_cert {
            let pem = std::fs::read_to_string(Path::new(ca))
                .with_context(|| format!("reading CA certificate {ca}"))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint.tls_config(tls)?;
    }
    Ok(endpoint)
}

pub async fn channel(
    address: &str,
    ca_cert: Option<&str>,
    server_name: Option<&str>,
) -> anyhow::Result<Channel> {
    Ok(endpoint(address, ca_cert, server_name)?.connect().await?)
}

/// Adds `authorization: Bearer <token>` to every call (nothing without a token).
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn new(token: Option<&str>) -> anyhow::Result<Self> {
        let value = token
            .map(|token| {
                MetadataValue::try_from(format!("Bearer {}", token.trim()))
                    // Never echo the token itself.
                    .map_err(|_| anyhow::anyhow!("the token has characters a header cannot carry"))
            })
            .transpose()?;
        Ok(Bearer(value))
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}
