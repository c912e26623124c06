//! The `CaseTracker` gRPC service. Handlers parse the request into domain values, ask the store,
//! and return; every failure is a [`TrackerError`], turned into a status by its one `From`.
//! Each answer is confined to what the [`Caller`] may see (see [`crate::access`]).

use std::sync::Arc;
use std::time::Duration;

use onedoor_proto::v1;
use onedoor_proto::v1::case_tracker_server::CaseTracker;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::access::{Caller, caller_of};
use crate::clock::Clock;
use crate::error::TrackerError;
use crate::offices::{OfficeWatch, offices_response};
use crate::projection::stopped;
use crate::query::{ListQuery, parse_case_id};
use crate::store::{Cursor, Store, to_ns};
use crate::view::{case_view, quarantined_message};

/// Events buffered per `WatchCase` stream. A slow client holds back only its own stream (the
/// watcher waits on a full channel); the events stay in the database meanwhile.
const WATCH_BUFFER: usize = 16;

pub struct TrackerService {
    store: Store,
    clock: Arc<dyn Clock>,
    moved: broadcast::Sender<String>,
    watch_poll: Duration,
    stop: watch::Receiver<bool>,
    /// No access configuration: every caller reads everything (tests, loopback tools).
    open: bool,
    /// The district offices heard since the tracker started (`ListOffices`).
    offices: OfficeWatch,
}

impl TrackerService {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        moved: broadcast::Sender<String>,
        watch_poll: Duration,
        stop: watch::Receiver<bool>,
        open: bool,
    ) -> Self {
        TrackerService {
            store,
            clock,
            moved,
            watch_poll,
            stop,
            open,
            offices: OfficeWatch::new(crate::config::DEFAULT_OFFICE_SILENCE),
        }
    }

    /// Answers `ListOffices` from `offices` (the tracker's own watch).
    pub fn with_offices(mut self, offices: OfficeWatch) -> Self {
        self.offices = offices;
        self
    }

    /// Supervisors only: which offices are cut off says nothing about one agency's cases.
    fn list_offices(&self, caller: &Caller) -> Result<v1::ListOfficesResponse, TrackerError> {
        if let Caller::Agency(agency) = caller {
            return Err(TrackerError::PermissionDenied {
                why: format!("the district offices are for supervisors, not {agency}"),
            });
        }
        Ok(offices_response(&self.offices))
    }

    /// NOT_FOUND, exactly as for a case that does not exist, unless `caller` may see it.
    async fn confine(&self, caller: &Caller, case_id: &str) -> Result<(), TrackerError> {
        if let Caller::Agency(agency) = caller
            && self
                .store
                .cases_involving(agency, &[case_id.to_owned()])
                .await?
                .is_empty()
        {
            return Err(TrackerError::CaseNotFound {
                case_id: case_id.to_owned(),
            });
        }
        Ok(())
    }

    async fn get_case(
        &self,
        caller: &Caller,
        request: &v1::GetCaseRequest,
    ) -> Result<v1::CaseView, TrackerError> {
        let case_id = parse_case_id(&request.case_id)?.to_string();
        self.confine(caller, &case_id).await?;
        // Three reads, each of a committed state; if the case moved between them, read again
        // so the row, its tasks and its timeline belong to one version. (Portable, unlike
        // snapshot isolation levels; a case changes a few times a day.)
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Some(case) = self.store.case(&case_id).await? else {
                return Err(TrackerError::CaseNotFound { case_id });
            };
            let tasks = self
                .store
                .tasks_of(std::slice::from_ref(&case_id), true)
                .await?;
            let events = self.store.events(&case_id, 0, case.version).await?;
            let version_after = self.store.case(&case_id).await?.map(|c| c.version);
            if version_after == Some(case.version) || attempts >= 5 {
                let mut view = case_view(&case, &tasks, events, self.clock.now());
                view.quarantined = self
                    .store
                    .rejected_for_case(&case_id)
                    .await?
                    .iter()
                    .map(quarantined_message)
                    .collect();
                return Ok(view);
            }
        }
    }

    async fn list_cases(
        &self,
        caller: &Caller,
        request: &v1::ListCasesRequest,
    ) -> Result<v1::ListCasesResponse, TrackerError> {
        let query = ListQuery::parse(request)?;
        let now = self.clock.now();
        // An agency's listing is the supervisor's (same order, filters and page tokens) minus
        // the cases it is not part of, which the store leaves out in SQL.
        let mut filter = query.filter.clone();
        if let Caller::Agency(agency) = caller {
            filter.part_of = Some(agency.clone());
        }
        // One more than asked tells whether another page follows.
        let mut cases = self
            .store
            .list_cases(&filter, query.after.as_ref(), query.page_size + 1, now)
            .await?;
        let more = cases.len() > query.page_size;
        cases.truncate(query.page_size);
        let ids: Vec<String> = cases.iter().map(|c| c.case_id.clone()).collect();
        let tasks = self.store.tasks_of(&ids, true).await?;
        let next_page_token = match (more, cases.last()) {
            (true, Some(last)) => query.next_token(&Cursor {
                opened_at_ns: to_ns(last.opened_at),
                case_id: last.case_id.clone(),
            }),
            _ => String::new(),
        };
        let cases = cases
            .iter()
            .map(|case| {
                let open: Vec<_> = tasks
                    .iter()
                    .filter(|t| t.case_id == case.case_id)
                    .cloned()
                    .collect();
                case_view(case, &open, Vec::new(), now)
            })
            .collect();
        Ok(v1::ListCasesResponse {
            cases,
            next_page_token,
        })
    }

    async fn watch_case(
        &self,
        caller: &Caller,
        request: &v1::WatchCaseRequest,
    ) -> Result<ReceiverStream<Result<v1::WatchCaseResponse, Status>>, TrackerError> {
        let case_id = parse_case_id(&request.case_id)?.to_string();
        self.confine(caller, &case_id).await?;
        // Subscribe before the first read, so an event projected in between is not missed.
        let moved = self.moved.subscribe();
        if self.store.case(&case_id).await?.is_none() {
            return Err(TrackerError::CaseNotFound { case_id });
        }
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let watcher = Watcher {
            store: self.store.clone(),
            case_id,
            last: request.after_version,
            moved,
            poll: self.watch_poll,
            stop: self.stop.clone(),
            tx,
        };
        tokio::spawn(watcher.run());
        Ok(ReceiverStream::new(rx))
    }
}

/// Feeds one `WatchCase` stream: stored events first, then each new one as it is projected.
struct Watcher {
    store: Store,
    case_id: String,
    /// The last version sent (or the caller's `after_version`).
    last: u64,
    moved: broadcast::Receiver<String>,
    poll: Duration,
    stop: watch::Receiver<bool>,
    tx: mpsc::Sender<Result<v1::WatchCaseResponse, Status>>,
}

impl Watcher {
    async fn run(mut self) {
        loop {
            match self.send_new().await {
                Ok(true) => {}
                // Resolved and sent, or the client went away.
                Ok(false) => return,
                Err(error) => {
                    let _ = self.tx.send(Err(Status::from(error))).await;
                    return;
                }
            }
            tokio::select! {
                _ = self.tx.closed() => return,
                _ = stopped(&mut self.stop) => return,
                _ = wait_for_case(&mut self.moved, &self.case_id) => {}
                // Events projected by another process on the same database send no
                // notification here; poll for them now and then.
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Sends every projected event after `last`. `Ok(false)` when the stream should end.
    async fn send_new(&mut self) -> Result<bool, TrackerError> {
        let Some(case) = self.store.case(&self.case_id).await? else {
            return Ok(true);
        };
        if case.version > self.last {
            for event in self
                .store
                .events(&self.case_id, self.last, case.version)
                .await?
            {
                self.last = event.case_version;
                let resolved = matches!(event.body, Some(v1::case_event::Body::Resolved(_)));
                let item = v1::WatchCaseResponse { event: Some(event) };
                if self.tx.send(Ok(item)).await.is_err() {
                    return Ok(false);
                }
                if resolved {
                    return Ok(false);
                }
            }
        }
        // Resuming after the resolution: nothing more will ever come.
        let resolved = matches!(case.status, onedoor_case::CaseStatus::Resolved(_));
        Ok(!(resolved && self.last >= case.version))
    }
}

/// Returns when `case_id` moved, or when notifications were lost (lagged): either way the
/// caller re-reads the database.
async fn wait_for_case(moved: &mut broadcast::Receiver<String>, case_id: &str) {
    loop {
        match moved.recv().await {
            Ok(id) if id == case_id => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            // The projection is gone; only the poll can still find events. Never return, so
            // the select falls to the poll timer instead of spinning.
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

#[tonic::async_trait]
impl CaseTracker for TrackerService {
    #[tracing::instrument(skip_all, fields(case_id = %request.get_ref().case_id))]
    async fn get_case(
        &self,
        request: Request<v1::GetCaseRequest>,
    ) -> Result<Response<v1::CaseView>, Status> {
        let caller = caller_of(&request, self.open)?;
        Ok(Response::new(
            self.get_case(&caller, request.get_ref()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn list_cases(
        &self,
        request: Request<v1::ListCasesRequest>,
    ) -> Result<Response<v1::ListCasesResponse>, Status> {
        let caller = caller_of(&request, self.open)?;
        Ok(Response::new(
            self.list_cases(&caller, request.get_ref()).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn list_offices(
        &self,
        request: Request<v1::ListOfficesRequest>,
    ) -> Result<Response<v1::ListOfficesResponse>, Status> {
        let caller = caller_of(&request, self.open)?;
        Ok(Response::new(self.list_offices(&caller)?))
    }

    type WatchCaseStream = ReceiverStream<Result<v1::WatchCaseResponse, Status>>;

    #[tracing::instrument(skip_all, fields(case_id = %request.get_ref().case_id))]
    async fn watch_case(
        &self,
        request: Request<v1::WatchCaseRequest>,
    ) -> Result<Response<Self::WatchCaseStream>, Status> {
        let caller = caller_of(&request, self.open)?;
        Ok(Response::new(
            self.watch_case(&caller, request.get_ref()).await?,
        ))
    }
}
