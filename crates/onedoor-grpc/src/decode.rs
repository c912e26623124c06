//! A request body prost cannot decode (a string field that is not UTF-8, a truncated message)
//! is the caller's mistake, but tonic answers it INTERNAL, which reads as the server's fault and
//! invites blind retries. [`name_bad_field`] turns that answer into INVALID_ARGUMENT naming the
//! field prost stopped at.

use tonic::{Code, Status};

/// How tonic's prost codec starts the message of a decode failure.
const PROST_PREFIX: &str = "failed to decode Protobuf message: ";

/// The field path and the reason in a prost decode message: prost lists `Message.field`
/// innermost first (`DocumentRef.name: OpenCaseRequest.documents: invalid string value…`), so
/// the path is read backwards into `documents.name`.
fn field_and_reason(message: &str) -> Option<(String, &str)> {
    let mut rest = message.strip_prefix(PROST_PREFIX)?;
    let mut path = Vec::new();
    while let Some((segment, after)) = rest.split_once(": ") {
        let Some((_, field)) = segment.split_once('.') else {
            break;
        };
        let is_name = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_');
        if !is_name(field) || segment.contains(' ') {
            break;
        }
        path.push(field);
        rest = after;
    }
    path.reverse();
    Some((path.join("."), rest))
}

/// Rewrites a trailers-only INTERNAL answer to a request prost could not decode as
/// INVALID_ARGUMENT; leaves every other answer alone.
pub fn name_bad_field(headers: &mut http::HeaderMap) {
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    if status.code() != Code::Internal {
        return;
    }
    let Some((field, reason)) = field_and_reason(status.message()) else {
        return;
    };
    let message = match (field.is_empty(), reason.contains("not UTF-8")) {
        (false, true) => format!("{field}: is not valid UTF-8; send text as UTF-8"),
        (false, false) => format!("{field}: does not decode: {reason}"),
        (true, _) => format!("the request does not decode as protobuf: {reason}"),
    };
    // Only a header map with no room left could refuse; the INTERNAL answer then stands.
    let _ = Status::invalid_argument(message).add_header(headers);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(message: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        Status::internal(message)
            .add_header(&mut headers)
            .expect("encodes");
        name_bad_field(&mut headers);
        headers
    }

    fn status(headers: &http::HeaderMap) -> (Code, String) {
        let status = Status::from_header_map(headers).expect("a status");
        (status.code(), status.message().to_owned())
    }

    #[test]
    fn a_string_that_is_not_utf8_names_its_field_path() {
        let headers = answer(
            "failed to decode Protobuf message: DocumentRef.name: OpenCaseRequest.documents: \
             invalid string value: data is not UTF-8 encoded",
        );
        assert_eq!(
            status(&headers),
            (
                Code::InvalidArgument,
                "documents.name: is not valid UTF-8; send text as UTF-8".into()
            )
        );
    }

    #[test]
    fn a_message_with_no_field_still_becomes_invalid_argument() {
        let headers = answer("failed to decode Protobuf message: buffer underflow");
        assert_eq!(
            status(&headers),
            (
                Code::InvalidArgument,
                "the request does not decode as protobuf: buffer underflow".into()
            )
        );
    }

    #[test]
    fn other_internal_errors_are_left_alone() {
        let headers = answer("the database is gone");
        assert_eq!(
            status(&headers),
            (Code::Internal, "the database is gone".into())
        );
    }
}
