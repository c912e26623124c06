//! W3C Trace Context (`traceparent`, `tracestate`) as carried in gRPC metadata and NATS headers.
//! A case's trace id is fixed when it opens; every later hop makes a new span id under it.

use std::fmt;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// A position in a trace: the case's trace id and the span that did the work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lower-case hex characters, never all zeros.
    pub trace_id: String,
    /// 16 lower-case hex characters, never all zeros.
    pub span_id: String,
    pub sampled: bool,
    /// Vendor data passed through untouched.
    pub tracestate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "traceparent {value:?} is not W3C trace context (00-<32 hex>-<16 hex>-<2 hex flags>): {why}"
)]
pub struct TraceparentError {
    pub value: String,
    pub why: &'static str,
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn random_hex(bytes: usize) -> String {
    loop {
        let mut buf = vec![0u8; bytes];
        rand::fill(buf.as_mut_slice());
        // All-zero ids are invalid in W3C trace context.
        if buf.iter().any(|b| *b != 0) {
            return buf.iter().map(|b| format!("{b:02x}")).collect();
        }
    }
}

pub fn is_trace_id(text: &str) -> bool {
    is_lower_hex(text, 32) && text.bytes().any(|b| b != b'0')
}

pub fn is_span_id(text: &str) -> bool {
    is_lower_hex(text, 16) && text.bytes().any(|b| b != b'0')
}

impl TraceContext {
    /// A new trace: used when a case opens without a caller-supplied `traceparent`.
    pub fn new_root() -> Self {
        TraceContext {
            trace_id: random_hex(16),
            span_id: random_hex(8),
            sampled: true,
            tracestate: None,
        }
    }

    /// A child span in the same trace: every hop after the opening.
    pub fn child(&self) -> Self {
        TraceContext {
            span_id: random_hex(8),
            ..self.clone()
        }
    }

    /// A span continuing `trace_id` (the case's) when the caller sent no usable context.
    pub fn continuing(trace_id: &str) -> Option<Self> {
        is_trace_id(trace_id).then(|| TraceContext {
            trace_id: trace_id.to_owned(),
            span_id: random_hex(8),
            sampled: true,
            tracestate: None,
        })
    }

    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Result<Self, TraceparentError> {
        let bad = |why| TraceparentError {
            value: traceparent.to_owned(),
            why,
        };
        let parts: Vec<&str> = traceparent.trim().split('-').collect();
        let [version, trace_id, span_id, flags, ..] = parts.as_slice() else {
            return Err(bad("expected four dash-separated fields"));
        };
        if !is_lower_hex(version, 2) || *version == "ff" {
            return Err(bad("bad version"));
        }
        // Version 00 has exactly four fields; later versions may append more.
        if *version == "00" && parts.len() != 4 {
            return Err(bad("version 00 has exactly four fields"));
        }
        if !is_trace_id(trace_id) {
            return Err(bad(
                "trace id must be 32 lower-case hex characters, not all zero",
            ));
        }
        if !is_span_id(span_id) {
            return Err(bad(
                "parent id must be 16 lower-case hex characters, not all zero",
            ));
        }
        if !is_lower_hex(flags, 2) {
            return Err(bad("flags must be 2 hex characters"));
        }
        let flags =
            u8::from_str_radix(flags, 16).map_err(|_| bad("flags must be 2 hex characters"))?;
        Ok(TraceContext {
            trace_id: (*trace_id).to_owned(),
            span_id: (*span_id).to_owned(),
            sampled: flags & 1 == 1,
            tracestate: tracestate
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned),
        })
    }

    pub fn traceparent(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_w3c_example_parses_and_prints_back() {
        let text = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let ctx = TraceContext::parse(text, Some("congo=t61rcWkgMzE")).expect("valid");
        assert_eq!(ctx.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert!(ctx.sampled);
        assert_eq!(ctx.traceparent(), text);
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        ] {
            assert!(TraceContext::parse(bad, None).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn children_keep_the_trace_and_change_the_span() {
        let root = TraceContext::new_root();
        let child = root.child();
        assert_eq!(child.trace_id, root.trace_id);
        assert_ne!(child.span_id, root.span_id);
        assert!(is_trace_id(&root.trace_id) && is_span_id(&child.span_id));
    }
}
