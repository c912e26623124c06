//! Live projection and rebuild of the published stream, by the real tracker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use onedoor_case::Registry;
use onedoor_tracker::{DatabaseUrl, Store, TrackerConfig};

use super::progress_bar;

/// How often the stored event count is read while a projection runs.
const POLL: Duration = Duration::from_millis(250);
/// A projection that stores nothing new for this long has stalled.
const STALL: Duration = Duration::from_secs(120);

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
    pub async fn measure(&self, database: &DatabaseUrl, consumer: &str) -> anyhow::Result<f64> {
        let store = Store::connect(database).await?;
        store.reset().await?;
        let config = self.config(database, consumer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the tracker's gRPC port")?;
        let bar = progress_bar(self.events, "project");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let started = Instant::now();
        let tracker = tokio::spawn(onedoor_tracker::run(config, listener, async {
            let _ = stopped.await;
        }));
        let outcome = self.wait_for_all(&store, &bar).await;
        let elapsed = started.elapsed().as_secs_f64();
        let _ = stop.send(());
        bar.finish_and_clear();
        tracker
            .await
            .context("the tracker panicked")?
            .context("the tracker failed")?;
        store.close().await;
        outcome.map(|()| elapsed)
    }

    async fn wait_for_all(
        &self,
        store: &Store,
        bar: &indicatif::ProgressBar,
    ) -> anyhow::Result<()> {
        let mut last = (0, Instant::now());
        loop {
            let stored = store.event_count().await?;
            bar.set_position(stored);
            if stored >= self.events {
                anyhow::ensure!(
                    stored == self.events,
                    "{stored} events stored, {} published",
                    self.events
                );
                return Ok(());
            }
            if stored > last.0 {
                last = (stored, Instant::now());
            } else if last.1.elapsed() > STALL {
                anyhow::bail!(
                    "the projection stalled at {stored} of {} events",
                    self.events
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `onedoor_tracker::rebuild` into `database`; returns events stored, seconds taken and
    /// the CPU seconds this process spent meanwhile (what the rebuild costs on a machine busy
    /// with other work, where its wall time says little).
    pub async fn rebuild(
        &self,
        database: &DatabaseUrl,
        consumer: &str,
    ) -> anyhow::Result<(u64, f64, Option<f64>)> {
        let cpu_before = process_cpu_s();
        let report = onedoor_tracker::rebuild(&self.config(database, consumer)).await?;
        let cpu = cpu_before
            .zip(process_cpu_s())
            .map(|(before, after)| after - before);
        anyhow::ensure!(
            report.events == self.events && report.rejected == 0,
            "the rebuild stored {} events and rejected {}, of {} published",
            report.events,
            report.rejected,
            self.events
        );
        Ok((report.events, report.elapsed.as_secs_f64(), cpu))
    }
}

/// User and system CPU seconds of this process so far, from `/proc/self/stat` (Linux; `None`
/// elsewhere).
fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are plain.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15, in clock ticks, which Linux fixes at 100 a second
    // for this interface.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}
