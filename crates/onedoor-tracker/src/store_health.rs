//! Whether the projection's writes commit: what the gRPC health, the web page's readiness and
//! the `onedoor_tracker_store_*` metrics report. While they fail nothing is acknowledged, so
//! the stream keeps what the database does not have; the tracker's views fall behind, and
//! whoever watches the tracker must see it.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use crate::error::TrackerError;
use crate::metrics as m;

/// The store's state as the projection last found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreState {
    Healthy,
    /// Writes fail; `cause` is the first failure's message.
    Failing {
        cause: String,
        since: Instant,
    },
}

/// Shared between the projection, which reports, and whoever answers health checks.
#[derive(Debug, Clone)]
pub struct StoreHealth(Arc<watch::Sender<StoreState>>);

impl Default for StoreHealth {
    fn default() -> Self {
        metrics::gauge!(m::STORE_HEALTHY).set(1.0);
        StoreHealth(Arc::new(watch::Sender::new(StoreState::Healthy)))
    }
}

impl StoreHealth {
    /// A write failed. Counted every time; logged only when the store was healthy until now,
    /// so an outage of hours is two log lines, not thousands.
    pub fn failed(&self, error: &TrackerError) {
        metrics::counter!(m::STORE_FAILURES).increment(1);
        self.0.send_if_modified(|state| {
            if matches!(state, StoreState::Failing { .. }) {
                return false;
            }
            tracing::error!(%error, source = ?std::error::Error::source(error), "the tracker cannot store events; acknowledging nothing and retrying until it can");
            metrics::gauge!(m::STORE_HEALTHY).set(0.0);
            *state = StoreState::Failing {
                cause: error.to_string(),
                since: Instant::now(),
            };
            true
        });
    }

    /// A write committed.
    pub fn stored(&self) {
        self.0.send_if_modified(|state| {
            let StoreState::Failing { since, .. } = state else {
                return false;
            };
            let failing_for_ms = since.elapsed().as_millis() as u64;
            tracing::info!(
                failing_for_ms,
                "the tracker stores events again; the stream redelivers what it missed"
            );
            metrics::gauge!(m::STORE_HEALTHY).set(1.0);
            *state = StoreState::Healthy;
            true
        });
    }

    pub fn is_healthy(&self) -> bool {
        *self.0.borrow() == StoreState::Healthy
    }

    pub fn state(&self) -> StoreState {
        self.0.borrow().clone()
    }

    /// Changes from now on.
    pub fn subscribe(&self) -> watch::Receiver<StoreState> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    /// The value of an unlabelled metric in Prometheus text.
    fn value(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn failures_are_counted_each_time_and_flip_the_state_and_gauge_once() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        let error = TrackerError::Config {
            key: "test",
            why: "disk full".into(),
        };
        metrics::with_local_recorder(&recorder, || {
            let health = StoreHealth::default();
            let mut changes = health.subscribe();
            assert_eq!(value(&metrics.render(), m::STORE_HEALTHY), Some(1.0));

            health.failed(&error);
            health.failed(&error);
            assert!(!health.is_healthy());
            assert!(changes.has_changed().unwrap_or(false));
            changes.borrow_and_update();
            health.failed(&error);
            assert!(
                !changes.has_changed().unwrap_or(true),
                "a repeated failure is no change"
            );
            let text = metrics.render();
            assert_eq!(value(&text, m::STORE_HEALTHY), Some(0.0));
            assert_eq!(value(&text, m::STORE_FAILURES), Some(3.0));

            health.stored();
            assert!(health.is_healthy());
            assert!(changes.has_changed().unwrap_or(false));
            assert_eq!(value(&metrics.render(), m::STORE_HEALTHY), Some(1.0));
        });
    }
}
