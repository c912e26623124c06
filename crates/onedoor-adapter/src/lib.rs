//! The agency adapter: the `AgencyGateway` gRPC server each agency runs next to its own IT
//! system. It turns calls into case events on JetStream (through the case rules) and the
//! agency's inbox consumer into a gRPC stream.
//!
//! # Layout
//! - [`server`]: [`run`] — the one entry point (config, bound listener, shutdown signal), with
//!   reflection of AgencyGateway and health only.
//! - `health`: gRPC health: NOT_SERVING while NATS does not answer, a frozen server
//!   included.
//! - [`gateway`]: the `AgencyGateway` implementation: writes, `GetCase`.
//! - [`inbox`]: the `Inbox` stream and `Ack` over the durable consumer `inbox-<AGENCY>`, and
//!   the agency's own stuck items (`ListStuck`).
//! - `item`: what an inbox item means for its receiver (kind, service, step, due time).
//! - [`redeliver`]: stuck items put back in the inbox by the adapter (`Redeliver`).
//! - [`catalogue`]: the service catalogue for `ListServices`.
//! - [`webhook`]: the inbox pushed to one URL per agency instead of pulled: signed POSTs,
//!   retries with back-off and jitter, stuck after the last attempt.
//! - [`requests`]: wire requests → domain commands, parsed once at the edge.
//! - [`idempotency`]: ids derived from idempotency keys, and "is this the same request?".
//! - [`credentials`]: who may call: the agency's client certificates, or bearer tokens known
//!   by hash (the keyring, TLS and the development PKI are `onedoor-grpc`'s, shared with the
//!   tracker).
//! - [`error`]: [`AdapterError`], mapped to gRPC status codes by `onedoor_grpc::status`.
//! - [`metrics`]: metric names and descriptions.
//! - [`telemetry`]: OpenTelemetry spans in the case's one trace (no-ops without a provider).

pub mod catalogue;
pub mod credentials;
pub mod error;
pub mod gateway;
mod health;
pub mod idempotency;
pub mod inbox;
mod item;
pub mod metrics;
pub(crate) mod office;
pub mod redeliver;
pub mod requests;
pub mod server;
pub mod telemetry;
pub mod webhook;

pub use error::AdapterError;
pub use onedoor_grpc::{TlsIdentity, Token};
pub use server::{AdapterConfig, CaseReads, run};
