//! An agency's side of the case reader: how a confined adapter reads the cases it is a party to
//! (see [`super::service`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use onedoor_case::{AgencyCode, CaseId};
use prost::Message as _;

use super::wire::{ReadReply, ReadRequest, ReadStatus, freshness_to_wire, read_subject};
use crate::error::BusError;
use crate::nats_error::NatsErrorKind;
use crate::replica_read::{Freshness, KnownSequences};
use crate::verify::RawMessage;

/// The shortest wait for one ask (a quarter of the log's timeout otherwise).
const ATTEMPT_FLOOR: Duration = Duration::from_millis(500);

/// The pause before asking again when no reader answered.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The longest history a client accepts in pages, as a guard against a reader that answers
/// `more` for ever.
const MAX_PAGES: usize = 10_000;

#[derive(Clone)]
pub(crate) struct ReadClient {
    client: async_nats::Client,
    agency: AgencyCode,
    subject: String,
    timeout: Duration,
    known: KnownSequences,
    leader_reads: Arc<AtomicU64>,
}

impl ReadClient {
    pub fn new(client: async_nats::Client, agency: AgencyCode, timeout: Duration) -> Self {
        ReadClient {
            subject: read_subject(agency.as_str()),
            client,
            agency,
            timeout,
            known: KnownSequences::new(),
            leader_reads: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn saw(&self, case_id: CaseId, sequence: u64) {
        self.known.saw(case_id, sequence);
    }

    pub fn known(&self, case_id: &CaseId) -> u64 {
        self.known.known(case_id)
    }

    pub fn leader_reads(&self) -> u64 {
        self.leader_reads.load(Ordering::Relaxed)
    }

    /// The case's messages after `after`: `(true, all)` when `after` was not in its chain.
    /// A case that does not exist has none; one the agency is not a party to is
    /// [`BusError::NotParty`].
    pub async fn since(
        &self,
        case_id: CaseId,
        after: u64,
        freshness: Freshness,
    ) -> Result<(bool, Vec<RawMessage>), BusError> {
        let (kind, at_least) = freshness_to_wire(freshness);
        let mut request = ReadRequest {
            case_id: case_id.to_string(),
            after,
            at_least,
            freshness: kind,
            sequence: 0,
        };
        let mut whole = None;
        let mut messages: Vec<RawMessage> = Vec::new();
        for _ in 0..MAX_PAGES {
            let reply = self.ask(&request).await?;
            match ReadStatus::try_from(reply.status) {
                Ok(ReadStatus::Ok) => {}
                Ok(ReadStatus::Absent) => return Ok((after != 0, Vec::new())),
                _ => return Err(self.refusal(Some(case_id), reply)),
            }
            whole.get_or_insert(reply.whole);
            messages.extend(reply.messages.into_iter().map(RawMessage::from));
            if !reply.more {
                return Ok((whole.unwrap_or(false), messages));
            }
            request.after = messages.last().map_or(request.after, |m| m.sequence);
        }
        Err(BusError::ReadRefused {
            why: format!("case {case_id}: the reader kept answering with more pages"),
        })
    }

    /// The message at stream `sequence`, if the agency may read it (it wrote it, was sent it,
    /// or is a party to its case); `None` otherwise or when there is none.
    pub async fn at(
        &self,
        sequence: u64,
        freshness: Freshness,
    ) -> Result<Option<RawMessage>, BusError> {
        let (kind, at_least) = freshness_to_wire(freshness);
        let request = ReadRequest {
            case_id: String::new(),
            after: 0,
            at_least: at_least.max(sequence),
            freshness: kind,
            sequence,
        };
        let reply = self.ask(&request).await?;
        match ReadStatus::try_from(reply.status) {
            Ok(ReadStatus::Ok) => Ok(reply.messages.into_iter().next().map(RawMessage::from)),
            Ok(ReadStatus::Absent | ReadStatus::NotParty) => Ok(None),
            _ => Err(self.refusal(None, reply)),
        }
    }

    /// One request, asked again while no reader answers within a short attempt, until the
    /// log's timeout: a reader whose server froze still holds its queue subscription in the
    /// cluster's view for a while, and the cluster picks among the group's members at random,
    /// so a second ask usually reaches a live reader (`docs/jetstream.md` §15).
    async fn ask(&self, request: &ReadRequest) -> Result<ReadReply, BusError> {
        if request.freshness == super::wire::FRESH_LEADER {
            self.leader_reads.fetch_add(1, Ordering::Relaxed);
        }
        let payload = Bytes::from(request.encode_to_vec());
        let deadline = tokio::time::Instant::now() + self.timeout;
        let attempt = (self.timeout / 4).max(ATTEMPT_FLOOR);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let asked = async_nats::Request::new()
                .payload(payload.clone())
                .timeout(Some(attempt.min(left).max(Duration::from_millis(1))));
            match self.client.send_request(self.subject.clone(), asked).await {
                Ok(message) => {
                    return ReadReply::decode(message.payload).map_err(|e| BusError::ReadRefused {
                        why: format!("the case reader's answer does not decode: {e}"),
                    });
                }
                Err(err) => {
                    let failed = BusError::nats("asking the case reader (`onedoor reader`)", &err);
                    let retry = matches!(
                        &failed,
                        BusError::Nats {
                            kind: NatsErrorKind::TimedOut | NatsErrorKind::NoResponders,
                            ..
                        }
                    );
                    if !retry || tokio::time::Instant::now() + RETRY_PAUSE >= deadline {
                        return Err(failed);
                    }
                    tracing::debug!(error = %failed, "no case reader answered; asking again");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    fn refusal(&self, case_id: Option<CaseId>, reply: ReadReply) -> BusError {
        match ReadStatus::try_from(reply.status) {
            Ok(ReadStatus::NotParty) => BusError::NotParty {
                case_id: case_id.map(|c| c.to_string()).unwrap_or_default(),
                agency: self.agency.to_string(),
            },
            Ok(ReadStatus::Unavailable) => BusError::Nats {
                action: "reading a case through the case reader",
                kind: match NatsErrorKind::from_text(&reply.error) {
                    NatsErrorKind::Other => NatsErrorKind::TimedOut,
                    kind => kind,
                },
                code: None,
                message: reply.error,
            },
            _ => BusError::ReadRefused {
                why: format!("the case reader refused the request: {}", reply.error),
            },
        }
    }
}
