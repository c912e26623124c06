//! [`TestBus`]: a real nats-server with the contract stream, the shipped registry with a signing
//! key per agency, and the case verbs written through the real write path.

use std::collections::HashMap;
use std::sync::Arc;

use async_nats::jetstream;
use onedoor_bus::{
    BusError, CaseLog, Signer, StreamSettings, WriteRequest, Written, ensure_stream,
};
use onedoor_case::{Action, CaseId, Command, EventId, Registry, Resolution, ServiceCode};
use time::OffsetDateTime;

use crate::adapter::RunningAdapter;
use crate::registry::{FRONT, code, registry_with_keys};
use crate::single::TestNats;

/// A running bus: one nats-server node with the `ONEDOOR` stream, and any adapters started on
/// it (see [`crate::adapter`]).
///
/// Agencies act in two ways: through the real write path in-process ([`TestBus::act`] and the
/// verbs after it, as the tracker tests do), or through a real adapter over gRPC
/// ([`TestBus::agency`] gives its [`crate::TestAgency`]).
pub struct TestBus {
    pub nats: TestNats,
    /// JetStream on the one client connection the log writes with.
    pub js: jetstream::Context,
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
            log: CaseLog::open(js.clone()).await?,
            js,
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

    /// The write request for `agency` doing `action` to the case at `at` (the adapter's
    /// clock), with fresh event id and idempotency key.
    pub fn request_at(
        &self,
        case_id: CaseId,
        agency: &str,
        action: Action,
        at: OffsetDateTime,
    ) -> WriteRequest {
        write_request(case_id, agency, action, at)
    }

    /// [`TestBus::request_at`] now.
    pub fn request(&self, case_id: CaseId, agency: &str, action: Action) -> WriteRequest {
        self.request_at(case_id, agency, action, OffsetDateTime::now_utc())
    }

    /// `agency` does `action` to the case at `at` (the adapter's clock).
    pub async fn act(
        &self,
        case_id: CaseId,
        agency: &str,
        action: Action,
        at: OffsetDateTime,
    ) -> Result<Written, BusError> {
        let request = self.request_at(case_id, agency, action, at);
        // Signed as the agency's adapter would, so that readers checking signatures believe it.
        let log = match self.signers.get(agency) {
            Some(signer) => self.log.clone().with_signer(signer.clone()),
            None => self.log.clone(),
        };
        log.execute(&request, &self.registry).await
    }

    /// `agency` does `action` to the case now.
    pub async fn act_now(
        &self,
        case_id: CaseId,
        agency: &str,
        action: Action,
    ) -> Result<Written, BusError> {
        self.act(case_id, agency, action, OffsetDateTime::now_utc())
            .await
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

    /// Opens an enterprise registration at [`FRONT`] now and hands it to `to`: one event in
    /// `to`'s inbox. Returns the hand-off.
    pub async fn hand_off_new_case(&self, to: &str) -> anyhow::Result<Written> {
        open_and_hand_off(&self.log, &self.registry, to).await
    }

    /// Messages in the `ONEDOOR` stream: every event ever written, on any case, plus anything
    /// published by hand.
    pub async fn stream_messages(&self) -> anyhow::Result<u64> {
        let js = self.nats.jetstream().await?;
        let mut stream = js.get_stream(onedoor_bus::STREAM_NAME).await?;
        Ok(stream.info().await?.state.messages)
    }
}

/// The write request for `agency` doing `action` to the case at `at`, with fresh event id and
/// idempotency key.
pub fn write_request(
    case_id: CaseId,
    agency: &str,
    action: Action,
    at: OffsetDateTime,
) -> WriteRequest {
    WriteRequest {
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
    }
}

/// Through `log`, [`FRONT`] opens an enterprise registration now and hands it to `to`: one
/// event in `to`'s inbox. Returns the hand-off.
pub async fn open_and_hand_off(
    log: &CaseLog,
    registry: &Registry,
    to: &str,
) -> anyhow::Result<Written> {
    let case_id = CaseId::generate();
    let now = OffsetDateTime::now_utc();
    let open = Action::Open {
        service: ServiceCode::parse("enterprise-registration")?,
        citizen_ref: "R-1".into(),
        summary: "ຮ້ານຄ້າ".into(),
        documents: vec![],
    };
    log.execute(&write_request(case_id, FRONT, open, now), registry)
        .await?;
    let hand_off = Action::HandOff {
        to: code(to),
        instructions: "please".into(),
        documents: vec![],
        due_working_days: None,
    };
    let request = write_request(case_id, FRONT, hand_off, OffsetDateTime::now_utc());
    Ok(log.execute(&request, registry).await?)
}

/// The subject `stored` was published on by its writer, for feeding a projection by hand (it
/// refuses a payload that does not belong on its subject).
pub fn subject_of(stored: &onedoor_bus::StoredEvent) -> String {
    onedoor_bus::subjects::event_subject(&stored.event).unwrap_or_default()
}
