//! One way to build a gRPC server of the bus, so the adapter and the tracker serve alike:
//! TLS (with optional client certificates), HTTP/2 keepalive, TCP_NODELAY on the given
//! listener, gRPC health, reflection listing exactly the services served, and the
//! [`crate::observe`] layer (a `traceparent` on every response, call metrics).

use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_reflection::server::v1::{ServerReflection, ServerReflectionServer};
use tower_layer::{Identity, Stack};

use crate::error::GrpcError;
use crate::observe::{CallMetrics, ObserveLayer};
use crate::tls::{TlsIdentity, server_tls_config};

/// The layers every server built here has: what [`builder`] returns, and so the type parameter
/// of the router a server builds from it (`Router<Observed>`).
pub type Observed = Stack<ObserveLayer, Identity>;

/// Without keepalive a half-open connection would hold an inbox or watch stream for ever.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The gRPC service name of grpc.health.v1, listed beside the server's own services.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// A server builder with the bus's transport settings, over TLS when `tls` is given, every call
/// counted by `metrics` and answered with a `traceparent`.
pub fn builder(
    tls: Option<&TlsIdentity>,
    metrics: CallMetrics,
) -> Result<Server<Observed>, GrpcError> {
    let mut builder = Server::builder();
    if let Some(identity) = tls {
        builder = builder
            .tls_config(server_tls_config(identity))
            .map_err(|e| GrpcError::Build {
                what: "TLS",
                why: e.to_string(),
            })?;
    }
    Ok(builder
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .layer(ObserveLayer::new(metrics)))
}

/// Connections from an already-bound listener. A given listener skips the builder's
/// TCP_NODELAY; without it every reply with a body waits out the client's delayed ACK (about
/// 40 ms on Linux) before its trailers go out.
pub fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Server reflection (v1) of the contract, listing only `services` (full names, such as
/// `onedoor.v1.AgencyGateway`), health and reflection itself in both protocols (every server
/// adds [`reflection`] and [`reflection_v1alpha`] together): a client is never shown a service
/// this server would answer UNIMPLEMENTED, nor misses one it answers.
pub fn reflection(
    services: &[&str],
) -> Result<ServerReflectionServer<impl ServerReflection>, GrpcError> {
    reflection_builder(services)
        // build_v1 registers the v1 descriptors itself.
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(reflection_error)
}

/// [`reflection`] in the older v1alpha protocol, which grpcurl and some IDEs still ask for.
pub fn reflection_v1alpha(
    services: &[&str],
) -> Result<
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
    GrpcError,
> {
    reflection_builder(services)
        // build_v1alpha registers the v1alpha descriptors itself.
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(reflection_error)
}

fn reflection_builder<'a>(services: &[&str]) -> tonic_reflection::server::Builder<'a> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(onedoor_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(HEALTH_SERVICE)
        .with_service_name(REFLECTION_V1)
        .with_service_name(REFLECTION_V1ALPHA);
    for service in services {
        builder = builder.with_service_name(*service);
    }
    builder
}

fn reflection_error(error: tonic_reflection::server::Error) -> GrpcError {
    GrpcError::Build {
        what: "reflection",
        why: error.to_string(),
    }
}
