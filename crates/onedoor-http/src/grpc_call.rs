//! One in-process gRPC call through the server's own routes: the JSON face builds exactly the
//! request a gRPC client would send (same path, same `authorization` and `traceparent`
//! headers, same connection facts such as the TLS client certificate), so the call meets the
//! same credentials check, size limit, validation and error texts.

use std::convert::Infallible;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tonic::body::Body;
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;

use crate::error::CallError;

/// The server's routes, as the JSON face calls them.
pub type GrpcService = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, Infallible>;

/// Headers that describe the JSON exchange itself, not the call: never passed on.
const HOP_HEADERS: [HeaderName; 7] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::ACCEPT,
    header::ACCEPT_ENCODING,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::TE,
];

/// Calls `/{service}/{method}` with one protobuf `message`, carrying the caller's headers and
/// connection facts (`parts`).
pub async fn call(
    grpc: GrpcService,
    mut parts: http::request::Parts,
    path: &str,
    message: &[u8],
) -> Result<http::Response<Body>, CallError> {
    for name in HOP_HEADERS {
        parts.headers.remove(name);
    }
    // gRPC metadata names its own encodings; an HTTP client's would confuse the codec.
    parts.headers.remove("grpc-encoding");
    parts.headers.remove("grpc-accept-encoding");
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    parts
        .headers
        .insert(header::TE, HeaderValue::from_static("trailers"));
    parts.method = http::Method::POST;
    parts.version = http::Version::HTTP_2;
    parts.uri = path
        .parse()
        .map_err(|e: http::uri::InvalidUri| CallError::Answer(e.to_string()))?;
    let request =
        http::Request::from_parts(parts, Body::new(http_body_util::Full::new(frame(message))));
    let Ok(response) = grpc.oneshot(request).await;
    Ok(response)
}

/// A gRPC length-prefixed message: not compressed, 4-byte big-endian length, the bytes.
fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    // The body limit keeps a message far below 4 GiB.
    framed.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    framed.put_slice(message);
    framed.freeze()
}

/// Messages out of a gRPC response body, as its data frames arrive.
#[derive(Default)]
pub struct Frames {
    buffer: BytesMut,
}

impl Frames {
    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// The next whole message, if one has arrived.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, CallError> {
        if self.buffer.len() < 5 {
            return Ok(None);
        }
        if self.buffer[0] != 0 {
            return Err(CallError::Answer(
                "a compressed message was not asked for".into(),
            ));
        }
        let length = u32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]) as usize;
        if self.buffer.len() < 5 + length {
            return Ok(None);
        }
        self.buffer.advance(5);
        Ok(Some(self.buffer.split_to(length).freeze()))
    }
}

/// The gRPC status in `headers` (trailers, or the headers of a trailers-only answer).
pub fn status_in(headers: &HeaderMap) -> Option<tonic::Status> {
    tonic::Status::from_header_map(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_out_whole_however_the_bytes_are_split() -> Result<(), CallError> {
        let framed = [frame(b"first"), frame(b""), frame(b"third one")].concat();
        let mut frames = Frames::default();
        let mut out = Vec::new();
        for chunk in framed.chunks(3) {
            frames.push(chunk);
            while let Some(message) = frames.next_message()? {
                out.push(message);
            }
        }
        assert_eq!(out, [&b"first"[..], b"", b"third one"]);
        assert!(frames.buffer.is_empty());
        Ok(())
    }
}
