//! Hostile messages on a case, as an agency with valid NATS credentials can publish them on
//! its own subjects (`onedoor.v1.case.<case>.<AGENCY>.*`), each claiming the case's next
//! version: what every reader of the stream must quarantine without the case stopping.

use anyhow::Context as _;
use bytes::Bytes;
use onedoor_bus::snapshot::payload_digest;
use onedoor_bus::{CaseLog, Written};
use onedoor_case::{Action, CaseId};
use onedoor_proto::v1;
use onedoor_proto::v1::case_event::Body;
use prost::Message as _;
use time::OffsetDateTime;

use crate::{FRONT, TestBus};

/// One hostile message and the reason label readers must give it.
#[derive(Debug, Clone)]
pub struct Hostile {
    pub subject: String,
    pub payload: Bytes,
    pub reason: &'static str,
}

impl TestBus {
    /// A writer that verifies what it reads under the registry's keys and signs as `agency`,
    /// as an adapter with a signing key does: it skips quarantined messages and chains to the
    /// last good event.
    pub async fn verified_log(&self, agency: &str) -> anyhow::Result<CaseLog> {
        let signer = self
            .signers
            .get(agency)
            .with_context(|| format!("a signer for {agency}"))?;
        Ok(CaseLog::open(self.js.clone())
            .await?
            .with_registry(self.registry.clone())
            .with_signer(signer.clone()))
    }

    /// `agency` does `action` through [`TestBus::verified_log`].
    pub async fn act_verified(
        &self,
        case_id: CaseId,
        agency: &str,
        action: Action,
        at: OffsetDateTime,
    ) -> anyhow::Result<Written> {
        let request = self.request_at(case_id, agency, action, at);
        Ok(self
            .verified_log(agency)
            .await?
            .execute(&request, &self.registry)
            .await?)
    }

    /// The front office opens a case and hands it to `agency`, which accepts (version 3),
    /// each through [`TestBus::act_verified`] at `at`.
    pub async fn case_held_by(&self, agency: &str, at: OffsetDateTime) -> anyhow::Result<CaseId> {
        let case_id = CaseId::generate();
        let open = Action::Open {
            service: onedoor_case::ServiceCode::parse("enterprise-registration")?,
            citizen_ref: "R-1".into(),
            summary: "shop".into(),
            documents: vec![],
        };
        self.act_verified(case_id, FRONT, open, at).await?;
        let hand_off = Action::HandOff {
            to: crate::code(agency),
            instructions: "please".into(),
            documents: vec![],
            due_working_days: None,
        };
        self.act_verified(case_id, FRONT, hand_off, at).await?;
        self.act_verified(case_id, agency, Action::Accept, at)
            .await?;
        Ok(case_id)
    }

    /// Three messages `agency`'s credentials allow, each claiming the version after the case's
    /// last good event: a resolution, chained and signed with `agency`'s own key, that only
    /// the originating front office may write (`rules`); a step with a broken signature
    /// (`bad_signature`); bytes that are no event (`undecodable`).
    pub async fn hostile_from(
        &self,
        case_id: CaseId,
        agency: &str,
    ) -> anyhow::Result<Vec<Hostile>> {
        let history = self.verified_log(agency).await?.load(case_id).await?;
        let last = history.last().context("the case has events")?;
        let signer = self
            .signers
            .get(agency)
            .with_context(|| format!("a signer for {agency}"))?;
        let mut resolves = last.wire.clone();
        resolves.event_id = onedoor_case::EventId::generate().to_string();
        resolves.case_version = last.event.version + 1;
        resolves.prev_hash = payload_digest(&last.payload).to_vec();
        resolves.from_agency = agency.to_owned();
        resolves.to_agency = String::new();
        resolves.body = Some(Body::Resolved(v1::CaseResolved {
            resolution: v1::Resolution::Denied.into(),
            note: "<b>not mine</b> to resolve".into(),
        }));
        signer.sign(&mut resolves);
        let mut asks = resolves.clone();
        asks.event_id = onedoor_case::EventId::generate().to_string();
        asks.to_agency = FRONT.to_owned();
        asks.body = Some(Body::InfoRequested(v1::InfoRequested {
            question: "copy of the lease?".into(),
        }));
        signer.sign(&mut asks);
        if let Some(byte) = asks.signature.first_mut() {
            *byte ^= 0xff;
        }
        let on = |to: &str| format!("onedoor.v1.case.{case_id}.{agency}.{to}");
        Ok(vec![
            Hostile {
                subject: on("_"),
                payload: Bytes::from(resolves.encode_to_vec()),
                reason: "rules",
            },
            Hostile {
                subject: on(FRONT),
                payload: Bytes::from(asks.encode_to_vec()),
                reason: "bad_signature",
            },
            Hostile {
                subject: on(FRONT),
                payload: Bytes::from_static(b"\xff\xfe<script>not an event</script>"),
                reason: "undecodable",
            },
        ])
    }

    /// Publishes `hostile` in order, straight on the stream; returns their stream sequences.
    pub async fn publish_hostile(&self, hostile: &[Hostile]) -> anyhow::Result<Vec<u64>> {
        let mut sequences = Vec::with_capacity(hostile.len());
        for message in hostile {
            let ack = self
                .js
                .publish(message.subject.clone(), message.payload.clone())
                .await?
                .await?;
            sequences.push(ack.sequence);
        }
        Ok(sequences)
    }
}
