//! The office node's streams and the office's side of a write: decide on what the office knows of the
//! case, store the signed event in the outbox.

use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::jetstream::stream::DirectGetErrorKind;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use onedoor_case::{AgencyCode, CaseId, CaseState, EventId, Registry};
use prost::Message as _;
use time::OffsetDateTime;

use crate::audit::Signer;
use crate::case_log::{NATS_MSG_ID, StoredEvent, decode_stored};
use crate::error::BusError;
use crate::office_status::WaitingStep;
use crate::subjects::check_token;
use crate::write::{WriteRequest, prepare};

/// Events decided at the office and not yet acknowledged by the national stream.
pub const OUTBOX_STREAM: &str = "OUTBOX";
pub const OUTBOX_PREFIX: &str = "onedoor.v1.outbox";
/// The office's delivered events, with their national sequences: what it knows of its cases'
/// national history when the link is down, and where the forwarder resumes after a restart.
pub const DELIVERED_STREAM: &str = "OUTBOX_DELIVERED";
pub const DELIVERED_PREFIX: &str = "onedoor.v1.delivered";
/// Entries the national stream refused because the case changed there meanwhile: kept for
/// staff, never dropped.
pub const CONFLICT_STREAM: &str = "OUTBOX_CONFLICTS";
pub const CONFLICT_PREFIX: &str = "onedoor.v1.conflict";
/// What an entry follows in the case: `national <sequence>` (the national stream's last event
/// of the case when it was decided, 0 for a new case) or `after <event id>` (an entry of the
/// outbox before it).
pub const BASE_HEADER: &str = "Onedoor-Outbox-Base";
/// On a delivered event: its national stream sequence.
pub const NATIONAL_SEQUENCE_HEADER: &str = "Onedoor-National-Sequence";
/// On a conflict entry: why the national stream refused it.
pub const REASON_HEADER: &str = "Onedoor-Conflict-Reason";

/// What an outbox entry follows in its case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    National(u64),
    After(EventId),
}

impl Base {
    pub fn render(&self) -> String {
        match self {
            Base::National(sequence) => format!("national {sequence}"),
            Base::After(event_id) => format!("after {event_id}"),
        }
    }

    pub fn parse(text: &str) -> Option<Base> {
        let (kind, value) = text.split_once(' ')?;
        match kind {
            "national" => value.parse().ok().map(Base::National),
            "after" => EventId::parse(value).ok().map(Base::After),
            _ => None,
        }
    }
}

/// One event waiting in the outbox; `stored.sequence` is its outbox sequence.
#[derive(Debug, Clone)]
pub struct PendingEntry {
    pub stored: StoredEvent,
    pub base: Base,
}

/// What [`Outbox::execute`] stored.
#[derive(Debug, Clone)]
pub struct OutboxWritten {
    /// The entry's outbox sequence (not a national one: the event is not delivered yet).
    pub outbox_sequence: u64,
    /// True when the request's event was already in the outbox: nothing new was stored.
    pub duplicate: bool,
    pub stored: StoredEvent,
}

fn entry_subject(prefix: &str, case_id: &CaseId) -> Result<String, BusError> {
    let case = case_id.to_string();
    check_token(&case).map_err(|problem| BusError::InvalidSubjectToken {
        field: "case_id",
        value: case.clone(),
        problem,
    })?;
    Ok(format!("{prefix}.{case}"))
}

pub(crate) fn outbox_subject(case_id: &CaseId) -> Result<String, BusError> {
    entry_subject(OUTBOX_PREFIX, case_id)
}

pub(crate) fn delivered_subject(case_id: &CaseId) -> Result<String, BusError> {
    entry_subject(DELIVERED_PREFIX, case_id)
}

pub(crate) fn conflict_subject(case_id: &CaseId) -> Result<String, BusError> {
    entry_subject(CONFLICT_PREFIX, case_id)
}

fn office_stream(name: &str, prefix: &str, per_subject: i64) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{prefix}.>")],
        storage: stream::StorageType::File,
        num_replicas: 1,
        max_messages_per_subject: per_subject,
        allow_direct: true,
        ..Default::default()
    }
}

/// Creates the office node's three streams if they are missing (in the office's own domain:
/// `js` is a context on the office's node).
pub async fn ensure_outbox_streams(js: &jetstream::Context) -> Result<(), BusError> {
    for config in [
        office_stream(OUTBOX_STREAM, OUTBOX_PREFIX, -1),
        office_stream(DELIVERED_STREAM, DELIVERED_PREFIX, -1),
        office_stream(CONFLICT_STREAM, CONFLICT_PREFIX, -1),
    ] {
        let name = config.name.clone();
        js.get_or_create_stream(config)
            .await
            .map_err(|source| BusError::CreateStream {
                stream: name,
                source,
            })?;
    }
    Ok(())
}

pub(crate) async fn get_stream(
    js: &jetstream::Context,
    name: &str,
) -> Result<stream::Stream, BusError> {
    js.get_stream(name)
        .await
        .map_err(|source| BusError::GetStream {
            stream: name.to_owned(),
            source,
        })
}

/// Every message on `subject` of `stream`, in order, with its headers.
pub(crate) async fn all_on(
    stream: &stream::Stream,
    subject: &str,
) -> Result<Vec<jetstream::message::StreamMessage>, BusError> {
    let mut found = Vec::new();
    let mut next = 1;
    loop {
        match stream
            .direct_get_next_for_subject(subject.to_owned(), Some(next))
            .await
        {
            Ok(message) => {
                next = message.sequence + 1;
                found.push(message);
            }
            Err(err) if matches!(err.kind(), DirectGetErrorKind::NotFound) => return Ok(found),
            Err(err) => return Err(BusError::nats("reading the outbox", &err)),
        }
    }
}

/// A delivered event as stored at the office, its sequence the national one.
pub(crate) fn delivered_event(
    message: jetstream::message::StreamMessage,
) -> Result<StoredEvent, BusError> {
    let local = message.sequence;
    let sequence = message
        .headers
        .get(NATIONAL_SEQUENCE_HEADER)
        .and_then(|value| value.as_str().parse().ok())
        .ok_or_else(|| BusError::Decode {
            sequence: local,
            why: format!("delivered event without a valid {NATIONAL_SEQUENCE_HEADER} header"),
        })?;
    decode_stored(sequence, message.payload)
}

pub(crate) fn pending_entry(
    message: jetstream::message::StreamMessage,
) -> Result<PendingEntry, BusError> {
    let sequence = message.sequence;
    let base = message
        .headers
        .get(BASE_HEADER)
        .and_then(|value| Base::parse(value.as_str()))
        .ok_or_else(|| BusError::Decode {
            sequence,
            why: format!("outbox entry without a valid {BASE_HEADER} header"),
        })?;
    Ok(PendingEntry {
        stored: decode_stored(sequence, message.payload)?,
        base,
    })
}

/// The office's outbox on its own node.
#[derive(Clone)]
pub struct Outbox {
    js: jetstream::Context,
    stream: stream::Stream,
    delivered: stream::Stream,
    office: AgencyCode,
    signer: Option<Arc<Signer>>,
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl Outbox {
    /// Binds to the outbox on `office`'s node (creating its streams if needed).
    pub async fn open(js: jetstream::Context, office: AgencyCode) -> Result<Self, BusError> {
        ensure_outbox_streams(&js).await?;
        let stream = get_stream(&js, OUTBOX_STREAM).await?;
        let delivered = get_stream(&js, DELIVERED_STREAM).await?;
        Ok(Outbox {
            js,
            stream,
            delivered,
            office,
            signer: None,
            writing: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    pub fn with_signer(mut self, signer: Signer) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }

    /// The case's events still waiting for the link, in order.
    pub async fn pending(&self, case_id: CaseId) -> Result<Vec<PendingEntry>, BusError> {
        all_on(&self.stream, &outbox_subject(&case_id)?)
            .await?
            .into_iter()
            .map(pending_entry)
            .collect()
    }

    /// Whether events of `case_id` wait in the outbox (a new write must then follow them).
    pub async fn has_pending(&self, case_id: CaseId) -> Result<bool, BusError> {
        Ok(!self.pending(case_id).await?.is_empty())
    }

    /// Keeps an event the office wrote straight to the national stream (at `sequence`), so
    /// that the office knows it if the link goes down.
    pub async fn remember_delivered(&self, stored: &StoredEvent) -> Result<(), BusError> {
        let event = &stored.event;
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MSG_ID, event.event_id.to_string());
        headers.insert(NATIONAL_SEQUENCE_HEADER, stored.sequence.to_string());
        self.js
            .publish_with_headers(
                delivered_subject(&event.case_id)?,
                headers,
                stored.payload.clone(),
            )
            .await
            .map_err(|e| BusError::nats("keeping a delivered event", &e))?
            .await
            .map_err(|e| BusError::nats("keeping a delivered event", &e))?;
        Ok(())
    }

    /// The case's events this office delivered, in national order.
    pub async fn delivered(&self, case_id: CaseId) -> Result<Vec<StoredEvent>, BusError> {
        all_on(&self.delivered, &delivered_subject(&case_id)?)
            .await?
            .into_iter()
            .map(delivered_event)
            .collect()
    }

    /// What the office knows of the case's national history: `national` (what it last read
    /// from the capital, maybe nothing) with its own delivered events, by national sequence.
    pub async fn known(
        &self,
        case_id: CaseId,
        national: &[StoredEvent],
    ) -> Result<Vec<StoredEvent>, BusError> {
        let mut known = national.to_vec();
        let ids: std::collections::HashSet<_> = national.iter().map(|s| s.event.event_id).collect();
        known.extend(
            self.delivered(case_id)
                .await?
                .into_iter()
                .filter(|s| !ids.contains(&s.event.event_id)),
        );
        known.sort_by_key(|s| s.sequence);
        Ok(known)
    }

    /// The entries the national stream refused (the case changed there), with the reason of
    /// each: for staff to see and settle, never dropped.
    pub async fn conflicts(&self) -> Result<Vec<(StoredEvent, String)>, BusError> {
        let conflicts = get_stream(&self.js, CONFLICT_STREAM).await?;
        all_on(&conflicts, &format!("{CONFLICT_PREFIX}.>"))
            .await?
            .into_iter()
            .map(|m| {
                let reason = m
                    .headers
                    .get(REASON_HEADER)
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                Ok((decode_stored(m.sequence, m.payload)?, reason))
            })
            .collect()
    }

    /// How many events wait for the link, all cases together.
    pub async fn pending_count(&self) -> Result<u64, BusError> {
        Ok(self.pending_summary().await?.0)
    }

    /// How many events wait for the link and when the oldest was stored (`None` with none).
    pub async fn pending_summary(&self) -> Result<(u64, Option<OffsetDateTime>), BusError> {
        let mut stream = self.stream.clone();
        let info = stream
            .info()
            .await
            .map_err(|e| BusError::nats("reading the outbox's size", &e))?;
        let waiting = info.state.messages;
        Ok((waiting, (waiting > 0).then_some(info.state.first_timestamp)))
    }

    /// The oldest `limit` steps waiting for the link, all cases together, for the office's
    /// status (the capital's staff page shows them on their cases).
    pub async fn oldest_waiting(&self, limit: usize) -> Result<Vec<WaitingStep>, BusError> {
        let filter = format!("{OUTBOX_PREFIX}.>");
        let mut waiting = Vec::new();
        let mut next = 1;
        while waiting.len() < limit {
            let message = match self
                .stream
                .direct_get_next_for_subject(filter.clone(), Some(next))
                .await
            {
                Ok(message) => message,
                Err(err) if matches!(err.kind(), DirectGetErrorKind::NotFound) => break,
                Err(err) => return Err(BusError::nats("reading the outbox", &err)),
            };
            next = message.sequence + 1;
            let stored_at = message.time;
            let event = pending_entry(message)?.stored.event;
            waiting.push(WaitingStep {
                case_id: event.case_id.to_string(),
                event_id: event.event_id.to_string(),
                kind: event.body.kind().to_owned(),
                to: event.to.map(|to| to.to_string()),
                stored_at,
            });
        }
        Ok(waiting)
    }

    /// Decides `request` on what the office knows of the case ([`Outbox::known`]: `national`,
    /// what it last read of it, verified, with its own delivered events) followed by its
    /// pending entries, and stores the signed event in the outbox.
    ///
    /// Only steps no one else can race are taken here: a new case, or a case in whose national
    /// history no agency but this office holds an open task (only a task holder may act on a
    /// case, and every task this office handed off while the link was down is still in its
    /// outbox). Anything else is [`BusError::NeedsLink`].
    pub async fn execute(
        &self,
        request: &WriteRequest,
        registry: &Registry,
        national: &[StoredEvent],
    ) -> Result<OutboxWritten, BusError> {
        // One write at a time: two clerks acting on one case must not both decide on the same
        // state (the outbox has no per-case sequence check of its own).
        let _one_writer = self.writing.lock().await;
        // Pending first, delivered second: the forwarder keeps an entry's delivered copy
        // before removing the entry, so nothing falls between the two reads.
        let pending = self.pending(request.case_id).await?;
        if let Some(entry) = pending
            .iter()
            .find(|e| e.stored.event.event_id == request.event_id)
        {
            return Ok(OutboxWritten {
                outbox_sequence: entry.stored.sequence,
                duplicate: true,
                stored: entry.stored.clone(),
            });
        }
        let national = self.known(request.case_id, national).await?;
        // An entry delivered between the two reads is in both: the delivered copy wins.
        let delivered: std::collections::HashSet<_> =
            national.iter().map(|s| s.event.event_id).collect();
        let pending: Vec<PendingEntry> = pending
            .into_iter()
            .filter(|e| !delivered.contains(&e.stored.event.event_id))
            .collect();
        let national = national.as_slice();
        if national.is_empty()
            && pending.is_empty()
            && !matches!(request.command.action, onedoor_case::Action::Open { .. })
        {
            return Err(BusError::NeedsLink {
                case_id: request.case_id.to_string(),
                why: "this office holds no record of the case".to_owned(),
            });
        }
        self.check_no_other_holder(request.case_id, national)?;
        let base = match pending.last() {
            Some(entry) => Base::After(entry.stored.event.event_id),
            None => Base::National(national.last().map_or(0, |s| s.sequence)),
        };
        let mut history = national.to_vec();
        history.extend(pending.into_iter().map(|e| e.stored));
        let mut prepared = prepare(&history, request, registry, None)?;
        if let Some(signer) = &self.signer {
            signer.sign(&mut prepared.wire);
        }
        let payload = Bytes::from(prepared.wire.encode_to_vec());
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MSG_ID, request.event_id.to_string());
        headers.insert(BASE_HEADER, base.render());
        let ack = self
            .js
            .publish_with_headers(outbox_subject(&request.case_id)?, headers, payload.clone())
            .await
            .map_err(|e| BusError::nats("storing an event in the outbox", &e))?
            .await
            .map_err(|e| BusError::nats("storing an event in the outbox", &e))?;
        Ok(OutboxWritten {
            outbox_sequence: ack.sequence,
            duplicate: ack.duplicate,
            stored: decode_stored(ack.sequence, payload)?,
        })
    }

    fn check_no_other_holder(
        &self,
        case_id: CaseId,
        national: &[StoredEvent],
    ) -> Result<(), BusError> {
        let state =
            CaseState::fold(national.iter().map(|s| &s.event)).map_err(|e| BusError::Corrupt {
                case_id: case_id.to_string(),
                why: e.to_string(),
            })?;
        let holder = state
            .as_ref()
            .and_then(|s| s.tasks.keys().find(|agency| **agency != self.office));
        match holder {
            Some(holder) => Err(BusError::NeedsLink {
                case_id: case_id.to_string(),
                why: format!(
                    "{holder} holds an open task on it and may have acted since this office last heard"
                ),
            }),
            None => Ok(()),
        }
    }
}
