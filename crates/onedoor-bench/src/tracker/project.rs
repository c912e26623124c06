//! Live projection and rebuild of the published stream, by the real tracker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use onedoor_case::Registry;
use onedoor_tracker::{DatabaseUrl, Store, TrackerConfig};

use super::running::RunningTracker;
use crate::BenchError;
use crate::proc::process_cpu_s;
use crate::progress::bar as progress_bar;

/// How often the stored event count is read while a projection runs.
const POLL: Duration = Duration::from_millis(250);
/// A projection that stores nothing new for this long has stalled.
const STALL: Duration = Duration::from_secs(120);

/// What a rebuild took.
#[derive(Debug, Clone, Copy)]
pub struct Rebuilt {
    /// Events stored.
    pub events: u64,
    /// Seconds it took.
    pub s: f64,
    /// CPU seconds this process spent meanwhile: what the rebuild costs on a machine busy with
    /// other work, where its wall time says little.
    pub cpu_s: Option<f64>,
}

/// What every measurement shares.
pub struct Live<'a> {
    pub nats_url: &'a str,
    pub registry: Arc<Registry>,
    pub events: u64,
}

impl Live<'_> {
    fn config(&self, database: &DatabaseUrl, consumer: &str) -> TrackerConfig {
        let mut config = TrackerConfig::new(self.nats_url, database.clone(), self.registry.clone());
        config.consumer = consumer.to_owned();
        config.verify_signatures = true;
        config
    }

    /// Runs a tracker on an emptied `database` with a fresh durable consumer until every event
    /// is stored; returns the seconds from its start until then.
    pub async fn measure(&self, database: &DatabaseUrl, consumer: &str) -> Result<f64, BenchError> {
        let store = Store::connect(database).await?;
        store.reset().await?;
        let config = self.config(database, consumer);
        let bar = progress_bar(self.events, "project");
        let started = Instant::now();
        let tracker = RunningTracker::start(config).await?;
        let outcome = self.wait_for_all(&store, &bar).await;
        let elapsed = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        tracker.stop().await?;
        store.close().await;
        outcome.map(|()| elapsed)
    }

    async fn wait_for_all(
        &self,
        store: &Store,
        bar: &indicatif::ProgressBar,
    ) -> Result<(), BenchError> {
        let mut last = (0, Instant::now());
        loop {
            let stored = store.event_count().await?;
            bar.set_position(stored);
            if stored >= self.events {
                if stored > self.events {
                    return Err(BenchError::Failed(format!(
                        "{stored} events stored, {} published",
                        self.events
                    )));
                }
                return Ok(());
            }
            if stored > last.0 {
                last = (stored, Instant::now());
            } else if last.1.elapsed() > STALL {
                return Err(BenchError::Failed(format!(
                    "the projection stalled at {stored} of {} events",
                    self.events
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `onedoor_tracker::rebuild` into `database`.
    pub async fn rebuild(
        &self,
        database: &DatabaseUrl,
        consumer: &str,
    ) -> Result<Rebuilt, BenchError> {
        let cpu_before = process_cpu_s();
        let report = onedoor_tracker::rebuild(&self.config(database, consumer)).await?;
        let cpu = cpu_before
            .zip(process_cpu_s())
            .map(|(before, after)| after - before);
        if report.events != self.events || report.rejected > 0 {
            return Err(BenchError::Failed(format!(
                "the rebuild stored {} events and rejected {}, of {} published",
                report.events, report.rejected, self.events
            )));
        }
        Ok(Rebuilt {
            events: report.events,
            s: report.elapsed.as_secs_f64(),
            cpu_s: cpu,
        })
    }
}
