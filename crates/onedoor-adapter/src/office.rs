//! A district office's writes on a weak link (`docs/district-offices.md`): every write goes to
//! the office's outbox on its own nats-server, decided on what the office knows of the case, and
//! a forwarder task delivers the outbox to the national stream.

use async_nats::jetstream;
use onedoor_bus::outbox::{Forwarder, Outbox, OutboxWritten};
use onedoor_bus::{BusError, CaseLog, NatsErrorKind, Signer, StoredEvent, WriteRequest, Written};
use onedoor_case::{AgencyCode, CaseId, Registry};
use prost::Message as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::AdapterError;

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
        let task = tokio::spawn(async move {
            if let Err(error) = forwarder.run(stopping).await {
                tracing::error!(%error, "the office's forwarder stopped");
            }
        });
        let writes = OfficeWrites {
            outbox,
            national: national.client(),
        };
        Ok((writes, task))
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
