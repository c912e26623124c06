//! [`Proxy`]: conformance sits between the worker and its adapter, on its own loopback port,
//! serving both faces the adapter serves (gRPC over HTTP/2 cleartext, JSON over HTTP/1.1). It
//! passes every call on, recording in the journal what the worker received, acknowledged and
//! wrote; and it applies the journal's faults, as a network and a bus may: an item dropped or
//! sent twice, an ack lost or late.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::calls::Call;
use super::inbox_filter::InboxFilter;
use super::journal::{AckFault, Journal, Write};

type Body = BoxBody<Bytes, BoxError>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest request passed on; the adapter's own limit is 1 MiB.
const REQUEST_LIMIT: usize = 2 << 20;

/// Headers of one hop only, never passed on.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
];

struct Upstream {
    base: String,
    grpc: Client<HttpConnector, Body>,
    json: Client<HttpConnector, Body>,
    journal: Arc<Journal>,
}

/// The proxy's address, and its task (aborted on drop).
pub struct Proxy {
    pub url: String,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Listens on a free loopback port, passing calls on to the adapter at `adapter`.
    pub async fn start(adapter: SocketAddr, journal: Arc<Journal>) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the proxy's port")?;
        let address = listener.local_addr()?;
        let executor = TokioExecutor::new();
        let upstream = Arc::new(Upstream {
            base: format!("http://{adapter}"),
            grpc: Client::builder(executor.clone())
                .http2_only(true)
                .build_http(),
            json: Client::builder(executor).build_http(),
            journal,
        });
        let task = tokio::spawn(accept(listener, upstream));
        Ok(Proxy {
            url: format!("http://{address}"),
            task,
        })
    }
}

async fn accept(listener: TcpListener, upstream: Arc<Upstream>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let upstream = upstream.clone();
                async move { Ok::<_, Infallible>(upstream.handle(request).await) }
            });
            // A connection the worker breaks off is its own affair.
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl Upstream {
    async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, REQUEST_LIMIT).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => return failure(StatusCode::BAD_REQUEST, &error.to_string()),
        };
        let call = Call::of(parts.uri.path());
        if let Some(call) = &call {
            match call.method.as_str() {
                "Inbox" => {}
                "Ack" => {
                    let ids = call.ack_ids(&body);
                    match self.journal.acked(&ids) {
                        Some(AckFault::Withhold) => return ack_answer(call, ids),
                        Some(AckFault::Delay(delay)) => tokio::time::sleep(delay).await,
                        None => {}
                    }
                }
                _ => {
                    if let Some((case_id, key)) = call.write(&body) {
                        self.journal.wrote(Write {
                            method: call.method.clone(),
                            case_id,
                            key,
                        });
                    }
                }
            }
        }
        let streaming = call.as_ref().filter(|c| c.method == "Inbox");
        match self.forward(parts, body).await {
            Ok(response) => self.answer(response, streaming),
            Err(error) => failure(StatusCode::BAD_GATEWAY, &format!("{error:#}")),
        }
    }

    async fn forward(
        &self,
        parts: http::request::Parts,
        body: Bytes,
    ) -> anyhow::Result<Response<Incoming>> {
        let grpc = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        let mut request = Request::builder()
            .method(parts.method)
            .uri(format!("{}{path}", self.base))
            .body(full(body))?;
        *request.headers_mut() = passed_on(parts.headers);
        let client = if grpc { &self.grpc } else { &self.json };
        Ok(client.request(request).await?)
    }

    fn answer(&self, response: Response<Incoming>, streaming: Option<&Call>) -> Response<Body> {
        let (mut parts, body) = response.into_parts();
        parts.headers = passed_on(parts.headers);
        let body = match streaming {
            // A refusal (a wrong token) is a JSON error, or a gRPC status in the headers with
            // no body, which must stay so: gRPC clients read a status there only then.
            Some(call)
                if parts.status == StatusCode::OK && !parts.headers.contains_key("grpc-status") =>
            {
                self.journal.inbox_opened();
                filtered(body, InboxFilter::new(call.grpc, self.journal.clone()))
            }
            _ => body.map_err(BoxError::from).boxed(),
        };
        Response::from_parts(parts, body)
    }
}

fn passed_on(mut headers: HeaderMap) -> HeaderMap {
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// The inbox stream through `filter`; trailers (the gRPC status) pass untouched.
fn filtered(body: Incoming, filter: InboxFilter) -> Body {
    let frames = futures::stream::unfold(Some((body, filter)), |state| async move {
        let (mut body, mut filter) = state?;
        loop {
            match body.frame().await {
                None => {
                    let rest = filter.finish();
                    return (!rest.is_empty()).then(|| (Ok(Frame::data(Bytes::from(rest))), None));
                }
                Some(Err(error)) => return Some((Err(BoxError::from(error)), None)),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let out = filter.feed(&data);
                        // An empty chunk would end an HTTP/1.1 chunked body: wait for more.
                        if !out.is_empty() {
                            return Some((Ok(Frame::data(Bytes::from(out))), Some((body, filter))));
                        }
                    }
                    Err(frame) => return Some((Ok(frame), Some((body, filter)))),
                },
            }
        }
    });
    BoxBody::new(StreamBody::new(frames))
}

/// A successful `Ack` answer made here, the ack itself never reaching the adapter.
fn ack_answer(call: &Call, ids: Vec<String>) -> Response<Body> {
    let bytes = call.ack_answer(ids);
    let mut response = if call.grpc {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let frames = futures::stream::iter([
            Ok::<_, BoxError>(Frame::data(bytes)),
            Ok(Frame::trailers(trailers)),
        ]);
        let mut response = Response::new(BoxBody::new(StreamBody::new(frames)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        response
    } else {
        let mut response = Response::new(full(bytes));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    };
    *response.status_mut() = StatusCode::OK;
    response
}

/// The proxy's own failure (the adapter unreachable, a request too large), as plain text.
fn failure(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from(format!("onedoor conformance: {text}\n"))));
    *response.status_mut() = status;
    response
}
