//! Writes the histories to the ONEDOOR stream as adapters do: each event prepared by the bus's
//! write path (`onedoor_bus::prepare`: case rules, trace context, hash link), signed with its
//! agency's key, and published with the contract subject and headers, expecting the case's last
//! stream sequence. JetStream async publish: a chunk of cases goes out one version at a time
//! (every case's next event in flight together), so each event knows its predecessor's
//! sequence without waiting case by case.

use std::collections::HashMap;
use std::sync::Arc;

use async_nats::jetstream;
use bytes::Bytes;
use onedoor_bus::case_log::{decode_stored, headers};
use onedoor_bus::{Signer, StoredEvent, TraceContext, WriteRequest, prepare};
use onedoor_case::AgencyCode;
use prost::Message as _;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::history::Catalogue;
use crate::BenchError;

/// Cases generated and published together.
const CHUNK_CASES: u64 = 2_000;

/// One prepared, signed event and the trace its headers carry.
struct Ready {
    stored: StoredEvent,
    trace: TraceContext,
}

/// Case `index`'s events, written through the bus's write path and signed.
fn case_events(
    catalogue: &Catalogue,
    signers: &HashMap<AgencyCode, Signer>,
    index: u64,
    now: OffsetDateTime,
) -> Result<Vec<Ready>, BenchError> {
    let script = catalogue.script(index, now)?;
    let mut history: Vec<StoredEvent> = Vec::with_capacity(script.commands.len());
    let mut ready = Vec::with_capacity(script.commands.len());
    for (event_id, command) in script.commands {
        let request = WriteRequest {
            case_id: script.case_id,
            event_id,
            idempotency_key: event_id.to_string(),
            command,
            caller_trace: None,
        };
        let mut prepared = prepare(&history, &request, catalogue.registry(), None)?;
        let signer = signers.get(&request.command.agency).ok_or_else(|| {
            BenchError::Failed(format!("no signing key for {}", request.command.agency))
        })?;
        signer.sign(&mut prepared.wire);
        // The sequence is not known before publishing and nothing here reads it.
        let stored = decode_stored(0, Bytes::from(prepared.wire.encode_to_vec()))?;
        history.push(stored.clone());
        ready.push(Ready {
            stored,
            trace: prepared.trace,
        });
    }
    Ok(ready)
}

/// Publishes cases until exactly `events` events are stored (the last case may stop early,
/// as a live case does); `progress` gets the number of events stored after each chunk.
/// Returns how many cases were written.
pub async fn publish(
    js: &jetstream::Context,
    catalogue: Arc<Catalogue>,
    signers: Arc<HashMap<AgencyCode, Signer>>,
    events: u64,
    now: OffsetDateTime,
    progress: impl Fn(u64),
) -> Result<u64, BenchError> {
    // Generation (signing, encoding) runs on a blocking thread, one chunk ahead of publishing.
    let (tx, mut rx) = mpsc::channel::<Result<Vec<Vec<Ready>>, BenchError>>(2);
    let generator = tokio::task::spawn_blocking(move || {
        let mut index = 0u64;
        let mut remaining = events;
        while remaining > 0 {
            let mut chunk = Vec::new();
            while remaining > 0 && (chunk.len() as u64) < CHUNK_CASES {
                match case_events(&catalogue, &signers, index, now) {
                    Ok(mut case) => {
                        case.truncate(usize::try_from(remaining).unwrap_or(usize::MAX));
                        remaining -= case.len() as u64;
                        chunk.push(case);
                        index += 1;
                    }
                    Err(error) => {
                        let _ = tx.blocking_send(Err(error));
                        return;
                    }
                }
            }
            if tx.blocking_send(Ok(chunk)).is_err() {
                return;
            }
        }
    });
    let mut published = 0u64;
    let mut cases = 0u64;
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        cases += chunk.len() as u64;
        published += publish_chunk(js, chunk).await?;
        progress(published);
    }
    generator
        .await
        .map_err(BenchError::task("the history generator"))?;
    if published != events {
        return Err(BenchError::Failed(format!(
            "published {published} events, wanted {events}"
        )));
    }
    Ok(cases)
}

/// Publishes every case of the chunk version by version.
async fn publish_chunk(js: &jetstream::Context, chunk: Vec<Vec<Ready>>) -> Result<u64, BenchError> {
    let mut last_sequence = vec![0u64; chunk.len()];
    let longest = chunk.iter().map(Vec::len).max().unwrap_or(0);
    let mut published = 0u64;
    for version in 0..longest {
        let mut acks = Vec::with_capacity(chunk.len());
        for (case, events) in chunk.iter().enumerate() {
            let Some(ready) = events.get(version) else {
                continue;
            };
            let event = &ready.stored.event;
            let subject = onedoor_bus::subjects::case_subject(
                &event.case_id.to_string(),
                event.from.as_str(),
                event.to.as_ref().map(|a| a.as_str()),
            )?;
            let headers = headers(event, &ready.stored.wire, &ready.trace, last_sequence[case])?;
            let ack = js
                .publish_with_headers(subject, headers, ready.stored.payload.clone())
                .await
                .map_err(BenchError::nats("publishing an event"))?;
            acks.push((case, ack));
        }
        for (case, ack) in acks {
            let ack = ack.await.map_err(BenchError::nats("storing an event"))?;
            if ack.duplicate {
                return Err(BenchError::Failed("an event was stored twice".to_owned()));
            }
            last_sequence[case] = ack.sequence;
            published += 1;
        }
    }
    Ok(published)
}
