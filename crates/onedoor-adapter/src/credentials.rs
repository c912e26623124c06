//! Who may call the adapter: its own agency only, by a token the registry lists by hash (or
//! one configured at start), or by one of the agency's client certificates. The keyring itself
//! is shared with the tracker ([`onedoor_grpc::Keyring`]); what a refusal means here (one
//! caller only) is the adapter's.

use onedoor_case::{AgencyCode, Registry};
use onedoor_grpc::{AuthError, Keyring, Token};
use tonic::{Request, Status};

use crate::error::AdapterError;

/// What the adapter accepts for its agency, in hashed form only.
#[derive(Clone)]
pub struct Credentials {
    agency: AgencyCode,
    keyring: Keyring<AgencyCode>,
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
        let mut keyring = Keyring::new();
        keyring.add_registry_tokens(registry, agency, agency.clone());
        if let Some(token) = extra {
            keyring.add_token(token.sha256(), "configured", agency.clone());
        }
        for fingerprint in client_certs {
            keyring.add_certificate(fingerprint, agency.clone());
        }
        Credentials {
            agency: agency.clone(),
            keyring,
        }
    }

    fn check<T>(&self, request: &Request<T>) -> Result<(), AdapterError> {
        match self.keyring.identify(request) {
            Ok(_) => Ok(()),
            Err(AuthError::Unauthenticated) => Err(AdapterError::Unauthenticated {
                agency: self.agency.to_string(),
            }),
            Err(AuthError::Revoked { label }) => Err(AdapterError::RevokedToken { label }),
            // One caller only: a certificate it does not know is another agency's.
            Err(AuthError::UnknownCertificate { fingerprint }) => {
                Err(AdapterError::ForeignCertificate {
                    agency: self.agency.to_string(),
                    fingerprint,
                })
            }
            Err(AuthError::Mismatch) => Err(AdapterError::ForeignCertificate {
                agency: self.agency.to_string(),
                fingerprint: String::new(),
            }),
        }
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
