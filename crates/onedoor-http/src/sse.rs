//! A server-streaming call (the inbox) as Server-Sent Events: each message is an `item` event
//! whose data is its JSON; a gRPC error ends the stream with an `error` event carrying the one
//! error shape. Dropping the response (the client went away) drops the gRPC stream, which
//! releases what it held exactly as a gRPC client's cancel does.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse as _, Response};
use futures::StreamExt as _;
use http_body_util::BodyExt as _;
use prost_reflect::MessageDescriptor;
use tonic::Code;
use tonic::body::Body;

use crate::error::CallError;
use crate::grpc_call::{Frames, status_in};
use crate::transcode;

struct Reader {
    body: Body,
    frames: Frames,
    output: MessageDescriptor,
    input: MessageDescriptor,
    traceparent: String,
}

/// The gRPC streaming `response` as an event stream; a refusal before the first message
/// (credentials, bad request, bus unreachable) is an ordinary JSON error instead.
pub fn events(
    response: http::Response<Body>,
    output: MessageDescriptor,
    input: MessageDescriptor,
    traceparent: String,
    keep_alive: Duration,
) -> Result<Response, CallError> {
    let (parts, body) = response.into_parts();
    if let Some(status) = status_in(&parts.headers)
        && status.code() != Code::Ok
    {
        return Err(CallError::grpc(status, &input));
    }
    let reader = Reader {
        body,
        frames: Frames::default(),
        output,
        input,
        traceparent,
    };
    let events = futures::stream::unfold(Some(reader), step).flat_map(futures::stream::iter);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response())
}

type Step = Option<(Vec<Result<Event, Infallible>>, Option<Reader>)>;

/// The events of the next body frame; `None` reader once the stream has ended.
async fn step(reader: Option<Reader>) -> Step {
    let mut reader = reader?;
    let frame = match reader.body.frame().await {
        None => return Some((Vec::new(), None)),
        Some(Err(status)) => {
            let error = CallError::grpc(status, &reader.input);
            return Some((vec![Ok(error_event(&error, &reader.traceparent))], None));
        }
        Some(Ok(frame)) => frame,
    };
    let data = match frame.into_data() {
        Ok(data) => data,
        Err(frame) => {
            let failed = frame
                .trailers_ref()
                .and_then(status_in)
                .filter(|status| status.code() != Code::Ok);
            let events = failed
                .map(|status| {
                    let error = CallError::grpc(status, &reader.input);
                    vec![Ok(error_event(&error, &reader.traceparent))]
                })
                .unwrap_or_default();
            return Some((events, None));
        }
    };
    reader.frames.push(&data);
    let mut events = Vec::new();
    loop {
        let item = reader
            .frames
            .next_message()
            .and_then(|message| match message {
                Some(m) => transcode::protobuf_to_json(&reader.output, &m).map(Some),
                None => Ok(None),
            });
        match item {
            Ok(Some(json)) => events.push(Ok(item_event(json))),
            Ok(None) => return Some((events, Some(reader))),
            Err(error) => {
                events.push(Ok(error_event(&error, &reader.traceparent)));
                return Some((events, None));
            }
        }
    }
}

fn item_event(json: Vec<u8>) -> Event {
    Event::default()
        .event("item")
        .data(String::from_utf8_lossy(&json))
}

fn error_event(error: &CallError, traceparent: &str) -> Event {
    Event::default()
        .event("error")
        .data(String::from_utf8_lossy(&error.body(traceparent)))
}
