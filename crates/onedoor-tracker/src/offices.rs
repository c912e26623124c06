//! Which district offices the capital hears from (`docs/district-offices.md`, "What the
//! supervisor sees"). Each office's adapter publishes its status on
//! `onedoor.v1.office.<CODE>.status` every few seconds while connected
//! (`onedoor_bus::office_status`); [`OfficeWatch`] keeps the last one per office. An office
//! not heard from within [`TrackerConfig::office_silence`] is disconnected since it was last
//! heard.
//!
//! Kept in memory: a tracker that restarts knows an office again from its next status, and
//! does not know an office that went silent before the restart. Liveness is measured on the
//! tracker's own monotonic clock, never on the office's (whose clock may be wrong) nor on the
//! tracker's business [`crate::Clock`] (which tests set).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
/// A step an office says waits for its link (what [`OfficeLink::status`] lists).
pub use onedoor_bus::office_status::WaitingStep;
use onedoor_bus::office_status::{OFFICE_STATUS_SUBJECTS, OfficeStatus, office_of_status_subject};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::config::TrackerConfig;
use crate::metrics as m;
use crate::projection::stopped;

/// How often the office gauges are brought up to date, and how long to wait before trying
/// NATS again when the tracker cannot connect.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
const RECONNECT_AFTER: Duration = Duration::from_secs(2);

/// One office as the tracker last heard it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficeLink {
    pub office: String,
    /// When the tracker last heard it (the tracker's wall clock).
    pub last_heard: OffsetDateTime,
    /// Heard from within the silence bound.
    pub connected: bool,
    /// What it said then.
    pub status: OfficeStatus,
}

#[derive(Debug, Clone)]
struct Heard {
    at: Instant,
    wall: OffsetDateTime,
    status: OfficeStatus,
}

/// The last status of every office heard since the tracker started; cheap to clone.
#[derive(Debug, Clone)]
pub struct OfficeWatch {
    silence: Duration,
    heard: Arc<Mutex<BTreeMap<String, Heard>>>,
}

impl OfficeWatch {
    pub fn new(silence: Duration) -> Self {
        OfficeWatch {
            silence,
            heard: Arc::default(),
        }
    }

    /// Records a status `office` sent, heard now.
    pub fn heard(&self, office: &str, status: OfficeStatus) {
        let heard = Heard {
            at: Instant::now(),
            wall: OffsetDateTime::now_utc(),
            status,
        };
        self.lock().insert(office.to_owned(), heard);
    }

    /// Every office heard since the tracker started: disconnected ones first (longest silent
    /// first), then by code.
    pub fn offices(&self) -> Vec<OfficeLink> {
        let mut offices: Vec<OfficeLink> = self
            .lock()
            .iter()
            .map(|(office, heard)| OfficeLink {
                office: office.clone(),
                last_heard: heard.wall,
                connected: heard.at.elapsed() <= self.silence,
                status: heard.status.clone(),
            })
            .collect();
        offices.sort_by(|a, b| {
            (a.connected, a.last_heard, &a.office).cmp(&(b.connected, b.last_heard, &b.office))
        });
        offices
    }

    /// How long an office may be silent before it is disconnected.
    pub fn silence(&self) -> Duration {
        self.silence
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Heard>> {
        self.heard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the office gauges from what is known now.
    fn publish_gauges(&self) {
        let offices = self.offices();
        let silent = offices.iter().filter(|o| !o.connected).count();
        metrics::gauge!(m::OFFICES_DISCONNECTED).set(silent as f64);
        let now = OffsetDateTime::now_utc();
        for office in offices {
            let since = (now - office.last_heard).as_seconds_f64().max(0.0);
            metrics::gauge!(m::OFFICE_SECONDS_SINCE_HEARD, "office" => office.office.clone())
                .set(since);
            metrics::gauge!(m::OFFICE_OUTBOX_PENDING, "office" => office.office)
                .set(office.status.pending as f64);
        }
    }
}

/// The offices as `ListOffices` answers.
pub(crate) fn offices_response(watch: &OfficeWatch) -> onedoor_proto::v1::ListOfficesResponse {
    use onedoor_proto::convert::timestamp;
    onedoor_proto::v1::ListOfficesResponse {
        offices: watch
            .offices()
            .into_iter()
            .map(|office| onedoor_proto::v1::OfficeLink {
                connected: office.connected,
                last_heard: Some(timestamp(office.last_heard)),
                pending: office.status.pending,
                oldest_pending: office.status.oldest_pending.map(timestamp),
                conflicts: office.status.conflicts,
                office: office.office,
            })
            .collect(),
        silence_seconds: u32::try_from(watch.silence().as_secs()).unwrap_or(u32::MAX),
    }
}

/// Listens for office statuses as the tracker's NATS user until `stop`, keeping `watch` and
/// the office gauges current. NATS that does not answer is tried again; the client
/// subscribes again by itself after a reconnect.
pub(crate) async fn run(
    watch: OfficeWatch,
    config: TrackerConfig,
    mut stop: watch::Receiver<bool>,
) {
    let subscription = loop {
        let subscribed = async {
            let client = config.connect_nats("onedoor-tracker-offices").await?;
            client
                .subscribe(OFFICE_STATUS_SUBJECTS)
                .await
                .map_err(|e| crate::TrackerError::nats("subscribing to office statuses", e))
        };
        tokio::select! {
            () = stopped(&mut stop) => return,
            result = subscribed => match result {
                Ok(subscription) => break subscription,
                Err(error) => tracing::warn!(%error, "cannot listen for district offices yet"),
            },
        }
        tokio::select! {
            () = stopped(&mut stop) => return,
            () = tokio::time::sleep(RECONNECT_AFTER) => {}
        }
    };
    listen(watch, subscription, stop).await;
}

async fn listen(
    watch: OfficeWatch,
    mut subscription: async_nats::Subscriber,
    mut stop: watch::Receiver<bool>,
) {
    let mut refresh = tokio::time::interval(REFRESH_EVERY);
    loop {
        tokio::select! {
            () = stopped(&mut stop) => return,
            _ = refresh.tick() => watch.publish_gauges(),
            message = subscription.next() => {
                let Some(message) = message else { return };
                let Some(office) = office_of_status_subject(&message.subject) else { continue };
                match serde_json::from_slice::<OfficeStatus>(&message.payload) {
                    Ok(status) => watch.heard(office, status),
                    Err(error) => tracing::warn!(%error, office, "an office status that does not read"),
                }
            }
        }
    }
}
