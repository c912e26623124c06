//! The HTTP/JSON face of the bus's gRPC services, for systems that cannot speak gRPC: every
//! call as proto3 JSON on the same port, the same credentials and the same code path, a
//! server stream as Server-Sent Events, and an OpenAPI 3.1 document generated from the
//! contract's descriptors (`docs/http-json.md`).
//!
//! # Layout
//!
//! - [`layer`]: [`JsonLayer`], the content-type switch in front of a tonic server's routes:
//!   `application/grpc*` goes to gRPC untouched, anything else to the JSON routes, which call
//!   the same routes in-process (credentials, size limits, validation, idempotency and error
//!   texts are gRPC's own).
//! - `routes`: `POST /v1/{Method}` and `GET /openapi.json`, with their body limit and timeouts.
//! - `grpc_call`: one in-process gRPC call: the request frame, the response frames, the status.
//! - `sse`: a server-streaming call as Server-Sent Events.
//! - [`transcode`]: JSON ⇄ protobuf by the descriptors (proto3 JSON mapping), naming the field
//!   of a bad value.
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the descriptors and their comments.
//! - [`tls`]: the server's TLS offering HTTP/1.1 beside HTTP/2 (tonic's offers HTTP/2 only).
//! - [`error`]: [`HttpError`] (start-up), [`CallError`] (one call), the one JSON error shape and
//!   the table from gRPC codes to HTTP statuses.

pub mod error;
mod grpc_call;
pub mod layer;
pub mod openapi;
mod routes;
mod sse;
pub mod tls;
pub mod transcode;

use std::time::Duration;

pub use error::{CallError, HttpError, code_name, http_status};
pub use layer::{JsonLayer, JsonSwitch};

/// Where every JSON call lives: `POST /v1/{Method}` (e.g. `/v1/OpenCase`), never on a gRPC path
/// (`/onedoor.v1.AgencyGateway/...`), so neither face can shadow the other.
pub const PATH_PREFIX: &str = "/v1/";

/// The OpenAPI document's path.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// Limits of the JSON face; the gRPC face keeps its own.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Largest JSON body read. JSON is never smaller than the protobuf it becomes, so the gRPC
    /// face's own limit is a safe value.
    pub max_body_bytes: usize,
    /// How long a client may take to send its body (a slow sender holds a connection).
    pub body_timeout: Duration,
    /// How long a unary call may take, body read to answer (DEADLINE_EXCEEDED after it).
    pub call_timeout: Duration,
    /// A comment line on an idle event stream this often, so proxies keep it open and a
    /// vanished client is noticed by the failed write.
    pub keep_alive: Duration,
}

impl HttpSettings {
    pub fn new(max_body_bytes: usize) -> Self {
        HttpSettings {
            max_body_bytes,
            body_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(15),
        }
    }
}
