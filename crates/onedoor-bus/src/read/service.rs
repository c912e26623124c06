//! The case reader: the one service that may read the whole ONEDOOR stream on an agency's
//! behalf, and answers only about cases the agency is a party to.
//!
//! Why a service: NATS permissions are static per user, and a case becomes readable by an
//! agency only when the case's history says so (it opened the case, or was sent a task on it).
//! So agencies' NATS users get no stream reads at all (no direct get, no `STREAM.MSG.GET`, no
//! stream info, no consumer but their inbox), and ask here on `onedoor.v1.read.<AGENCY>`, a
//! subject only that agency's user may publish on: the broker vouches for who asks.
//!
//! Parties are decided on the *verified* history (see [`crate::verify`]): an agency that
//! publishes a forged event naming itself on someone else's case is quarantined and gains
//! nothing. "No such case" and "not a party" are different answers: case ids are random, and a
//! front office opening an id that exists must be told so rather than retry for ever.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use async_nats::Subscriber;
use bytes::Bytes;
use futures::StreamExt as _;
use hashlink::LruCache;
use onedoor_case::{AgencyCode, CaseId, LiveRegistry, Registry};
use prost::Message as _;
use tokio::sync::Semaphore;

use super::wire::{
    READ_SUBJECT_PREFIX, READER_QUEUE, REPLY_BUDGET_BYTES, ReadReply, ReadRequest, ReadStatus,
    WireMessage, freshness_from_wire,
};
use crate::case_log::CaseLog;
use crate::error::BusError;
use crate::replica_read::Freshness;
use crate::snapshot::CaseSnapshot;
use crate::verify::{RawMessage, subject_case_id};

/// Cases whose raw history a reader keeps, so that the next question about a case reads only
/// what was appended since.
pub const READER_CACHED_CASES: usize = 4096;

/// Requests answered at once; more wait for a slot (the subscription buffers them).
const CONCURRENT_ANSWERS: usize = 256;

/// The newest messages a cached case keeps, so that the usual question ("what came after the
/// step I know") is answered without reading the stream again, while a case with a long
/// history costs the reader a bounded amount of memory.
const TAIL_MESSAGES: usize = 32;

/// One case as the reader knows it: its verified fold (for the parties) and its newest messages.
#[derive(Default)]
struct Entry {
    snapshot: CaseSnapshot,
    tail: VecDeque<RawMessage>,
    /// `tail` starts at the case's first message.
    complete: bool,
    /// The registry generation the snapshot was verified under; another one reads it again.
    generation: u64,
}

impl Entry {
    fn last(&self) -> u64 {
        self.snapshot.tip.last_sequence
    }

    fn extend(&mut self, case_id: CaseId, newer: Vec<RawMessage>, registry: Option<&Registry>) {
        for message in newer {
            self.snapshot.push_raw(case_id, message.clone(), registry);
            if self.tail.len() == TAIL_MESSAGES {
                self.tail.pop_front();
                self.complete = false;
            }
            self.tail.push_back(message);
        }
    }

    /// The cached messages after `after`, if the tail reaches back to it.
    fn after(&self, after: u64) -> Option<Vec<RawMessage>> {
        let start = if after == 0 {
            self.complete.then_some(0)?
        } else {
            self.tail.iter().position(|m| m.sequence == after)? + 1
        };
        Some(self.tail.iter().skip(start).cloned().collect())
    }
}

/// Answers agencies' reads (see the module documentation).
pub struct CaseReader {
    log: CaseLog,
    registry: Option<LiveRegistry>,
    cases: Mutex<LruCache<CaseId, Arc<tokio::sync::Mutex<Entry>>>>,
}

impl CaseReader {
    /// `log` must read the stream directly (the reader's NATS user may); `registry` holds the
    /// keys every message is verified under, as the adapters are configured (`None`: a
    /// development bus that signs nothing; everything but signatures is still checked).
    /// A [`LiveRegistry`] swapped while the reader runs applies from the next request.
    pub fn new(log: CaseLog, registry: Option<LiveRegistry>, cached_cases: usize) -> Self {
        CaseReader {
            log,
            registry,
            cases: Mutex::new(LruCache::new(cached_cases.max(1))),
        }
    }

    /// Subscribes to `onedoor.v1.read.*` in the reader queue group (the server knows of the
    /// subscription when this returns, so a request sent afterwards is answered), then answers
    /// in a task until the connection closes for good or the task is aborted.
    pub async fn listen(
        self: Arc<Self>,
        client: async_nats::Client,
    ) -> Result<tokio::task::JoinHandle<()>, BusError> {
        let subject = format!("{READ_SUBJECT_PREFIX}.*");
        let requests = client
            .queue_subscribe(subject.clone(), READER_QUEUE.to_owned())
            .await
            .map_err(|e| BusError::nats_on("subscribing to case reads", &subject, &e))?;
        client
            .flush()
            .await
            .map_err(|e| BusError::nats_on("subscribing to case reads", &subject, &e))?;
        tracing::info!(subject, "case reader answering");
        Ok(tokio::spawn(self.answer_all(client, requests)))
    }

    async fn answer_all(self: Arc<Self>, client: async_nats::Client, mut requests: Subscriber) {
        let slots = Arc::new(Semaphore::new(CONCURRENT_ANSWERS));
        while let Some(message) = requests.next().await {
            let Some(reply_to) = message.reply.clone() else {
                continue;
            };
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let reader = self.clone();
            let client = client.clone();
            tokio::spawn(async move {
                let reply = reader.answer(&message.subject, &message.payload).await;
                if let Err(error) = client
                    .publish(reply_to, Bytes::from(reply.encode_to_vec()))
                    .await
                {
                    tracing::debug!(%error, "could not send a read reply");
                }
                drop(permit);
            });
        }
        tracing::info!("case reader stopped: the subscription ended");
    }

    /// The reply to one request received on `subject`.
    pub async fn answer(&self, subject: &str, payload: &[u8]) -> ReadReply {
        let asker = subject
            .strip_prefix(READ_SUBJECT_PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|code| AgencyCode::parse(code).ok());
        let Some(asker) = asker else {
            return ReadReply::refused(ReadStatus::BadRequest, format!("{subject}: no agency"));
        };
        let request = match ReadRequest::decode(payload) {
            Ok(request) => request,
            Err(e) => return ReadReply::refused(ReadStatus::BadRequest, e.to_string()),
        };
        let Some(freshness) = freshness_from_wire(request.freshness, request.at_least) else {
            return ReadReply::refused(ReadStatus::BadRequest, "unknown freshness");
        };
        let answered = if request.case_id.is_empty() {
            self.message_at(&asker, request.sequence, freshness).await
        } else {
            match CaseId::parse(&request.case_id) {
                Ok(case_id) => self.case(&asker, case_id, request.after, freshness).await,
                Err(e) => return ReadReply::refused(ReadStatus::BadRequest, e.to_string()),
            }
        };
        answered.unwrap_or_else(|error| {
            tracing::warn!(%asker, %error, "could not answer a case read");
            ReadReply::refused(ReadStatus::Unavailable, error.to_string())
        })
    }

    /// The case's messages after `after`, if `asker` is a party.
    async fn case(
        &self,
        asker: &AgencyCode,
        case_id: CaseId,
        after: u64,
        freshness: Freshness,
    ) -> Result<ReadReply, BusError> {
        let slot = self.slot(case_id);
        let mut entry = slot.lock().await;
        self.refresh(case_id, &mut entry, freshness).await?;
        // A replica behind the leader may not hold the event that made the asker a party
        // (a hand-off it is acting on at once): a refusal is decided on the leader's state.
        if entry.last() > 0 && !entry.snapshot.has_party(asker) && freshness != Freshness::Leader {
            self.refresh(case_id, &mut entry, Freshness::Leader).await?;
        }
        if entry.last() == 0 {
            return Ok(ReadReply::refused(ReadStatus::Absent, ""));
        }
        if !entry.snapshot.has_party(asker) {
            tracing::info!(%asker, %case_id, "refused a read of a case the agency is not a party to");
            return Ok(ReadReply::refused(ReadStatus::NotParty, ""));
        }
        if let Some(newer) = entry.after(after) {
            return Ok(page(&newer, after == 0));
        }
        // Older than the tail: read it again (the asker's first look at a long case).
        let last = entry.last();
        drop(entry);
        let (whole, messages) = self
            .log
            .raw_since(case_id, after, Freshness::Replica(last))
            .await?;
        Ok(page(&messages, whole || after == 0))
    }

    /// Brings `entry` up to the case's last message (as fresh as asked).
    async fn refresh(
        &self,
        case_id: CaseId,
        entry: &mut Entry,
        freshness: Freshness,
    ) -> Result<(), BusError> {
        let (generation, registry) = match &self.registry {
            Some(live) => {
                let (generation, registry) = live.current_with_generation();
                (generation, Some(registry))
            }
            None => (0, None),
        };
        // Parties decided under the previous registry may differ (a transfer it quarantined).
        let known = if entry.generation == generation {
            entry.last()
        } else {
            0
        };
        let (whole, newer) = self.log.raw_since(case_id, known, freshness).await?;
        if whole || known == 0 {
            *entry = Entry {
                complete: true,
                generation,
                ..Entry::default()
            };
        }
        entry.extend(case_id, newer, registry.as_deref());
        Ok(())
    }

    /// One message by stream sequence: to its writer or addressee, or to a party of its case.
    async fn message_at(
        &self,
        asker: &AgencyCode,
        sequence: u64,
        freshness: Freshness,
    ) -> Result<ReadReply, BusError> {
        let Some(message) = self.log.raw_at(sequence, freshness).await? else {
            return Ok(ReadReply::refused(ReadStatus::Absent, ""));
        };
        let named = message
            .subject
            .split('.')
            .skip(4)
            .any(|token| token == asker.as_str());
        let party = match subject_case_id(&message.subject) {
            _ if named => true,
            Some(case_id) => {
                let slot = self.slot(case_id);
                let mut entry = slot.lock().await;
                self.refresh(case_id, &mut entry, Freshness::Replica(sequence))
                    .await?;
                entry.snapshot.has_party(asker)
            }
            None => false,
        };
        if !party {
            return Ok(ReadReply::refused(ReadStatus::NotParty, ""));
        }
        Ok(page(std::slice::from_ref(&message), false))
    }

    fn slot(&self, case_id: CaseId) -> Arc<tokio::sync::Mutex<Entry>> {
        let mut cases = self.cases.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = cases.get(&case_id) {
            return slot.clone();
        }
        let slot = Arc::new(tokio::sync::Mutex::new(Entry::default()));
        cases.insert(case_id, slot.clone());
        slot
    }
}

/// `raw` up to the reply budget; `whole`: it starts at the case's first message.
fn page(raw: &[RawMessage], whole: bool) -> ReadReply {
    let mut bytes = 0;
    let mut messages = Vec::new();
    let mut more = false;
    for message in raw {
        let size = message.payload.len() + message.subject.len() + 16;
        if !messages.is_empty() && bytes + size > REPLY_BUDGET_BYTES {
            more = true;
            break;
        }
        bytes += size;
        messages.push(WireMessage::from(message));
    }
    ReadReply {
        status: ReadStatus::Ok as i32,
        error: String::new(),
        whole,
        messages,
        more,
    }
}
