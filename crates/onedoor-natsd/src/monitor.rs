//! A minimal HTTP/1.0 GET for nats-server's monitoring endpoint (`/healthz`, `/jsz`, …).
//!
//! Why hand-written: the monitoring port is plain HTTP on loopback, we send one fixed kind of
//! request and read one small response that the server closes after (HTTP/1.0, no keep-alive,
//! no TLS, no redirects). An HTTP client stack (hyper + hyper-util, or reqwest) would cost more
//! build time on the 2-core CI machine than this whole crate.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::NatsdError;

/// One request may take this long end to end; the server answers in microseconds when alive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Responses larger than this are cut (a `/jsz` of a test server is a few KiB).
const MAX_RESPONSE: u64 = 4 << 20;

/// A monitoring response: the status code and the body as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorResponse {
    pub status: u16,
    pub body: String,
}

impl MonitorResponse {
    pub fn is_ok(&self) -> bool {
        self.status == 200
    }
}

/// `GET http://{addr}{path_and_query}`.
pub async fn get(addr: &str, path_and_query: &str) -> Result<MonitorResponse, NatsdError> {
    let fail = |source: std::io::Error| NatsdError::Monitor {
        addr: addr.to_owned(),
        path: path_and_query.to_owned(),
        source,
    };
    let raw = tokio::time::timeout(REQUEST_TIMEOUT, exchange(addr, path_and_query))
        .await
        .map_err(|_| {
            fail(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out",
            ))
        })?
        .map_err(fail)?;
    parse_response(&raw)
        .map_err(|what| fail(std::io::Error::new(std::io::ErrorKind::InvalidData, what)))
}

async fn exchange(addr: &str, path_and_query: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path_and_query} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE).read_to_end(&mut raw).await?;
    Ok(raw)
}

fn parse_response(raw: &[u8]) -> Result<MonitorResponse, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {} bytes", raw.len()))?;
    let status_line = head.lines().next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    Ok(MonitorResponse {
        status,
        body: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_body_are_read_from_a_response() {
        let raw = b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n{\"status\":\"unavailable\"}";
        let got = parse_response(raw).expect("parses");
        assert_eq!(got.status, 503);
        assert_eq!(got.body, "{\"status\":\"unavailable\"}");
        assert!(!got.is_ok());
    }

    #[test]
    fn a_truncated_response_is_an_error() {
        assert!(parse_response(b"HTTP/1.0 200 OK\r\nContent-").is_err());
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
    }
}
