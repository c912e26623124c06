//! Who may read the tracker over gRPC, and what each caller sees.
//!
//! Callers are agencies, authenticated exactly as at their adapters (the shared
//! [`onedoor_grpc::Keyring`]: a bearer token checked against the registry's SHA-256
//! hashes, revoked ones refused, or the agency's own TLS client certificate), plus a
//! **supervisor** credential for staff tooling, known by the hash of its token in the tracker's
//! configuration. An agency sees only the cases it is part of: it opened them, or holds or held
//! one of their tasks. Any other case does not exist for it (NOT_FOUND, never PERMISSION_DENIED,
//! so a case id says nothing about whether the case exists).

use onedoor_case::{AgencyCode, Registry};
use onedoor_grpc::{AuthError, Keyring};
use tonic::{Request, Status};

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Sees the cases it is part of.
    Agency(AgencyCode),
    /// Sees every case (staff tooling, `onedoor case` under `up`).
    Supervisor,
}

/// The tracker's keyring: every agency's tokens and client certificates, and the supervisor's
/// token hashes.
#[derive(Clone)]
pub struct GrpcAccess {
    keyring: Keyring<Caller>,
}

impl std::fmt::Debug for GrpcAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrpcAccess(hashes only)")
    }
}

impl GrpcAccess {
    /// Every agency of `registry` by its token hashes, the agencies' client certificates by
    /// fingerprint, and the supervisor by `supervisor_sha256`.
    pub fn new(
        registry: &Registry,
        supervisor_sha256: &[[u8; 32]],
        client_certs: &[(AgencyCode, [u8; 32])],
    ) -> Self {
        let mut keyring = Keyring::new();
        for agency in registry.agencies.values() {
            keyring.add_registry_tokens(
                registry,
                &agency.code,
                Caller::Agency(agency.code.clone()),
            );
        }
        for hash in supervisor_sha256 {
            keyring.add_token(*hash, "supervisor", Caller::Supervisor);
        }
        for (agency, fingerprint) in client_certs {
            keyring.add_certificate(*fingerprint, Caller::Agency(agency.clone()));
        }
        GrpcAccess { keyring }
    }

    /// A tonic interceptor: refuses unauthenticated calls and hands the [`Caller`] to the
    /// handlers in the request's extensions.
    pub fn interceptor(self) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
        move |mut request: Request<()>| match self.keyring.identify(&request) {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                Ok(request)
            }
            Err(error) => {
                // The reason, never the token; one line per refusal for the operator.
                // Counted by code in the call metrics; one line per refusal would let anyone
                // with a wrong token fill the log.
                tracing::debug!(%error, "CaseTracker call refused");
                Err(Status::from(error))
            }
        }
    }
}

/// The caller a handler serves. Without an access configuration the tracker is open (tests and
/// in-process tools on loopback) and everyone reads as the supervisor; with one, a request
/// without a caller never passed the interceptor and is refused.
pub fn caller_of<T>(request: &Request<T>, open: bool) -> Result<Caller, Status> {
    match request.extensions().get::<Caller>() {
        Some(caller) => Ok(caller.clone()),
        None if open => Ok(Caller::Supervisor),
        None => Err(Status::from(AuthError::Unauthenticated)),
    }
}
