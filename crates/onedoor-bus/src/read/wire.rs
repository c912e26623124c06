//! The case reader's request and reply, protobuf-encoded (prost) like the events themselves.
//! Internal to the bus: only onedoor processes speak it, but it is written down in
//! `docs/jetstream.md` (§15) for operators reading a capture.

use crate::replica_read::Freshness;
use crate::verify::RawMessage;

/// `onedoor.v1.read.<AGENCY>`: where an agency asks the case reader. An agency's NATS user may
/// publish only under its own code, so the reader learns who asks from the subject, which the
/// broker vouches for, never from the body.
pub const READ_SUBJECT_PREFIX: &str = "onedoor.v1.read";

/// The queue group every reader joins: each request is answered by one of them.
pub const READER_QUEUE: &str = "onedoor-reader";

/// What a reader sends at most in one reply, so a reply stays under the server's default
/// `max_payload` (1 MiB) with room for headers; a longer history comes in pages.
pub const REPLY_BUDGET_BYTES: usize = 512 * 1024;

/// How fresh the answer must be (see `Freshness`).
pub(crate) const FRESH_REPLICA: u32 = 0;
pub(crate) const FRESH_PRESENT: u32 = 1;
pub(crate) const FRESH_LEADER: u32 = 2;

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadRequest {
    /// The case to read; empty when asking for one message by `sequence`.
    #[prost(string, tag = "1")]
    pub case_id: String,
    /// The messages after this stream sequence (a sequence in the case's chain, or 0 for all).
    #[prost(uint64, tag = "2")]
    pub after: u64,
    /// The answer must include this sequence (one the asker wrote or was delivered).
    #[prost(uint64, tag = "3")]
    pub at_least: u64,
    #[prost(uint32, tag = "4")]
    pub freshness: u32,
    /// One message by stream sequence (a stuck delivery, a deduplicated write's original).
    #[prost(uint64, tag = "5")]
    pub sequence: u64,
}

/// Whether the reader answered, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum ReadStatus {
    Ok = 0,
    /// The case has no messages (or, asked by sequence, there is no such message).
    Absent = 4,
    /// The asker is not a party to the case.
    NotParty = 1,
    /// The request itself is malformed.
    BadRequest = 2,
    /// The reader could not read the stream (outage, timeout); retry.
    Unavailable = 3,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadReply {
    #[prost(enumeration = "ReadStatus", tag = "1")]
    pub status: i32,
    #[prost(string, tag = "2")]
    pub error: String,
    /// The messages are the whole case from its start: `after` was not in its chain.
    #[prost(bool, tag = "3")]
    pub whole: bool,
    #[prost(message, repeated, tag = "4")]
    pub messages: Vec<WireMessage>,
    /// The reply stopped at [`REPLY_BUDGET_BYTES`]: ask again after the last message.
    #[prost(bool, tag = "5")]
    pub more: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WireMessage {
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    #[prost(string, tag = "2")]
    pub subject: String,
    #[prost(bytes = "bytes", tag = "3")]
    pub payload: bytes::Bytes,
}

impl From<&RawMessage> for WireMessage {
    fn from(message: &RawMessage) -> Self {
        WireMessage {
            sequence: message.sequence,
            subject: message.subject.clone(),
            payload: message.payload.clone(),
        }
    }
}

impl From<WireMessage> for RawMessage {
    fn from(message: WireMessage) -> Self {
        RawMessage {
            sequence: message.sequence,
            subject: message.subject,
            payload: message.payload,
        }
    }
}

pub(crate) fn freshness_to_wire(freshness: Freshness) -> (u32, u64) {
    match freshness {
        Freshness::Replica(floor) => (FRESH_REPLICA, floor),
        Freshness::Present(floor) => (FRESH_PRESENT, floor),
        Freshness::Leader => (FRESH_LEADER, 0),
    }
}

pub(crate) fn freshness_from_wire(kind: u32, floor: u64) -> Option<Freshness> {
    match kind {
        FRESH_REPLICA => Some(Freshness::Replica(floor)),
        FRESH_PRESENT => Some(Freshness::Present(floor)),
        FRESH_LEADER => Some(Freshness::Leader),
        _ => None,
    }
}

/// The subject `agency` asks on.
pub fn read_subject(agency: &str) -> String {
    format!("{READ_SUBJECT_PREFIX}.{agency}")
}

impl ReadReply {
    pub(crate) fn refused(status: ReadStatus, error: impl Into<String>) -> Self {
        ReadReply {
            status: status as i32,
            error: error.into(),
            whole: false,
            messages: Vec::new(),
            more: false,
        }
    }
}
