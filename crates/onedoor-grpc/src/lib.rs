//! What every gRPC server of the bus shares. The adapter (`AgencyGateway`) and the tracker
//! (`CaseTracker`) both build on this crate and never on each other.
//!
//! # Layout
//!
//! - [`auth`]: who is calling: [`Token`] (a secret that never prints), [`Keyring`] (tokens by
//!   their SHA-256 and client certificates by fingerprint, each naming a caller), [`AuthError`].
//! - [`tls`]: [`TlsIdentity`], the server TLS configuration (client certificates optional),
//!   certificate fingerprints.
//! - [`devpki`]: a development CA with server and client certificates, for `onedoor up` and
//!   the tests.
//! - [`server`]: one builder for the bus's servers: keepalive, TCP_NODELAY, TLS, reflection of
//!   exactly the services served, and the [`observe`] layer.
//! - [`observe`]: the layer around every call: a `traceparent` on each response, errors
//!   included, and [`CallMetrics`] (`onedoor_<role>_rpc_total` by method and status code,
//!   `onedoor_<role>_rpc_seconds`).
//! - [`status`]: the one table from domain errors (case-rule refusals, bus and NATS failures,
//!   credentials) to gRPC status codes.
//! - [`error`]: [`GrpcError`], the crate's one error type.

pub mod auth;
pub mod decode;
pub mod devpki;
pub mod error;
pub mod observe;
pub mod server;
pub mod status;
pub mod tls;

pub use auth::{AuthError, Keyring, Token, bearer};
pub use error::GrpcError;
pub use observe::CallMetrics;
pub use tls::{TlsIdentity, server_tls_config};
