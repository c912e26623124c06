//! The tower layer around every call a server answers: a `traceparent` on each response (errors
//! included, so a caller can always quote the trace it was in) and the call metrics, with the
//! status code read from the response headers (a trailers-only error) or from the trailers.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use onedoor_bus::TraceContext;
use onedoor_bus::trace::{TRACEPARENT, TRACESTATE};
use tonic::body::Body;
use tonic::{Code, Status};
use tower_layer::Layer;
use tower_service::Service;

/// How one server's calls are counted: metric names and the labels every call carries.
#[derive(Debug)]
pub struct CallMetrics {
    total: String,
    seconds: String,
    labels: Vec<(&'static str, String)>,
}

impl CallMetrics {
    /// `onedoor_<role>_rpc_total` (by method and code) and `onedoor_<role>_rpc_seconds` (time
    /// to the response headers: the whole call when unary, the opening when streaming), each
    /// with `labels` (the adapter's agency, as `onedoor up` runs several in one process).
    pub fn new(role: &str, labels: Vec<(&'static str, String)>) -> Self {
        let metrics = CallMetrics {
            total: format!("onedoor_{role}_rpc_total"),
            seconds: format!("onedoor_{role}_rpc_seconds"),
            labels,
        };
        metrics::describe_counter!(
            metrics.total.clone(),
            "gRPC calls answered, by method and status code"
        );
        metrics::describe_histogram!(
            metrics.seconds.clone(),
            metrics::Unit::Seconds,
            "gRPC time to the response headers, by method"
        );
        metrics
    }

    fn labels(&self, method: &str) -> Vec<metrics::Label> {
        self.labels
            .iter()
            .map(|(key, value)| metrics::Label::new(*key, value.clone()))
            .chain([metrics::Label::new("method", method.to_owned())])
            .collect()
    }

    fn answered(&self, method: &str, started: Instant) {
        metrics::histogram!(self.seconds.clone(), self.labels(method))
            .record(started.elapsed().as_secs_f64());
    }

    fn ended(&self, method: &str, code: Code) {
        let mut labels = self.labels(method);
        labels.push(metrics::Label::new("code", format!("{code:?}")));
        metrics::counter!(self.total.clone(), labels).increment(1);
    }
}

/// Wraps a server's routes in [`Observe`]; see the module comment.
#[derive(Clone)]
pub struct ObserveLayer {
    metrics: Arc<CallMetrics>,
}

impl ObserveLayer {
    pub fn new(metrics: CallMetrics) -> Self {
        ObserveLayer {
            metrics: Arc::new(metrics),
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A server's routes, observed.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Arc<CallMetrics>,
}

/// The span a response names: a child of the caller's when it sent a valid `traceparent`, else
/// a new trace. A service that continued a case's own trace has set its header already.
pub fn response_trace(headers: &http::HeaderMap) -> TraceContext {
    let caller = headers
        .get(TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(|traceparent| {
            let tracestate = headers.get(TRACESTATE).and_then(|v| v.to_str().ok());
            TraceContext::parse(traceparent, tracestate).ok()
        });
    caller.map_or_else(TraceContext::new_root, |caller| caller.child())
}

/// The last path segment, `/onedoor.v1.AgencyGateway/OpenCase` → `OpenCase`.
fn method_of(path: &str) -> String {
    path.rsplit('/').next().unwrap_or_default().to_owned()
}

fn status_code(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    Some(Code::from_i32(value.parse().ok()?))
}

impl<S, B> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let trace = response_trace(request.headers());
        let method = method_of(request.uri().path());
        // The clone that was made ready is the one that must answer.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let Ok(response) = inner.call(request).await;
            let (mut parts, body) = response.into_parts();
            crate::decode::name_bad_field(&mut parts.headers);
            if !parts.headers.contains_key(TRACEPARENT)
                && let Ok(value) = http::HeaderValue::try_from(trace.traceparent())
            {
                parts.headers.insert(TRACEPARENT, value);
            }
            metrics.answered(&method, started);
            let call = Call { metrics, method };
            let body = match status_code(&parts.headers) {
                Some(code) => {
                    call.end(code);
                    body
                }
                None => Body::new(Counted {
                    inner: body,
                    call: Some(call),
                }),
            };
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

/// One call whose status is not known yet.
struct Call {
    metrics: Arc<CallMetrics>,
    method: String,
}

impl Call {
    fn end(self, code: Code) {
        self.metrics.ended(&self.method, code);
    }
}

/// A response body that counts its call when the trailers (and so the status) go out; a body
/// dropped before that was cancelled by the client.
struct Counted {
    inner: Body,
    call: Option<Call>,
}

impl Counted {
    fn end(&mut self, code: Code) {
        if let Some(call) = self.call.take() {
            call.end(code);
        }
    }
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = status_code(trailers).unwrap_or(Code::Unknown);
                    self.end(code);
                }
            }
            Poll::Ready(Some(Err(status))) => self.end(status.code()),
            Poll::Ready(None) => self.end(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.end(Code::Cancelled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_continues_the_callers_trace_or_starts_one() {
        let mut headers = http::HeaderMap::new();
        let fresh = response_trace(&headers);
        assert!(onedoor_bus::trace::is_trace_id(&fresh.trace_id));
        let caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        headers.insert(TRACEPARENT, http::HeaderValue::from_static(caller));
        let child = response_trace(&headers);
        assert_eq!(child.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_ne!(child.span_id, "b7ad6b7169203331");
    }

    #[test]
    fn the_method_is_the_last_path_segment() {
        assert_eq!(method_of("/onedoor.v1.AgencyGateway/OpenCase"), "OpenCase");
    }
}
