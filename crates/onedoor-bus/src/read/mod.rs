//! Read confinement: agencies read cases only through the case reader, which answers only
//! about cases the asking agency is a party to (`docs/jetstream.md` §15).
//!
//! - [`service`]: [`CaseReader`], the service (`onedoor reader`, and a task of `onedoor up`).
//! - `client` (private): how a confined [`crate::CaseLog`] asks it.
//! - [`wire`]: the request and reply.

pub(crate) mod client;
pub mod service;
pub mod wire;

pub use service::{CaseReader, READER_CACHED_CASES};
pub use wire::{READ_SUBJECT_PREFIX, READER_QUEUE, read_subject};
