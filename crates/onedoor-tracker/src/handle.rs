//! [`TrackerHandle`]: what a page served beside a running tracker may read. It shares the
//! tracker's database, clock, registry and "case moved" notifications, so a page moves with the
//! projection; it offers reads only, never the [`Store`] itself, so the page cannot write to
//! the projection or depend on how it is stored.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use onedoor_case::{CaseEvent, Registry};
use onedoor_proto::convert::from_wire;
use time::OffsetDateTime;
use tokio::sync::{OnceCell, broadcast, watch};

use crate::config::TrackerConfig;
use crate::error::TrackerError;
use crate::offices::{OfficeLink, OfficeWatch};
use crate::projection::stopped;
use crate::store::{
    CaseFilter, HeldStat, OverdueFilter, OverdueOrder, RejectedMessage, Store, TaskView,
};
use crate::store_health::StoreHealth;
use crate::stuck::{StuckReport, stuck_deliveries};
use crate::view::{CaseRecord, TaskRecord};

/// How often a case is read again when it moved between the reads of one [`CaseDetail`];
/// after that the last reads are returned as they are.
const CONSISTENT_READ_ATTEMPTS: u32 = 5;

/// One case read consistently: its row, its tasks and its events, all of one version; and
/// the messages on its subjects that were not believed.
#[derive(Debug, Clone)]
pub struct CaseDetail {
    pub case: CaseRecord,
    pub tasks: Vec<TaskRecord>,
    pub events: Vec<CaseEvent>,
    pub quarantined: Vec<RejectedMessage>,
}

/// Reads of a running tracker, for a page served beside it; cheap to clone.
#[derive(Clone)]
pub struct TrackerHandle {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: TrackerConfig,
    moved: broadcast::Sender<String>,
    stop: watch::Receiver<bool>,
    store_health: StoreHealth,
    offices: OfficeWatch,
    /// Connected on first use by [`TrackerHandle::stuck_deliveries`], so the rest works while
    /// NATS is down, and a NATS that comes back is picked up.
    nats: OnceCell<async_nats::jetstream::Context>,
}

impl TrackerHandle {
    pub(crate) fn new(
        store: Store,
        config: TrackerConfig,
        moved: broadcast::Sender<String>,
        stop: watch::Receiver<bool>,
        store_health: StoreHealth,
        offices: OfficeWatch,
    ) -> Self {
        TrackerHandle {
            inner: Arc::new(Inner {
                store,
                config,
                moved,
                stop,
                store_health,
                offices,
                nats: OnceCell::new(),
            }),
        }
    }

    /// The district offices heard since the tracker started, disconnected ones first.
    pub fn offices(&self) -> Vec<OfficeLink> {
        self.inner.offices.offices()
    }

    /// The tracker's registry: agency and service names, the working calendar.
    /// Read once per page: a registry published meanwhile shows from the next one.
    pub fn registry(&self) -> Arc<Registry> {
        self.inner.config.registry.current()
    }

    /// The tracker's clock (tests set it): overdue is decided against this moment.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.config.clock.now()
    }

    /// How often a live view should read its case again without a notification: events
    /// projected by another tracker process on the same database send none here.
    pub fn watch_poll(&self) -> Duration {
        self.inner.config.watch_poll
    }

    /// The ids of cases whose view moved, from now on. Subscribe before the first read, so a
    /// case that moves in between is not missed.
    pub fn moved(&self) -> broadcast::Receiver<String> {
        self.inner.moved.subscribe()
    }

    /// Whether the tracker's writes commit. While they fail its views fall behind the stream
    /// (nothing is lost: the stream keeps what is not stored), so a readiness check should
    /// fail too.
    pub fn store_health(&self) -> &StoreHealth {
        &self.inner.store_health
    }

    /// Resolves when the tracker stops (at once if it has): what a page serves until.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.inner.stop.clone();
        async move { stopped(&mut stop).await }
    }

    pub async fn case(&self, case_id: &str) -> Result<Option<CaseRecord>, TrackerError> {
        self.inner.store.case(case_id).await
    }

    /// The case, its tasks and its events, of one version (as `GetCase` reads them).
    pub async fn case_detail(&self, case_id: &str) -> Result<Option<CaseDetail>, TrackerError> {
        let store = &self.inner.store;
        // Three reads; if the case moved in between, read again so they belong together.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Some(projected) = store.projected(case_id).await? else {
                return Ok(None);
            };
            let wire = store.events(case_id, 0, projected.case.version).await?;
            let again = store.case(case_id).await?.map(|c| c.version);
            if again == Some(projected.case.version) || attempts >= CONSISTENT_READ_ATTEMPTS {
                let events = wire
                    .iter()
                    .map(|event| {
                        from_wire(event).map(|(event, _)| event).map_err(|e| {
                            TrackerError::Corrupt {
                                what: format!("event of case {case_id}"),
                                why: e.to_string(),
                            }
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(Some(CaseDetail {
                    case: projected.case,
                    tasks: projected.tasks,
                    events,
                    quarantined: store.rejected_for_case(case_id).await?,
                }));
            }
        }
    }

    /// The case a trace id belongs to.
    pub async fn case_by_trace(&self, trace_id: &str) -> Result<Option<String>, TrackerError> {
        self.inner.store.case_by_trace(trace_id).await
    }

    /// The first `limit` cases that match, most recently moved first.
    pub async fn list_cases(
        &self,
        filter: &CaseFilter,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<Vec<CaseRecord>, TrackerError> {
        self.inner.store.list_cases(filter, None, limit, now).await
    }

    /// The open tasks of these cases.
    pub async fn open_tasks_of(
        &self,
        case_ids: &[String],
    ) -> Result<Vec<TaskRecord>, TrackerError> {
        self.inner.store.tasks_of(case_ids, true).await
    }

    /// How many open tasks are past due at `now`.
    pub async fn overdue_count(
        &self,
        filter: &OverdueFilter,
        now: OffsetDateTime,
    ) -> Result<u64, TrackerError> {
        self.inner.store.overdue_count(filter, now).await
    }

    /// One page of the overdue tasks, with working days late by the registry's calendar.
    pub async fn overdue_page(
        &self,
        filter: &OverdueFilter,
        (order, descending): (OverdueOrder, bool),
        offset: u64,
        limit: u64,
        now: OffsetDateTime,
    ) -> Result<Vec<TaskView>, TrackerError> {
        let calendar = &self.registry().calendar;
        self.inner
            .store
            .overdue_page(filter, order, descending, offset, limit, calendar, now)
            .await
    }

    /// Open tasks per agency.
    pub async fn open_task_counts(&self) -> Result<BTreeMap<String, u64>, TrackerError> {
        self.inner.store.open_task_counts().await
    }

    /// Overdue tasks per agency at `now`.
    pub async fn overdue_counts(
        &self,
        now: OffsetDateTime,
    ) -> Result<BTreeMap<String, u64>, TrackerError> {
        self.inner.store.overdue_counts(now).await
    }

    /// Median time held per agency and service, over ended tasks.
    pub async fn median_time_held(&self) -> Result<Vec<HeldStat>, TrackerError> {
        self.inner.store.median_time_held().await
    }

    /// Every stuck delivery, read from the bus with the tracker's NATS identity.
    pub async fn stuck_deliveries(&self) -> Result<StuckReport, TrackerError> {
        stuck_deliveries(&self.jetstream().await?).await
    }

    async fn jetstream(&self) -> Result<async_nats::jetstream::Context, TrackerError> {
        let config = &self.inner.config;
        self.inner
            .nats
            .get_or_try_init(|| async move {
                let once = config
                    .nats
                    .clone()
                    .with_startup_timeout(Some(Duration::ZERO));
                let connect = once.connect(&onedoor_natsauth::Identity::Tracker, |options| {
                    options
                        .name("onedoor-tracker-web")
                        .connection_timeout(Duration::from_secs(3))
                });
                // A page must answer, not hang: a NATS that does not answer in time is
                // reported as unavailable and tried again on the next request.
                let nats = |message: String| {
                    TrackerError::nats("connecting for the stuck-deliveries page", message)
                };
                match tokio::time::timeout(Duration::from_secs(5), connect).await {
                    Ok(Ok(client)) => Ok(async_nats::jetstream::new(client)),
                    Ok(Err(error)) => Err(nats(error.to_string())),
                    Err(_) => Err(nats("timed out".into())),
                }
            })
            .await
            .cloned()
    }
}
