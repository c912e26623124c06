//! The crate's errors, the one JSON error shape and the one table from gRPC codes to HTTP
//! statuses. An error from the gRPC call keeps its code and message unchanged; errors found by
//! the JSON face itself (the body, the route) get the code the gRPC face would give the same
//! mistake.

use http::StatusCode;
use prost_reflect::MessageDescriptor;
use serde::Serialize;
use tonic::Code;

/// What stops the JSON face from being built (at start, never per call).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("the contract's descriptors do not decode: {0}")]
    Descriptors(String),

    #[error("service {0} is not in the contract's descriptors")]
    UnknownService(String),

    #[error("TLS, {0}")]
    Tls(String),
}

/// Why one JSON call failed; [`CallError::code`] and [`http_status`] say how it is answered.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(
        "no method {method} in {service}; POST to {prefix}<Method> with one of: {known} (the document is at /openapi.json)",
        prefix = crate::PATH_PREFIX
    )]
    NoSuchMethod {
        method: String,
        service: String,
        known: String,
    },

    #[error("{method} {path} is not served; calls are POST {prefix}<Method>", prefix = crate::PATH_PREFIX)]
    NoSuchRoute { method: String, path: String },

    #[error("{path} does not answer {method}; calls are POST {prefix}<Method>, the document GET {doc}", prefix = crate::PATH_PREFIX, doc = crate::OPENAPI_PATH)]
    WrongMethod { method: String, path: String },

    #[error("content-type {found:?} is not JSON; send `Content-Type: application/json`")]
    NotJson { found: String },

    #[error("the body is larger than {max} bytes")]
    TooLarge { max: usize },

    #[error("the body did not arrive within {seconds} s")]
    BodyTimeout { seconds: u64 },

    #[error("the body could not be read: {0}")]
    BodyRead(String),

    #[error("the body is not JSON: {0}")]
    Malformed(String),

    /// A value of the wrong type, an unknown field, a bad enum name: `field` is its path.
    #[error("{}{why}", field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
    BadValue { field: Option<String>, why: String },

    #[error("the call did not finish within {seconds} s; retry with the same idempotencyKey")]
    CallTimeout { seconds: u64 },

    /// The gRPC answer itself, as the gRPC face gives it.
    #[error("{}", .status.message())]
    Grpc {
        status: tonic::Status,
        field: Option<String>,
    },

    /// The in-process call answered something that is not a gRPC message (our fault).
    #[error("the gRPC answer could not be read: {0}")]
    Answer(String),
}

impl CallError {
    pub fn code(&self) -> Code {
        match self {
            CallError::NoSuchMethod { .. } | CallError::NoSuchRoute { .. } => Code::NotFound,
            CallError::WrongMethod { .. } => Code::Unimplemented,
            CallError::NotJson { .. }
            | CallError::Malformed(_)
            | CallError::BadValue { .. }
            | CallError::BodyRead(_) => Code::InvalidArgument,
            // What the gRPC face answers a message over its limit.
            CallError::TooLarge { .. } => Code::OutOfRange,
            CallError::BodyTimeout { .. } | CallError::CallTimeout { .. } => Code::DeadlineExceeded,
            CallError::Grpc { status, .. } => status.code(),
            CallError::Answer(_) => Code::Internal,
        }
    }

    /// The HTTP status: the table's, except where HTTP has a more exact word for the mistake.
    pub fn http_status(&self) -> StatusCode {
        match self {
            CallError::WrongMethod { .. } => StatusCode::METHOD_NOT_ALLOWED,
            CallError::NotJson { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            CallError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            CallError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            other => http_status(other.code()),
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            CallError::BadValue { field, .. } | CallError::Grpc { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// A gRPC status, with the request field its message starts with (as the JSON name).
    pub fn grpc(status: tonic::Status, input: &MessageDescriptor) -> Self {
        let field = crate::transcode::field_named_in(status.message(), input);
        CallError::Grpc { status, field }
    }

    /// The one JSON error shape.
    pub fn body(&self, traceparent: &str) -> Vec<u8> {
        let message = self.to_string();
        let body = ErrorBody {
            code: code_name(self.code()),
            message: &message,
            field: self.field(),
            traceparent,
        };
        // Serialising strings into a Vec cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    traceparent: &'a str,
}

/// The HTTP status of each gRPC code, as `google/rpc/code.proto` maps them, so an HTTP client
/// (retries on 503, re-authentication on 401) behaves as a gRPC one would.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // nginx's "client closed request": nobody reads it, but logs should not say 500.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The canonical name of a gRPC code, as `grpc-status` documentation and every gRPC library
/// spell it (`INVALID_ARGUMENT`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Every code, for the OpenAPI document's error schema.
pub const CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_name_and_an_error_status() {
        for code in CODES {
            assert!(!code_name(code).is_empty());
            let status = http_status(code);
            assert_eq!(status.is_success(), code == Code::Ok, "{code:?}");
        }
    }
}
