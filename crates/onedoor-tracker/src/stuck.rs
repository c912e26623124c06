//! Stuck deliveries: inbox events an agency's system never acknowledged within its delivery
//! limit (or could not decode). The bus's inbox records each one in the JetStream KV bucket
//! `ONEDOOR_STUCK` (key `<AGENCY>.<stream_seq>`, JSON [`StuckRecord`], both defined by
//! `onedoor_bus::stuck`); the tracker only reads that bucket, so staff see what is stuck without
//! the tracker re-deriving it. Unlike the bus's own listing, entries that do not parse are
//! reported (as errors for operators) rather than skipped.

use async_nats::jetstream;
use async_nats::jetstream::context::GetStreamErrorKind;
use futures::TryStreamExt as _;
pub use onedoor_bus::stuck::{STUCK_BUCKET, StuckRecord};

use crate::error::TrackerError;

/// An entry of the bucket that is not a stuck delivery we can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableEntry {
    pub key: String,
    pub why: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StuckReport {
    /// Oldest recorded first.
    pub deliveries: Vec<StuckRecord>,
    /// Shown to operators as errors rather than dropped.
    pub unreadable: Vec<UnreadableEntry>,
}

/// Reads every stuck delivery. A bucket that does not exist yet (no inbox ever got stuck)
/// is an empty report.
pub async fn stuck_deliveries(js: &jetstream::Context) -> Result<StuckReport, TrackerError> {
    let nats = |action| move |e: &dyn std::fmt::Display| TrackerError::nats(action, e);
    // Look the backing stream up first: it is the only way to tell "no bucket" from "NATS
    // down" with this client.
    match js.get_stream(format!("KV_{STUCK_BUCKET}")).await {
        Ok(_) => {}
        Err(error)
            if matches!(error.kind(), GetStreamErrorKind::JetStream(ref e)
                if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            return Ok(StuckReport::default());
        }
        Err(error) => return Err(nats("looking up the stuck-delivery bucket")(&error)),
    }
    let bucket = js
        .get_key_value(STUCK_BUCKET)
        .await
        .map_err(|e| nats("opening the stuck-delivery bucket")(&e))?;
    let keys: Vec<String> = bucket
        .keys()
        .await
        .map_err(|e| nats("listing stuck deliveries")(&e))?
        .try_collect()
        .await
        .map_err(|e| nats("listing stuck deliveries")(&e))?;
    let mut report = StuckReport::default();
    for key in keys {
        let Some(value) = bucket
            .get(key.as_str())
            .await
            .map_err(|e| nats("reading a stuck delivery")(&e))?
        else {
            continue; // removed since it was listed: resolved
        };
        match serde_json::from_slice::<StuckRecord>(&value) {
            Ok(delivery) => match delivery.key_mismatch(&key) {
                None => report.deliveries.push(delivery),
                Some(why) => report.unreadable.push(UnreadableEntry { key, why }),
            },
            Err(error) => report.unreadable.push(UnreadableEntry {
                key,
                why: error.to_string(),
            }),
        }
    }
    report.deliveries.sort_by(|a, b| {
        (a.recorded_at, a.stream_sequence).cmp(&(b.recorded_at, b.stream_sequence))
    });
    Ok(report)
}
