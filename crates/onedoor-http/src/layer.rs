//! [`JsonLayer`]: one port for both faces. A request whose content type is `application/grpc*`
//! goes to the gRPC routes untouched; anything else goes to the JSON routes, which call those
//! same routes in-process. Put it innermost (`Server::layer` after the observe layer), so
//! both faces are observed alike and a JSON call is counted once, under its method's name.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use prost_reflect::ServiceDescriptor;
use tonic::body::Body;
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::HttpError;
use crate::routes::{self, Face};
use crate::{HttpSettings, openapi, transcode};

/// The JSON face of one gRPC service (see the module comment), or none ([`JsonLayer::off`]).
#[derive(Clone)]
pub struct JsonLayer {
    face: Option<LayerFace>,
}

#[derive(Clone)]
struct LayerFace {
    service: ServiceDescriptor,
    settings: Arc<HttpSettings>,
    /// Generated once: the descriptors do not change while the server runs.
    openapi: Bytes,
}

impl JsonLayer {
    /// The face of `service` (its full name, e.g. `onedoor.v1.AgencyGateway`).
    pub fn new(service: &str, settings: HttpSettings) -> Result<Self, HttpError> {
        let service = transcode::service(service)?;
        let document = openapi::document(&service);
        Ok(JsonLayer {
            face: Some(LayerFace {
                openapi: Bytes::from(document.to_string()),
                service,
                settings: Arc::new(settings),
            }),
        })
    }

    /// No JSON face: every request goes to gRPC, so the server has one type either way.
    pub fn off() -> Self {
        JsonLayer { face: None }
    }
}

impl<S> Layer<S> for JsonLayer
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    type Service = JsonSwitch<S>;

    fn layer(&self, inner: S) -> JsonSwitch<S> {
        let json = self.face.as_ref().map(|face| {
            routes::router(Face {
                grpc: BoxCloneSyncService::new(inner.clone()),
                service: face.service.clone(),
                settings: face.settings.clone(),
                openapi: face.openapi.clone(),
            })
        });
        JsonSwitch { grpc: inner, json }
    }
}

/// The gRPC routes, and the JSON routes in front of them.
#[derive(Clone)]
pub struct JsonSwitch<S> {
    grpc: S,
    json: Option<axum::Router>,
}

/// gRPC proper (`application/grpc`, `+proto`, `+json`); gRPC-web is not served by either face.
fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/grpc") && !v.starts_with("application/grpc-web")
        })
}

impl<S> Service<http::Request<Body>> for JsonSwitch<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.grpc.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let json = match &self.json {
            Some(json) if !is_grpc(request.headers()) => json.clone(),
            _ => {
                // The clone that was made ready is the one that must answer.
                let clone = self.grpc.clone();
                let mut ready = std::mem::replace(&mut self.grpc, clone);
                return Box::pin(ready.call(request));
            }
        };
        Box::pin(async move {
            let Ok(response) = json.oneshot(request).await;
            Ok(response.map(Body::new))
        })
    }
}
