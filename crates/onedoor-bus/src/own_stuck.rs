//! One agency's own stuck records, read and cleared with the agency's own NATS rights.
//!
//! An agency may read and write only the keys `<AGENCY>.*` of [`STUCK_BUCKET`] (the broker
//! enforces it), and listing keys the usual way needs a consumer on the bucket's stream, which
//! reads every agency's keys. So the keys come from the bucket stream's subject list filtered to
//! the agency's own prefix (stream info, which the agency may ask for), and each value from a
//! per-key direct get, which the broker confines to the agency's prefix.

use async_nats::jetstream::{self, kv};
use futures::StreamExt as _;
use onedoor_case::AgencyCode;

use crate::error::BusError;
use crate::stuck::{STUCK_BUCKET, StuckRecord, ensure_stuck_bucket, stuck_key};

/// At most this many records are listed: a ministry system that lets more pile up needs an
/// operator, not a longer page.
pub const OWN_STUCK_MAX: usize = 1000;

fn nats_err(action: &'static str, e: &(dyn std::error::Error + 'static)) -> BusError {
    BusError::nats_on(action, &STUCK_BUCKET, e)
}

/// `agency`'s stuck records, lowest stream sequence first, at most [`OWN_STUCK_MAX`].
/// Deleted records and values that are not records under their own key are left out.
pub async fn list_own_stuck(
    js: &jetstream::Context,
    agency: &AgencyCode,
) -> Result<Vec<StuckRecord>, BusError> {
    const ACTION: &str = "listing the agency's stuck deliveries";
    let store = ensure_stuck_bucket(js).await?;
    let stream = js
        .get_stream(format!("KV_{STUCK_BUCKET}"))
        .await
        .map_err(|e| nats_err(ACTION, &e))?;
    let prefix = format!("$KV.{STUCK_BUCKET}.{agency}.");
    let mut subjects = stream
        .info_with_subjects(format!("{prefix}>"))
        .await
        .map_err(|e| nats_err(ACTION, &e))?;
    let mut sequences = Vec::new();
    while let Some(entry) = subjects.next().await {
        let (subject, _) = entry.map_err(|e| nats_err(ACTION, &e))?;
        if let Some(sequence) = subject
            .strip_prefix(&prefix)
            .and_then(|s| s.parse::<u64>().ok())
        {
            sequences.push(sequence);
        }
    }
    sequences.sort_unstable();
    let mut records = Vec::new();
    for sequence in sequences {
        if records.len() == OWN_STUCK_MAX {
            break;
        }
        if let Some(record) = read(&store, agency, sequence).await? {
            records.push(record);
        }
    }
    Ok(records)
}

/// `agency`'s stuck record at stream `sequence`, if there is one.
pub async fn own_stuck_record(
    js: &jetstream::Context,
    agency: &AgencyCode,
    sequence: u64,
) -> Result<Option<StuckRecord>, BusError> {
    let store = ensure_stuck_bucket(js).await?;
    read(&store, agency, sequence).await
}

async fn read(
    store: &kv::Store,
    agency: &AgencyCode,
    sequence: u64,
) -> Result<Option<StuckRecord>, BusError> {
    let key = stuck_key(agency.as_str(), sequence);
    let Some(value) = store
        .get(&key)
        .await
        .map_err(|e| nats_err("reading a stuck delivery", &e))?
    else {
        return Ok(None);
    };
    match serde_json::from_slice::<StuckRecord>(&value) {
        Ok(record) if record.key_mismatch(&key).is_none() => Ok(Some(record)),
        Ok(_) | Err(_) => {
            tracing::warn!(
                key,
                "skipping a stuck entry that is not a record of its key"
            );
            Ok(None)
        }
    }
}

/// Deletes `agency`'s stuck record at `sequence` (the event was delivered again and
/// acknowledged). Deleting a record that is not there is not an error.
pub async fn clear_own_stuck(
    js: &jetstream::Context,
    agency: &AgencyCode,
    sequence: u64,
) -> Result<(), BusError> {
    let store = ensure_stuck_bucket(js).await?;
    let key = stuck_key(agency.as_str(), sequence);
    store
        .delete(&key)
        .await
        .map_err(|e| nats_err("clearing a stuck delivery", &e))
}
