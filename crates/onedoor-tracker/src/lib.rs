//! The tracker: reads every case event from the ONEDOOR stream (durable consumer `tracker`),
//! keeps each case's view in SQLite or PostgreSQL, and serves `CaseTracker` over gRPC so front
//! office staff can answer "where is my case, who has it, since when, is it late?".
//!
//! The views are a projection: built by the shared case rules (`CaseState::fold`) over each
//! case's stored events, never by rules of our own, and rebuilt at will from the stream.
//!
//! # Layout
//!
//! - [`run`]: the one entry point; the CLI's `onedoor tracker` and the tests call it with a
//!   bound listener and a shutdown future. [`Tracker::start`] is the same in two steps, for a
//!   caller that also serves the staff web page (crate `onedoor-web`) from its [`TrackerHandle`].
//!   [`rebuild`] replays the stream into an empty database.
//! - [`handle`]: [`TrackerHandle`], the narrow read interface the web page uses (case views,
//!   lists, statistics, stuck deliveries, "case moved", the clock), never the store itself.
//! - [`config`]: [`TrackerConfig`] (NATS URL, [`DatabaseUrl`], registry, clock, consumer name);
//!   [`database_url`]: the database URL forms accepted, checked before connecting.
//! - [`projection`]: the durable consumer loop; acks after commit, and while commits fail
//!   acks nothing and retries. [`store_health`]: [`StoreHealth`], what it reports (gRPC
//!   health, the web page's readiness, metrics).
//! - [`store`]: [`Store`], the one SQL layer (sqlx Any, `$1` placeholders, per-backend
//!   migrations under `migrations/`): storing events, case views, staff queries, statistics.
//! - [`view`]: the rows made from a fold, the wire `CaseView` made from rows at a given moment,
//!   the timeline with time held per task.
//! - [`query`]: `ListCasesRequest` parsing and opaque page tokens.
//! - [`grpc`]: the `CaseTracker` service (`GetCase`, `ListCases`, `WatchCase`); [`access`]:
//!   who may call it (agencies by token or client certificate, a supervisor) and what each sees.
//! - [`offices`]: [`OfficeWatch`], which district offices the capital hears from (their
//!   status messages), for the supervisor's page and the office gauges.
//! - [`stuck`]: stuck deliveries, read from the inbox's KV bucket `ONEDOOR_STUCK`.
//! - [`clock`]: [`Clock`]; overdue is decided at query time, so tests set the time.
//! - [`metrics`]: metric names (`metrics` facade), including the overdue-task gauge.
//! - [`error`]: [`TrackerError`], the crate's one error type, and its one mapping to gRPC codes.

pub mod access;
pub mod clock;
pub mod config;
pub mod database_url;
pub mod error;
pub mod grpc;
pub mod handle;
pub mod metrics;
pub mod offices;
pub mod projection;
pub mod query;
pub mod store;
pub mod store_health;
pub mod stuck;
pub mod view;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use onedoor_grpc::server::Observed;
use onedoor_proto::v1::case_tracker_server::CaseTrackerServer;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::Router;

pub use access::{Caller, GrpcAccess};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    Backend, DEFAULT_ACK_WAIT, DatabaseUrl, TlsIdentity, TrackerConfig, built_in_registry,
};
pub use error::TrackerError;
pub use handle::{CaseDetail, TrackerHandle};
pub use offices::{OfficeLink, OfficeWatch, WaitingStep};
pub use projection::{Projection, RebuildReport, rebuild};
pub use store::{Applied, Store};
pub use store_health::{StoreHealth, StoreState};

use crate::grpc::TrackerService;
use crate::metrics::OverdueGauges;

/// Largest gRPC message the tracker accepts or sends. A case's full timeline is at most a few
/// hundred events of a few KiB; 8 MiB leaves room without inviting abuse.
const MAX_MESSAGE_BYTES: usize = 8 << 20;
/// Notifications "case X moved" buffered for `WatchCase` streams; a watcher that lags re-reads
/// the database, so this only bounds memory.
const MOVED_BUFFER: usize = 1024;
/// The service's full name, as health and reflection list it.
const CASE_TRACKER: &str = "onedoor.v1.CaseTracker";

/// Runs the tracker until `shutdown` resolves: [`Tracker::start`], then [`Tracker::wait`].
pub async fn run(
    config: TrackerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), TrackerError> {
    Tracker::start(config, listener, shutdown)
        .await?
        .wait()
        .await
}

/// Follows the operator's published registry (`onedoor_bus::registry_feed`) on a connection
/// of its own, answering as `tracker`, until the tracker stops.
async fn follow_registry(config: TrackerConfig, mut stop: watch::Receiver<bool>) {
    let connected = tokio::select! {
        client = config.connect_nats("onedoor-tracker-registry") => client,
        _ = stop.wait_for(|stopped| *stopped) => return,
    };
    let client = match connected {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot follow the published registry; restart the tracker to move to a new one");
            return;
        }
    };
    let _follower = onedoor_bus::registry_feed::follow(
        async_nats::jetstream::new(client),
        config.registry.clone(),
        "tracker",
    );
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// A running tracker. Its [`TrackerHandle`] lets a page served beside it (the staff web page,
/// on its own listener) read what the tracker projects, sharing its database, clock and "case
/// moved" notifications, so live pages move with the projection.
pub struct Tracker {
    handle: TrackerHandle,
    served: JoinHandle<Result<(), TrackerError>>,
    tasks: Vec<JoinHandle<()>>,
    store: Store,
}

impl Tracker {
    /// Starts the tracker, which runs until `shutdown` resolves: connects the database
    /// (running migrations), starts the projection (which connects to NATS in the background
    /// and retries, so the API answers from the database even while NATS is down), and serves
    /// `CaseTracker`, gRPC health and reflection on `listener`.
    pub async fn start(
        config: TrackerConfig,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Self, TrackerError> {
        config.validate()?;
        metrics::describe();
        let mut store = Store::connect(&config.database)
            .await?
            .with_names(config.registry.clone());
        if config.verify_signatures {
            store = store.with_audit(config.registry.clone());
        }
        let client = config.first_connection("onedoor-tracker").await?;
        let (moved, _) = broadcast::channel(MOVED_BUFFER);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (nats_up, nats_answering) = watch::channel(client.is_some());

        let offices = OfficeWatch::new(config.office_silence);
        let projection = Projection::new(store.clone(), moved.clone());
        let store_health = projection.health();
        let mut tasks = vec![
            tokio::spawn(projection::run_live(
                projection,
                config.clone(),
                client,
                nats_up,
                stop_rx.clone(),
            )),
            tokio::spawn(offices::run(
                offices.clone(),
                config.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(refresh_overdue_gauges(
                store.clone(),
                config.clock.clone(),
                config.sla_refresh,
                stop_rx.clone(),
            )),
        ];
        if config.follow_registry {
            tasks.push(tokio::spawn(follow_registry(
                config.clone(),
                stop_rx.clone(),
            )));
        }
        let (router, health_task) = grpc_router(
            &config,
            &store,
            &store_health,
            &offices,
            moved.clone(),
            nats_answering,
            stop_rx.clone(),
        )
        .await?;
        tasks.push(health_task);
        let address = listener
            .local_addr()
            .map_or_else(|_| "unknown".to_owned(), |a| a.to_string());
        tracing::info!(%address, database = %config.database, consumer = %config.consumer, tls = config.tls.is_some(), authenticated = config.grpc_access.is_some(), "tracker serving");
        let handle =
            TrackerHandle::new(store.clone(), config, moved, stop_rx, store_health, offices);
        let served = tokio::spawn(async move {
            router
                // TCP_NODELAY: tonic ignores its own setting for a listener it is handed, and
                // without it each reply waits for the client's delayed ACK (~40 ms).
                .serve_with_incoming_shutdown(
                    onedoor_grpc::server::incoming(listener),
                    async move {
                        shutdown.await;
                        // Ends WatchCase streams (the server waits for open calls), the
                        // projection and whatever serves from the handle.
                        let _ = stop_tx.send(true);
                    },
                )
                .await
                .map_err(|e| TrackerError::Serve(e.to_string()))
        });
        Ok(Tracker {
            handle,
            served,
            tasks,
            store,
        })
    }

    /// What a page beside the tracker may read, until the tracker stops.
    pub fn handle(&self) -> TrackerHandle {
        self.handle.clone()
    }

    /// Waits until the tracker has stopped, then closes its database. Await whatever serves
    /// from [`Tracker::handle`] first (it stops on the same signal), so its last requests still
    /// find the database open.
    pub async fn wait(self) -> Result<(), TrackerError> {
        let served = self
            .served
            .await
            .map_err(|e| TrackerError::Serve(format!("gRPC task: {e}")))
            .and_then(|served| served);
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "a tracker task ended abnormally");
            }
        }
        self.store.close().await;
        tracing::info!("tracker stopped");
        served
    }
}

/// The gRPC server: `CaseTracker` (behind its access check), health (following the
/// database and NATS, in the returned task) and reflection, over TLS when configured; every call counted
/// (`onedoor_tracker_rpc_total`) and answered with a `traceparent`.
async fn grpc_router(
    config: &TrackerConfig,
    store: &Store,
    store_health: &StoreHealth,
    offices: &OfficeWatch,
    moved: broadcast::Sender<String>,
    nats_answering: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
) -> Result<(Router<Observed>, JoinHandle<()>), TrackerError> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<CaseTrackerServer<TrackerService>>()
        .await;
    // Every answer comes from the database, and is only as fresh as NATS and the projection's
    // writes let it be: health follows all three, so a load balancer or operator sees an
    // outage before a clerk's search fails or reads a view that stopped moving.
    let health_task = tokio::spawn(watch_health(
        store.clone(),
        store_health.clone(),
        health_reporter,
        nats_answering,
        stop.clone(),
    ));
    let service = TrackerService::new(
        store.clone(),
        config.clock.clone(),
        moved,
        config.watch_poll,
        stop,
        config.grpc_access.is_none(),
    )
    .with_offices(offices.clone());
    let service = CaseTrackerServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    // Health stays anonymous (probes); reflection too (it shows the public contract only).
    let mut check = config.grpc_access.clone().map(GrpcAccess::interceptor);
    let service = InterceptedService::new(service, move |request| match check.as_mut() {
        Some(check) => check(request),
        None => Ok(request),
    });
    if config.grpc_access.is_none() {
        tracing::warn!(
            "CaseTracker gRPC has no access configuration: anyone who reaches it reads every case"
        );
    }

    let grpc = |e: onedoor_grpc::GrpcError| TrackerError::Serve(e.to_string());
    let calls = onedoor_grpc::CallMetrics::new("tracker", Vec::new());
    let router = onedoor_grpc::server::builder(config.tls.as_ref(), calls)
        .map_err(grpc)?
        .add_service(health_service)
        .add_service(onedoor_grpc::server::reflection(&[CASE_TRACKER]).map_err(grpc)?)
        .add_service(onedoor_grpc::server::reflection_v1alpha(&[CASE_TRACKER]).map_err(grpc)?)
        .add_service(service);
    Ok((router, health_task))
}

/// Overdue changes with time alone, so the breach gauges are recomputed on a timer, not on
/// events.
async fn refresh_overdue_gauges(
    store: Store,
    clock: Arc<dyn Clock>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let gauges = OverdueGauges::default();
    loop {
        match store.overdue_counts(clock.now()).await {
            Ok(counts) => gauges.update(&counts),
            Err(error) => tracing::warn!(%error, "cannot count overdue tasks"),
        }
        tokio::select! {
            _ = projection::stopped(&mut stop) => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// How often the database is checked for the health service.
const HEALTH_CHECK_EVERY: Duration = Duration::from_secs(2);
/// A database that takes longer than this to answer `SELECT 1` is as good as gone for a clerk
/// waiting at the counter; without it, a hung connection would keep reporting SERVING for the
/// pool's whole acquire timeout.
const HEALTH_PING_TIMEOUT: Duration = Duration::from_secs(3);

/// A failing write leaves reads answering, but further behind every minute: an outage for
/// the clerk asking where a case is, so it counts like a database that does not answer.
async fn watch_health(
    store: Store,
    store_health: StoreHealth,
    health: tonic_health::server::HealthReporter,
    mut nats_answering: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut writes = store_health.subscribe();
    let mut serving = true;
    let mut nats_gone = false;
    loop {
        let database = matches!(
            tokio::time::timeout(HEALTH_PING_TIMEOUT, store.ping()).await,
            Ok(Ok(()))
        );
        let nats = *nats_answering.borrow_and_update();
        let writes_commit = store_health.is_healthy();
        let healthy = database && nats && writes_commit;
        if healthy != serving {
            serving = healthy;
            if healthy {
                tracing::info!("database, its writes and NATS answer again; reporting SERVING");
            } else {
                tracing::warn!(database, writes_commit, nats, "reporting NOT_SERVING");
            }
            let status = if healthy {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            // The server as a whole too: what a probe without a service name asks.
            for service in [CASE_TRACKER, ""] {
                health.set_service_status(service, status).await;
            }
        }
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            // A failing write is reported at once, not at the next ping.
            _ = writes.changed() => {}
            () = tokio::time::sleep(HEALTH_CHECK_EVERY) => {}
            changed = nats_answering.changed(), if !nats_gone => nats_gone = changed.is_err(),
        }
    }
}
