//! The JSON routes: `POST /v1/{Method}` for every method of the service (a server-streaming
//! one answers Server-Sent Events) and `GET /openapi.json`; anything else is a JSON error.

use std::sync::Arc;

use axum::Router;
use axum::body::Body as AxumBody;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use prost_reflect::{MethodDescriptor, ServiceDescriptor};
use tonic::Code;
use tonic::body::Body;

use crate::error::CallError;
use crate::grpc_call::{self, Frames, GrpcService, status_in};
use crate::{HttpSettings, OPENAPI_PATH, sse, transcode};

/// Headers of the gRPC answer that the JSON answer carries too.
const PASSED_BACK: [&str; 2] = ["traceparent", "tracestate"];

#[derive(Clone)]
pub struct Face {
    pub grpc: GrpcService,
    pub service: ServiceDescriptor,
    pub settings: Arc<HttpSettings>,
    pub openapi: Bytes,
}

impl Face {
    fn method(&self, name: &str) -> Result<MethodDescriptor, CallError> {
        self.service
            .methods()
            .find(|m| m.name() == name)
            .ok_or_else(|| CallError::NoSuchMethod {
                method: name.to_owned(),
                service: self.service.full_name().to_owned(),
                known: self
                    .service
                    .methods()
                    .map(|m| m.name().to_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

pub fn router(face: Face) -> Router {
    Router::new()
        .route("/v1/{method}", post(rpc))
        .route(OPENAPI_PATH, get(openapi))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(face)
}

async fn openapi(State(face): State<Face>) -> Response {
    let mut response = Response::new(AxumBody::from(face.openapi.clone()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn no_route(request: Request) -> Response {
    refuse_route(&request, |method, path| CallError::NoSuchRoute {
        method,
        path,
    })
}

async fn wrong_method(request: Request) -> Response {
    refuse_route(&request, |method, path| CallError::WrongMethod {
        method,
        path,
    })
}

fn refuse_route(request: &Request, error: impl FnOnce(String, String) -> CallError) -> Response {
    let trace = onedoor_grpc::observe::response_trace(request.headers()).traceparent();
    let error = error(
        request.method().to_string(),
        request.uri().path().to_owned(),
    );
    error_response(&error, &trace)
}

async fn rpc(State(face): State<Face>, request: Request) -> Response {
    let trace = onedoor_grpc::observe::response_trace(request.headers()).traceparent();
    let name = request
        .uri()
        .path()
        .strip_prefix(crate::PATH_PREFIX)
        .unwrap_or_default()
        .to_owned();
    match answer(&face, &name, request, &trace).await {
        Ok(response) => response,
        Err(error) => error_response(&error, &trace),
    }
}

async fn answer(
    face: &Face,
    name: &str,
    request: Request,
    trace: &str,
) -> Result<Response, CallError> {
    let method = face.method(name)?;
    let (parts, body) = request.into_parts();
    let body = read_body(&parts.headers, body, &face.settings).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        check_json(&parts.headers)?;
    }
    let message = transcode::json_to_protobuf(&method.input(), &body)?;
    let path = format!("/{}/{}", face.service.full_name(), method.name());
    if method.is_server_streaming() {
        let response = grpc_call::call(face.grpc.clone(), parts, &path, &message).await?;
        return sse::events(
            response,
            method.output(),
            method.input(),
            trace.to_owned(),
            face.settings.keep_alive,
        );
    }
    let call = async {
        let response = grpc_call::call(face.grpc.clone(), parts, &path, &message).await?;
        unary(response, &method).await
    };
    let timeout = face.settings.call_timeout;
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| CallError::CallTimeout {
            seconds: timeout.as_secs(),
        })?
}

/// The body, within the size limit and the time allowed.
async fn read_body(
    headers: &HeaderMap,
    body: AxumBody,
    settings: &HttpSettings,
) -> Result<Bytes, CallError> {
    let max = settings.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        return Err(CallError::TooLarge { max });
    }
    let read = tokio::time::timeout(settings.body_timeout, Limited::new(body, max).collect());
    match read.await {
        Err(_) => Err(CallError::BodyTimeout {
            seconds: settings.body_timeout.as_secs(),
        }),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(CallError::TooLarge { max })
        }
        Ok(Err(error)) => Err(CallError::BodyRead(error.to_string())),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn check_json(headers: &HeaderMap) -> Result<(), CallError> {
    let found = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = found.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(CallError::NotJson { found })
    }
}

/// A unary gRPC answer as JSON: its one message, or its status as the error.
async fn unary(
    response: http::Response<Body>,
    method: &MethodDescriptor,
) -> Result<Response, CallError> {
    let (parts, body) = response.into_parts();
    let failed = |status: tonic::Status| CallError::grpc(status, &method.input());
    // A trailers-only answer: a refusal before any message.
    if let Some(status) = status_in(&parts.headers) {
        return Err(failed(status));
    }
    let collected = body.collect().await.map_err(&failed)?;
    match collected.trailers().and_then(status_in) {
        Some(status) if status.code() == Code::Ok => {}
        Some(status) => return Err(failed(status)),
        None => return Err(CallError::Answer("no grpc-status in the trailers".into())),
    }
    let mut frames = Frames::default();
    frames.push(&collected.to_bytes());
    let message = frames
        .next_message()?
        .ok_or_else(|| CallError::Answer("no message in the answer".into()))?;
    let json = transcode::protobuf_to_json(&method.output(), &message)?;
    let mut answer = Response::new(AxumBody::from(json));
    let headers = answer.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("grpc-status", HeaderValue::from(Code::Ok as i32));
    for name in PASSED_BACK {
        if let Some(value) = parts.headers.get(name) {
            headers.insert(name, value.clone());
        }
    }
    Ok(answer)
}

/// The one error shape, with its HTTP status, the trace it was answered in, and `grpc-status`
/// (which the server's call metrics read, for both faces alike).
fn error_response(error: &CallError, traceparent: &str) -> Response {
    let mut response = Response::new(AxumBody::from(error.body(traceparent)));
    *response.status_mut() = error.http_status();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("grpc-status", HeaderValue::from(error.code() as i32));
    if let Ok(value) = HeaderValue::from_str(traceparent) {
        headers.insert("traceparent", value);
    }
    if error.code() == Code::Unauthenticated {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}
