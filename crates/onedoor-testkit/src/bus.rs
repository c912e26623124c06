//! [`TestBus`]: a real nats-server with the contract stream, the shipped registry with a signing
//! key per agency, and the case verbs written through the real write path.

use std::collections::HashMap;
use std::sync::Arc;

use onedoor_bus::{
    BusError, CaseLog, Signer, StreamSettings, WriteRequest, Written, ensure_stream,
};
use onedoor_case::{Action, CaseId, Command, EventId, Registry, Resolution, ServiceCode};
use time::OffsetDateTime;

use crate::adapter::RunningAdapter;
use crate::registry::{code, registry_with_keys};
use crate::single::TestNats;

/// A running bus: one nats-server node with the `ONEDOOR` stream, and any adapters started on
/// it (see [`crate::adapter`]).
///
/// Agencies act in two ways: through the real write path in-process ([`TestBus::act`] and the
/// verbs after it, as the tracker tests do), or through a real adapter over gRPC
/// ([`TestBus::agency`] gives its [`crate::TestAgency`]).
pub struct TestBus {
    pub nats: TestNats,
    /// An unsigned writer on the stream (the write path with the case rules).
    pub log: CaseLog,
    /// The shipped registry with one fresh signing key per agency.
    pub registry: Arc<Registry>,
    /// Each agency's signer, by code; adapters sign with these.
    pub signers: HashMap<String, Signer>,
    /// The adapters running, by agency.
    pub adapters: HashMap<String, RunningAdapter>,
}

impl TestBus {
    /// A bus with no adapter running.
    pub async fn start() -> anyhow::Result<Self> {
        let nats = TestNats::start().await?;
        let js = nats.jetstream().await?;
        ensure_stream(&js, &StreamSettings::development()).await?;
        let (registry, signers) = registry_with_keys();
        Ok(TestBus {
            log: CaseLog::open(js).await?,
            nats,
            registry,
            signers,
            adapters: HashMap::new(),
        })
    }

    /// A bus with a running adapter for each of `agencies`.
    pub async fn with_adapters(agencies: &[&str]) -> anyhow::Result<Self> {
        let mut bus = TestBus::start().await?;
        for agency in agencies {
            bus.start_adapter(agency).await?;
        }
        Ok(bus)
    }

    /// `agency` does `action` to the case at `at` (the adapter's clock).
    pub async fn act(
        &self,
        case_id: CaseId,
        agency: &str,
        action: Action,
        at: OffsetDateTime,
    ) -> Result<Written, BusError> {
        let request = WriteRequest {
            case_id,
            event_id: EventId::generate(),
            command: Command {
                agency: code(agency),
                actor: format!("officer@{agency}"),
                at,
                action,
            },
            idempotency_key: format!("key-{}", EventId::generate()),
            caller_trace: None,
        };
        self.log.execute(&request, &self.registry).await
    }

    pub async fn open(
        &self,
        front: &str,
        service: &str,
        citizen_ref: &str,
        summary: &str,
        at: OffsetDateTime,
    ) -> anyhow::Result<CaseId> {
        let case_id = CaseId::generate();
        let action = Action::Open {
            service: ServiceCode::parse(service)?,
            citizen_ref: citizen_ref.into(),
            summary: summary.into(),
            documents: vec![],
        };
        self.act(case_id, front, action, at).await?;
        Ok(case_id)
    }

    pub async fn hand_off(
        &self,
        case_id: CaseId,
        from: &str,
        to: &str,
        due_working_days: Option<u32>,
        at: OffsetDateTime,
    ) -> anyhow::Result<Written> {
        let action = Action::HandOff {
            to: code(to),
            instructions: "please review".into(),
            documents: vec![],
            due_working_days,
        };
        Ok(self.act(case_id, from, action, at).await?)
    }

    pub async fn accept(
        &self,
        case_id: CaseId,
        agency: &str,
        at: OffsetDateTime,
    ) -> anyhow::Result<Written> {
        Ok(self.act(case_id, agency, Action::Accept, at).await?)
    }

    pub async fn complete(
        &self,
        case_id: CaseId,
        agency: &str,
        at: OffsetDateTime,
    ) -> anyhow::Result<Written> {
        let action = Action::Complete {
            outcome: "approved".into(),
            note: String::new(),
            documents: vec![],
        };
        Ok(self.act(case_id, agency, action, at).await?)
    }

    /// `agency` accepts its task at `accepted` and completes it at `completed`.
    pub async fn complete_after_accept(
        &self,
        case_id: CaseId,
        agency: &str,
        accepted: OffsetDateTime,
        completed: OffsetDateTime,
    ) -> anyhow::Result<()> {
        self.accept(case_id, agency, accepted).await?;
        self.complete(case_id, agency, completed).await?;
        Ok(())
    }

    pub async fn resolve(
        &self,
        case_id: CaseId,
        front: &str,
        at: OffsetDateTime,
    ) -> anyhow::Result<Written> {
        let action = Action::Resolve {
            resolution: Resolution::Approved,
            note: String::new(),
        };
        Ok(self.act(case_id, front, action, at).await?)
    }

    /// Messages in the `ONEDOOR` stream: every event ever written, on any case, plus anything
    /// published by hand.
    pub async fn stream_messages(&self) -> anyhow::Result<u64> {
        let js = self.nats.jetstream().await?;
        let mut stream = js.get_stream(onedoor_bus::STREAM_NAME).await?;
        Ok(stream.info().await?.state.messages)
    }
}
