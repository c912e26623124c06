//! The registry feed: how a new registry reaches every running adapter, tracker and case
//! reader, on every machine, without a restart (`docs/agency-lifecycle.md`, "Registry
//! reload").
//!
//! The operator puts a signed [`Publication`] under the key `current` of the KV bucket
//! `ONEDOOR_REGISTRY` (only the operator's NATS user may write it; every identity may read it).
//! Each reader follows the key's history ([`follow`]) and moves its [`LiveRegistry`] to a
//! publication only when an operator key of the registry it already runs signed it, the
//! registry is valid, and it is later than the one running. Whatever it decided, it answers on
//! `onedoor.v1.registry.ack.<WHO>` (a subject only that identity may publish on), which
//! `registry apply` listens to.

mod follow;
mod publication;

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};

pub use follow::{FeedCounts, Follower, follow};
pub use onedoor_case::LiveRegistry;
pub use publication::{PUBLICATION_FORMAT, Publication, Refusal, Verdict};

use crate::error::BusError;
use crate::subjects::STREAM_NAME;

/// The bucket, and the one key the registry is published under.
pub const REGISTRY_BUCKET: &str = "ONEDOOR_REGISTRY";
pub const REGISTRY_KEY: &str = "current";

/// Publications kept (the most a KV bucket keeps per key): a reader that was stopped across
/// several changes walks them in order, each verified by the one before.
pub const REGISTRY_HISTORY: i64 = 64;

/// Readers' answers: `onedoor.v1.registry.ack.<WHO>` (an agency code, `tracker`, `reader`).
pub const ACK_SUBJECT_PREFIX: &str = "onedoor.v1.registry.ack";

/// Where `who` answers.
pub fn ack_subject(who: &str) -> String {
    format!("{ACK_SUBJECT_PREFIX}.{who}")
}

/// A reader's answer to one publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The bucket revision it answers.
    pub revision: u64,
    /// The registry version it runs after deciding.
    pub running: String,
    /// `moved`, `running` (already on it) or `refused: <why>`.
    pub outcome: String,
}

/// The registry bucket, created when missing (the operator's right; others only open it).
pub async fn ensure_registry_bucket(js: &jetstream::Context) -> Result<kv::Store, BusError> {
    if let Ok(store) = js.get_key_value(REGISTRY_BUCKET).await {
        return Ok(store);
    }
    let replicas = match js.get_stream(STREAM_NAME).await {
        Ok(stream) => stream.cached_info().config.num_replicas.max(1),
        Err(_) => 1,
    };
    let config = kv::Config {
        bucket: REGISTRY_BUCKET.to_owned(),
        description: "the registry every onedoor process runs, signed by the operator".to_owned(),
        history: REGISTRY_HISTORY,
        num_replicas: replicas,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    };
    match js.create_key_value(config).await {
        Ok(store) => Ok(store),
        Err(create_err) => js.get_key_value(REGISTRY_BUCKET).await.map_err(|get_err| {
            let about = format!("{REGISTRY_BUCKET}: creating failed ({create_err}), opening");
            BusError::nats_on("opening the registry bucket", &about, &get_err)
        }),
    }
}

/// Stores `publication` as the current registry; returns its bucket revision once the
/// server has stored it.
pub async fn publish(js: &jetstream::Context, publication: &Publication) -> Result<u64, BusError> {
    let store = ensure_registry_bucket(js).await?;
    store
        .put(REGISTRY_KEY, publication.encode().into())
        .await
        .map_err(|e| BusError::nats_on("publishing the registry", &REGISTRY_BUCKET, &e))
}
