//! OpenTelemetry spans for the case's one trace. The library only uses the global tracer: with
//! no provider installed (no `OTEL_EXPORTER_OTLP_ENDPOINT`), spans are no-ops and cost almost
//! nothing, and the bus falls back to its own span ids so `traceparent` still flows.

use onedoor_bus::TraceContext;
use opentelemetry::Context;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};

pub const TRACER: &str = "onedoor-adapter";

/// An OpenTelemetry parent context for a W3C trace context we received or stored.
pub fn remote_context(parent: &TraceContext) -> Context {
    let (Ok(trace_id), Ok(span_id)) = (
        TraceId::from_hex(&parent.trace_id),
        SpanId::from_hex(&parent.span_id),
    ) else {
        return Context::new();
    };
    let flags = if parent.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let state = parent
        .tracestate
        .as_deref()
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    Context::new().with_remote_span_context(SpanContext::new(trace_id, span_id, flags, true, state))
}

/// The W3C context of a live span, or `None` for a no-op span (no provider installed).
pub fn trace_context(span: &SpanContext, tracestate: Option<String>) -> Option<TraceContext> {
    span.is_valid().then(|| TraceContext {
        trace_id: span.trace_id().to_string(),
        span_id: span.span_id().to_string(),
        sampled: span.is_sampled(),
        tracestate,
    })
}
