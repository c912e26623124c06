//! NATS JetStream plumbing for onedoor.
//!
//! # Layout
//!
//! - [`subjects`]: the contract names (stream `ONEDOOR`, `onedoor.v1.case.<case>.<from>.<to>`,
//!   inbox filters and consumer names), defined once.
//! - [`stream`]: [`StreamSettings`] and [`ensure_stream`], which creates the stream or reports
//!   how an existing one differs, never overwriting it.
//! - [`error`]: [`BusError`], the crate's one error type.

pub mod error;
pub mod stream;
pub mod subjects;

pub use error::BusError;
pub use stream::{EnsureOutcome, StreamSettings, ensure_stream};
