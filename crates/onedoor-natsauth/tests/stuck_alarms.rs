//! Stuck alarms are writable only for oneself, on a real nats-server with the generated
//! permissions: another agency can neither write under MOF's keys, nor pass off a record under
//! its own key as MOF's, nor wipe MOF's records with a rollup header on its own key.

use std::time::Duration;

use async_nats::HeaderMap;
use onedoor_bus::stuck::{Recorded, StuckRecord, exhausted_reason, record_stuck};
use onedoor_bus::{STUCK_BUCKET, list_stuck};
use onedoor_case::AgencyCode;
use onedoor_natsauth::{Denied, Identity};
use onedoor_testkit::SecuredBus;

fn agency(text: &str) -> Identity {
    Identity::Agency(AgencyCode::parse(text).expect("valid agency code"))
}

fn record(agency: &str, stream_sequence: u64, reason: String) -> StuckRecord {
    StuckRecord {
        agency: agency.into(),
        case_id: String::new(),
        event_id: String::new(),
        stream_sequence,
        deliveries: 1,
        recorded_at: time::OffsetDateTime::now_utc(),
        reason,
    }
}

#[tokio::test]
async fn moic_cannot_write_or_wipe_alarms_for_mof() -> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    let mof = bus.connect(&agency("MOF")).await?;
    let mut moic = bus.connect(&agency("MOIC")).await?;
    let mof_store = mof.js.get_key_value(STUCK_BUCKET).await?;
    let moic_store = moic.js.get_key_value(STUCK_BUCKET).await?;

    // Both kinds of alarm, each agency its own: one exhausted, one malformed.
    let exhausted = record("MOF", 7, exhausted_reason(8));
    assert_eq!(record_stuck(&mof_store, &exhausted).await?, Recorded::New);
    let malformed = record("MOIC", 9, "payload is not a CaseEvent".into());
    assert_eq!(record_stuck(&moic_store, &malformed).await?, Recorded::New);

    // Under MOF's key: the broker drops the publish and says so; the write gets no answer.
    let theirs = record_stuck(&moic_store, &record("MOF", 8, exhausted_reason(8))).await;
    assert!(theirs.is_err(), "{theirs:?}");
    let violation = tokio::time::timeout(Duration::from_secs(10), moic.violations.recv()).await?;
    let violation = violation.ok_or_else(|| anyhow::anyhow!("event channel closed"))?;
    assert_eq!(violation.denied, Denied::Publish);
    assert_eq!(violation.subject, format!("$KV.{STUCK_BUCKET}.MOF.8"));

    // Under MOIC's own key but naming MOF: stored, and never listed as MOF's.
    let claims_mof = record("MOF", 10, exhausted_reason(8));
    moic_store
        .create("MOIC.10", serde_json::to_vec(&claims_mof)?.into())
        .await?;

    // A rollup of the whole bucket sent on MOIC's own key: refused by the server.
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Rollup", "all");
    let rollup = moic
        .js
        .publish_with_headers(
            format!("$KV.{STUCK_BUCKET}.MOIC.11"),
            headers,
            serde_json::to_vec(&record("MOIC", 11, exhausted_reason(1)))?.into(),
        )
        .await?
        .await;
    assert!(rollup.is_err(), "a rollup on the stuck bucket was stored");

    let listed: Vec<String> = list_stuck(&bus.operator_js().await?)
        .await?
        .iter()
        .map(|r| format!("{} {}", r.key(), r.reason))
        .collect();
    assert_eq!(
        listed,
        [
            format!("MOF.7 {}", exhausted_reason(8)),
            "MOIC.9 payload is not a CaseEvent".to_owned(),
        ]
    );
    Ok(())
}
