//! NATS and JetStream failures by kind: the ones the bus and its callers act on differently
//! get a kind of their own; the server's JetStream error code and text ride along for the log.
//!
//! async-nats reports failures through a dozen error types; what they share is the JetStream
//! API error (with its code) somewhere in the source chain, or a kind named in the text. The
//! classification looks for the code first, since codes are the server's stable contract
//! (`server/errors.json` in nats-server), and for the text only when there is no code.

use std::fmt;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};

/// What went wrong talking to NATS, as far as a caller's next step is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatsErrorKind {
    /// JetStream 10071: the subject's last sequence is not the one the write expected (another
    /// write reached the case first).
    WrongLastSequence,
    /// JetStream 10164: a clustered stream's leader refused a write because another write on
    /// the same subject was still being replicated. Same meaning as 10071 for the case.
    ClusterWriteConflict,
    /// JetStream 10163: the leader cannot check an expected last subject sequence yet (it is
    /// catching up after an election); a retry shortly after succeeds.
    SequenceNotReady,
    /// JetStream 10180: a read required a minimum last sequence the answering replica has not
    /// reached.
    ReplicaBehind,
    /// JetStream 10059: the stream does not exist (not provisioned, or deleted).
    StreamNotFound,
    /// JetStream 10014: the consumer does not exist (not provisioned, or deleted).
    ConsumerNotFound,
    /// The server refused a subject to this identity (its NATS permissions).
    PermissionViolation,
    /// Nobody answered a request: no JetStream on the server, or the stream's leader is gone.
    NoResponders,
    /// No answer in time: a frozen server, a partition, or an overloaded cluster.
    TimedOut,
    /// Not connected, or the connection broke during the call.
    Connection,
    /// Anything else; the JetStream code, if any, is kept beside it.
    Other,
}

impl NatsErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NatsErrorKind::WrongLastSequence => "wrong last sequence",
            NatsErrorKind::ClusterWriteConflict => "cluster write conflict",
            NatsErrorKind::SequenceNotReady => "expected sequence not ready",
            NatsErrorKind::ReplicaBehind => "replica behind",
            NatsErrorKind::StreamNotFound => "stream not found",
            NatsErrorKind::ConsumerNotFound => "consumer not found",
            NatsErrorKind::PermissionViolation => "permission violation",
            NatsErrorKind::NoResponders => "no responders",
            NatsErrorKind::TimedOut => "timed out",
            NatsErrorKind::Connection => "connection",
            NatsErrorKind::Other => "other",
        }
    }

    /// The kind a JetStream API error code stands for.
    pub fn from_code(code: u64) -> NatsErrorKind {
        match ErrorCode(code) {
            ErrorCode::STREAM_WRONG_LAST_SEQUENCE => NatsErrorKind::WrongLastSequence,
            ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT => NatsErrorKind::ClusterWriteConflict,
            ErrorCode::STREAM_NOT_FOUND => NatsErrorKind::StreamNotFound,
            ErrorCode::CONSUMER_NOT_FOUND => NatsErrorKind::ConsumerNotFound,
            ErrorCode(SEQUENCE_NOT_READY) => NatsErrorKind::SequenceNotReady,
            ErrorCode(MIN_LAST_SEQUENCE) => NatsErrorKind::ReplicaBehind,
            _ => NatsErrorKind::Other,
        }
    }
}

/// JetStream 10163 (`JSStreamExpectedLastSeqPerSubjectNotReady`), unnamed in async-nats 0.51.
const SEQUENCE_NOT_READY: u64 = 10163;
/// JetStream 10180 (`JSStreamMinLastSeqErr`), unnamed in async-nats 0.51.
const MIN_LAST_SEQUENCE: u64 = 10180;

impl fmt::Display for NatsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a NATS failure and its JetStream error code, if the server gave one.
pub fn classify(error: &(dyn std::error::Error + 'static)) -> (NatsErrorKind, Option<u64>) {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(publish) = current.downcast_ref::<PublishError>()
            && publish.kind() == PublishErrorKind::StreamNotFound
        {
            // async-nats names a publish nobody answered (503 no responders) "no stream found
            // for given subject". Only a stream's leader listens on its subjects, so on a
            // cluster this is a leader election, over in seconds: an outage, not a missing
            // stream (which the case log would have found when it opened).
            return (NatsErrorKind::NoResponders, None);
        }
        if let Some(api) = current.downcast_ref::<async_nats::jetstream::Error>() {
            let code = api.error_code().0;
            return (NatsErrorKind::from_code(code), Some(code));
        }
        cause = current.source();
    }
    (NatsErrorKind::from_text(&chain_text(error)), None)
}

fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        text.push_str(": ");
        text.push_str(&current.to_string());
        cause = current.source();
    }
    text.to_lowercase()
}

impl NatsErrorKind {
    /// Where async-nats names a failure only in words (its error kinds print themselves), or
    /// where only the text of an error is at hand.
    pub fn from_text(text: &str) -> NatsErrorKind {
        let text = text.to_lowercase();
        let has = |needle: &str| text.contains(needle);
        if has("wrong last sequence") {
            NatsErrorKind::WrongLastSequence
        } else if has("no responders") {
            NatsErrorKind::NoResponders
        } else if has("timed out") || has("timeout") || has("deadline") {
            NatsErrorKind::TimedOut
        } else if has("permission") || has("authorization violation") {
            NatsErrorKind::PermissionViolation
        } else if has("stream not found") || has("no stream found") {
            NatsErrorKind::StreamNotFound
        } else if has("consumer not found") {
            NatsErrorKind::ConsumerNotFound
        } else if has("not connected")
            || has("disconnected")
            || has("broken pipe")
            || has("connection")
            || has("io error")
        {
            NatsErrorKind::Connection
        } else {
            NatsErrorKind::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jetstream_codes_name_their_kind() {
        assert_eq!(
            NatsErrorKind::from_code(10071),
            NatsErrorKind::WrongLastSequence
        );
        assert_eq!(
            NatsErrorKind::from_code(10164),
            NatsErrorKind::ClusterWriteConflict
        );
        assert_eq!(
            NatsErrorKind::from_code(10163),
            NatsErrorKind::SequenceNotReady
        );
        assert_eq!(
            NatsErrorKind::from_code(10180),
            NatsErrorKind::ReplicaBehind
        );
        assert_eq!(
            NatsErrorKind::from_code(10059),
            NatsErrorKind::StreamNotFound
        );
        assert_eq!(
            NatsErrorKind::from_code(10014),
            NatsErrorKind::ConsumerNotFound
        );
        assert_eq!(NatsErrorKind::from_code(10999), NatsErrorKind::Other);
    }

    #[test]
    fn a_publish_nobody_answered_is_an_outage_not_a_missing_stream() {
        let unanswered = PublishError::new(PublishErrorKind::StreamNotFound);
        assert_eq!(classify(&unanswered).0, NatsErrorKind::NoResponders);
        let late = PublishError::new(PublishErrorKind::TimedOut);
        assert_eq!(classify(&late).0, NatsErrorKind::TimedOut);
    }

    #[test]
    fn errors_without_a_code_are_known_by_their_words() {
        #[derive(Debug)]
        struct Words(&'static str);
        impl fmt::Display for Words {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Words {}
        let kind = |text| classify(&Words(text)).0;
        assert_eq!(
            kind("timed out: didn't receive reply"),
            NatsErrorKind::TimedOut
        );
        assert_eq!(kind("no responders"), NatsErrorKind::NoResponders);
        assert_eq!(kind("broken pipe"), NatsErrorKind::Connection);
        assert_eq!(kind("something new"), NatsErrorKind::Other);
    }
}
