//! A reader's side of the feed: follow the bucket's key from its first kept revision, decide
//! on each publication, move the [`LiveRegistry`], answer, and never stop on a bad one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::StreamExt as _;
use onedoor_case::LiveRegistry;

use super::publication::{Publication, Refusal, Verdict};
use super::{Ack, REGISTRY_BUCKET, REGISTRY_KEY, ack_subject};

/// `onedoor_registry_refused_total`: publications a reader would not run, by reason.
pub const REFUSED_METRIC: &str = "onedoor_registry_refused_total";
/// `onedoor_registry_moved_total`: registries a reader moved to while running.
pub const MOVED_METRIC: &str = "onedoor_registry_moved_total";

/// Waits between attempts to open the bucket or watch it again, growing to the last: short,
/// because `registry apply` waits for the answers after the operator's first publication.
const RETRY: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(3),
];

/// What a follower did since start.
#[derive(Debug, Default)]
pub struct FeedCounts {
    moved: AtomicU64,
    refused: AtomicU64,
}

impl FeedCounts {
    pub fn moved(&self) -> u64 {
        self.moved.load(Ordering::Relaxed)
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// The following task; aborted when dropped.
pub struct Follower {
    task: tokio::task::JoinHandle<()>,
    pub counts: Arc<FeedCounts>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Follows the registry bucket on `js` for `live`, answering as `who` (the identity's token
/// in [`ack_subject`]). Runs until the returned [`Follower`] is dropped.
pub fn follow(js: jetstream::Context, live: LiveRegistry, who: &str) -> Follower {
    metrics::describe_counter!(
        REFUSED_METRIC,
        "published registries this process would not run (unsigned, unknown key, invalid, not newer…), by reason"
    );
    metrics::describe_counter!(
        MOVED_METRIC,
        "published registries this process moved to while running"
    );
    let counts = Arc::new(FeedCounts::default());
    let state = State {
        js,
        live,
        who: who.to_owned(),
        counts: counts.clone(),
    };
    Follower {
        task: tokio::spawn(state.run()),
        counts,
    }
}

struct State {
    js: jetstream::Context,
    live: LiveRegistry,
    who: String,
    counts: Arc<FeedCounts>,
}

impl State {
    async fn run(self) {
        let mut next_revision = 1;
        let mut failures = 0usize;
        loop {
            match self.watch(&mut next_revision).await {
                Ok(()) => failures = 0,
                Err(why) => {
                    // Missing until the operator first publishes: not worth a warning.
                    tracing::debug!(who = %self.who, %why, "not following the registry bucket yet");
                    failures += 1;
                }
            }
            let wait = RETRY[failures.min(RETRY.len() - 1)];
            tokio::time::sleep(wait).await;
        }
    }

    /// Watches from `next_revision` until the watch ends; `Err` when it could not start.
    async fn watch(&self, next_revision: &mut u64) -> Result<(), String> {
        let store = self
            .js
            .get_key_value(REGISTRY_BUCKET)
            .await
            .map_err(|e| e.to_string())?;
        let mut entries = store
            .watch_from_revision(REGISTRY_KEY, *next_revision)
            .await
            .map_err(|e| e.to_string())?;
        while let Some(entry) = entries.next().await {
            match entry {
                Ok(entry) => {
                    *next_revision = entry.revision + 1;
                    self.consider(&entry).await;
                }
                Err(error) => {
                    tracing::warn!(who = %self.who, %error, "the registry watch failed; watching again");
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    async fn consider(&self, entry: &kv::Entry) {
        if entry.operation != kv::Operation::Put {
            tracing::warn!(who = %self.who, revision = entry.revision, "the published registry was deleted; keeping the one running");
            return;
        }
        let outcome = match self.decide(entry) {
            Ok(outcome) => outcome,
            // A later publication replaced it in the bucket: history, not news.
            Err(Refusal::NotNewer(_)) if entry.delta > 0 => return,
            Err(refusal) => {
                self.counts.refused.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(REFUSED_METRIC, "reason" => refusal.label()).increment(1);
                tracing::warn!(
                    who = %self.who,
                    revision = entry.revision,
                    running = %self.live.current().version,
                    reason = refusal.label(),
                    %refusal,
                    "refused a published registry; still running the current one"
                );
                format!("refused: {refusal}")
            }
        };
        if entry.delta == 0 {
            self.answer(entry.revision, outcome).await;
        }
    }

    fn decide(&self, entry: &kv::Entry) -> Result<String, Refusal> {
        let publication = Publication::decode(&entry.value)?;
        let running = self.live.current();
        let today = time::OffsetDateTime::now_utc().date();
        let registry = match publication.verify(&running, today)? {
            Verdict::Running => return Ok("running".to_owned()),
            Verdict::Newer(registry) => registry,
        };
        let version = registry.version;
        self.live
            .advance(Arc::new(*registry))
            .map_err(|now| Refusal::NotNewer(format!("{version} is not later than {now}")))?;
        self.counts.moved.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(MOVED_METRIC).increment(1);
        tracing::info!(who = %self.who, from = %running.version, to = %version, revision = entry.revision, "moved to the published registry");
        Ok("moved".to_owned())
    }

    async fn answer(&self, revision: u64, outcome: String) {
        let ack = Ack {
            revision,
            running: self.live.current().version.to_string(),
            outcome,
        };
        let payload = serde_json::to_vec(&ack).unwrap_or_default();
        if let Err(error) = self
            .js
            .client()
            .publish(ack_subject(&self.who), payload.into())
            .await
        {
            tracing::debug!(who = %self.who, %error, "could not answer the registry publication");
        }
    }
}
