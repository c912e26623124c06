//! A district office's writes on a weak link (`docs/district-offices.md`): a write the capital
//! cannot take now goes to the office's outbox on its own nats-server, decided on what the
//! office knows of the case; a forwarder task delivers the outbox to the national stream; the
//! outbox's metrics (`onedoor_outbox_*`, `onedoor_office_capital_connected`) are kept current.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream;
use onedoor_bus::office_status::{
    OfficeStatus, WAITING_LISTED, WaitingStep, office_status_subject,
};
use onedoor_bus::outbox::{Forwarder, ForwarderStats, Outbox, OutboxWritten};
use onedoor_bus::{
    BusError, CaseLog, NatsErrorKind, Signer, StoredEvent, Verified, WriteRequest, Written,
};
use onedoor_case::{AgencyCode, CaseId, Registry};
use prost::Message as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::AdapterError;
use crate::metrics as m;

/// How often the outbox metrics are brought up to date and the office's status is sent to
/// the capital (the tracker's silence bound is a few of these).
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// The office's outbox and its connection to the capital.
#[derive(Clone)]
pub(crate) struct OfficeWrites {
    outbox: Outbox,
    national: async_nats::Client,
}

impl OfficeWrites {
    /// Connects to the office's node at `node_url`, opens its outbox and starts the forwarder
    /// on `national` (the adapter's own connection to the capital), stopped by `stopping`.
    pub(crate) async fn start(
        agency: &AgencyCode,
        node_url: &str,
        signer: Option<Signer>,
        national: &jetstream::Context,
        stopping: watch::Receiver<bool>,
    ) -> Result<(Self, JoinHandle<()>), AdapterError> {
        let node = async_nats::connect(node_url)
            .await
            .map_err(|e| AdapterError::Config(format!("office node {node_url}: {e}")))?;
        let local = jetstream::new(node);
        let mut outbox = Outbox::open(local.clone(), agency.clone()).await?;
        if let Some(signer) = signer {
            outbox = outbox.with_signer(signer);
        }
        let forwarder = Forwarder::new(local, national.clone(), agency.clone()).await?;
        let stats = forwarder.stats();
        let writes = OfficeWrites {
            outbox,
            national: national.client(),
        };
        let watched = writes.clone();
        let agency = agency.to_string();
        let task = tokio::spawn(async move {
            let report = watched.report(agency, stats, stopping.clone());
            tokio::select! {
                result = forwarder.run(stopping) => if let Err(error) = result {
                    tracing::error!(%error, "the office's forwarder stopped");
                },
                () = report => {}
            }
        });
        Ok((writes, task))
    }

    /// Keeps the outbox metrics current (every [`REPORT_EVERY`]) until `stopping`.
    async fn report(
        &self,
        agency: String,
        stats: Arc<ForwarderStats>,
        mut stopping: watch::Receiver<bool>,
    ) {
        let mut reported = (0, 0);
        let mut tick = tokio::time::interval(REPORT_EVERY);
        while !*stopping.borrow() {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopping.changed() => {}
            }
            let connected =
                self.national.connection_state() == async_nats::connection::State::Connected;
            metrics::gauge!(m::CAPITAL_CONNECTED, "agency" => agency.clone()).set(if connected {
                1.0
            } else {
                0.0
            });
            let now = (
                stats.delivered.load(Ordering::Relaxed),
                stats.conflicts.load(Ordering::Relaxed),
            );
            if let Ok((pending, oldest_pending)) = self.outbox.pending_summary().await {
                metrics::gauge!(m::OUTBOX_PENDING, "agency" => agency.clone()).set(pending as f64);
                if connected {
                    let status = OfficeStatus {
                        pending,
                        oldest_pending,
                        conflicts: now.1,
                        sent_at: time::OffsetDateTime::now_utc(),
                        waiting: self.waiting(pending).await,
                    };
                    self.send_status(&agency, &status).await;
                }
            }
            metrics::counter!(m::OUTBOX_DELIVERED, "agency" => agency.clone())
                .increment(now.0 - reported.0);
            metrics::counter!(m::OUTBOX_CONFLICTS, "agency" => agency.clone())
                .increment(now.1 - reported.1);
            reported = now;
        }
    }

    /// The oldest steps waiting, for the status; none when `pending` says none wait, and none
    /// (only the count) when the outbox cannot be read now.
    async fn waiting(&self, pending: u64) -> Vec<WaitingStep> {
        if pending == 0 {
            return Vec::new();
        }
        self.outbox
            .oldest_waiting(WAITING_LISTED)
            .await
            .unwrap_or_else(|error| {
                tracing::debug!(%error, "cannot list the waiting steps for the status");
                Vec::new()
            })
    }

    /// Tells the national tracker the office is connected and what waits in its outbox. A
    /// status lost with the link is not retried: silence is what the tracker watches for.
    async fn send_status(&self, agency: &str, status: &OfficeStatus) {
        let body = match serde_json::to_vec(status) {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(%error, "cannot encode the office's status");
                return;
            }
        };
        if let Err(error) = self
            .national
            .publish(office_status_subject(agency), body.into())
            .await
        {
            tracing::debug!(%error, "the office's status was not sent");
        }
    }

    /// Whether a write on `case_id` must go to the outbox: the capital is out of reach, or
    /// the case has events waiting there (a new one must follow them).
    pub(crate) async fn must_queue(&self, case_id: CaseId) -> Result<bool, AdapterError> {
        let connected =
            self.national.connection_state() == async_nats::connection::State::Connected;
        Ok(!connected || self.outbox.has_pending(case_id).await?)
    }

    /// Keeps an event written straight to the national stream, for offline decisions.
    pub(crate) async fn remember(&self, written: &Written) -> Result<(), AdapterError> {
        let stored = StoredEvent {
            sequence: written.sequence,
            payload: written.prepared.wire.encode_to_vec().into(),
            wire: written.prepared.wire.clone(),
            event: written.event.clone(),
            envelope: onedoor_proto::convert::from_wire(&written.prepared.wire)
                .map_err(|e| BusError::Encode { why: e.to_string() })?
                .1,
        };
        Ok(self.outbox.remember_delivered(&stored).await?)
    }

    /// The case as the office knows it, for GetCase: its national history (read from the
    /// capital when it answers, else what the office kept) followed by the office's events
    /// still in the outbox, and the ids of those ("waiting for the link").
    pub(crate) async fn case_history(
        &self,
        log: &CaseLog,
        case_id: CaseId,
    ) -> Result<(Verified, Vec<String>), AdapterError> {
        let pending = self.outbox.pending(case_id).await?;
        let connected =
            self.national.connection_state() == async_nats::connection::State::Connected;
        let mut verified = if connected {
            match log.load_verified(case_id).await {
                Ok(verified) => verified,
                Err(error) if out_of_reach(&error) => Verified::default(),
                // A case only in the outbox is not in the capital yet: the reader does not
                // know it, and the office wrote it, so it is a party.
                Err(_) if !pending.is_empty() => Verified::default(),
                Err(error) => return Err(error.into()),
            }
        } else {
            Verified::default()
        };
        verified.accepted = self.outbox.known(case_id, &verified.accepted).await?;
        let known: HashSet<_> = verified.accepted.iter().map(|s| s.event.event_id).collect();
        // An entry the forwarder delivered but has not yet removed is national already.
        let waiting: Vec<StoredEvent> = pending
            .into_iter()
            .map(|p| p.stored)
            .filter(|s| !known.contains(&s.event.event_id))
            .collect();
        let awaiting = waiting
            .iter()
            .map(|s| s.event.event_id.to_string())
            .collect();
        verified.accepted.extend(waiting);
        Ok((verified, awaiting))
    }

    /// Decides and stores `request` in the outbox: on the case as read from the capital when
    /// the link is up, on what the office knows of it otherwise.
    pub(crate) async fn write(
        &self,
        log: &CaseLog,
        request: &WriteRequest,
        registry: &Registry,
    ) -> Result<OutboxWritten, AdapterError> {
        let connected =
            self.national.connection_state() == async_nats::connection::State::Connected;
        let national = if connected {
            match log.load(request.case_id).await {
                Ok(history) => history,
                Err(error) if out_of_reach(&error) => Vec::new(),
                Err(error) => return Err(error.into()),
            }
        } else {
            Vec::new()
        };
        Ok(self.outbox.execute(request, registry, &national).await?)
    }
}

/// The capital did not answer: decide on what the office knows.
pub(crate) fn out_of_reach(error: &BusError) -> bool {
    matches!(
        error.nats_kind(),
        Some(NatsErrorKind::NoResponders | NatsErrorKind::TimedOut | NatsErrorKind::Connection)
    )
}
