//! An agency's side of the case reader: how a confined adapter reads the cases it is a party to
//! (see [`super::service`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use hashlink::LruCache;
use onedoor_case::{AgencyCode, CaseId};
use prost::Message as _;

use super::wire::{ReadReply, ReadRequest, ReadStatus, freshness_to_wire, read_subject};
use crate::error::BusError;
use crate::nats_error::NatsErrorKind;
use crate::replica_read::Freshness;
use crate::verify::RawMessage;

/// Cases whose known last sequence is remembered (as on the stream path).
const KNOWN_CASES: usize = 65_536;

/// The longest history a client accepts in pages, as a guard against a reader that answers
/// `more` for ever.
const MAX_PAGES: usize = 10_000;

#[derive(Clone)]
pub(crate) struct ReadClient {
    client: async_nats::Client,
    agency: AgencyCode,
    subject: String,
    timeout: Duration,
    known: Arc<Mutex<LruCache<CaseId, u64>>>,
    leader_reads: Arc<AtomicU64>,
}

impl ReadClient {
    pub fn new(client: async_nats::Client, agency: AgencyCode, timeout: Duration) -> Self {
        ReadClient {
            subject: read_subject(agency.as_str()),
            client,
            agency,
            timeout,
            known: Arc::new(Mutex::new(LruCache::new(KNOWN_CASES))),
            leader_reads: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn saw(&self, case_id: CaseId, sequence: u64) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let floor = known.get(&case_id).copied().unwrap_or(0).max(sequence);
        known.insert(case_id, floor);
    }

    pub fn known(&self, case_id: &CaseId) -> u64 {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known.get(case_id).copied().unwrap_or(0)
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

    async fn ask(&self, request: &ReadRequest) -> Result<ReadReply, BusError> {
        if request.freshness == super::wire::FRESH_LEADER {
            self.leader_reads.fetch_add(1, Ordering::Relaxed);
        }
        let asked = async_nats::Request::new()
            .payload(Bytes::from(request.encode_to_vec()))
            .timeout(Some(self.timeout));
        let message = self
            .client
            .send_request(self.subject.clone(), asked)
            .await
            .map_err(|e| BusError::nats("asking the case reader (`onedoor reader`)", &e))?;
        ReadReply::decode(message.payload).map_err(|e| BusError::ReadRefused {
            why: format!("the case reader's answer does not decode: {e}"),
        })
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
