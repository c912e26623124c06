//! The one error type of the bus crate.

use async_nats::jetstream::context::{CreateStreamError, GetStreamError};

use crate::subjects::TokenProblem;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A [`crate::StreamSettings`] value breaks the contract (e.g. a duplicate window under 24 h).
    #[error("invalid stream settings: {field} {reason}")]
    InvalidSettings { field: &'static str, reason: String },

    /// The stream exists with a configuration onedoor did not ask for. Nothing was changed:
    /// an operator decides (each difference reads `field: existing X, wanted Y`).
    #[error(
        "stream {stream} exists with a conflicting configuration ({}); it was left unchanged",
        differences.join("; ")
    )]
    StreamConflict {
        stream: String,
        differences: Vec<String>,
    },

    #[error("looking up stream {stream}: {source}")]
    GetStream {
        stream: String,
        #[source]
        source: GetStreamError,
    },

    #[error("creating stream {stream}: {source}")]
    CreateStream {
        stream: String,
        #[source]
        source: CreateStreamError,
    },

    #[error("{field} {value:?} cannot be a subject token: it {problem}")]
    InvalidSubjectToken {
        field: &'static str,
        value: String,
        problem: TokenProblem,
    },
}
