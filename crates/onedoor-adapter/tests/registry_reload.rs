//! Issue 20, build 5: running adapters move to the registry the operator publishes, with no
//! restart. On a secured bus (each adapter its own NATS user, reads through the case reader),
//! a front office and MOF run the 2021 registry; the operator publishes 2025. The front office
//! can then hand a task to MCT (a code 2021 does not know), and the operator's transfer of
//! MPI's task to MOF, written after the publication, is delivered by MOF's adapter and shown
//! by the front office's: under 2021 both would have quarantined it.

use std::sync::Arc;

use futures::StreamExt as _;
use onedoor_bus::registry_feed::{ACK_SUBJECT_PREFIX, Ack, Publication, publish};
use onedoor_bus::transfer::transfer_request;
use onedoor_bus::{CaseLog, InboxSettings, Signer, ensure_inbox};
use onedoor_case::{CaseId, Registry};
use onedoor_natsauth::Identity;
use onedoor_proto::v1;
use onedoor_testkit::adapter::RunningAdapter;
use onedoor_testkit::registry::{key_file, shipped_text, with_key_file};
use onedoor_testkit::{DEADLINE, FRONT, SecuredBus, TestAgency, code, eventually, next_inbox_item};

struct Keys {
    front: Signer,
    mof: Signer,
    operator: Signer,
    file: String,
}

fn keys() -> Keys {
    let (front, mof) = (
        Signer::generate("FRONT-TEST-01"),
        Signer::generate("MOF-TEST-01"),
    );
    let operator = Signer::generate("OPERATOR-TEST-01");
    let file = key_file(&[(FRONT, &front), ("MOF", &mof)], Some(&operator));
    Keys {
        front,
        mof,
        operator,
        file,
    }
}

/// `agency`'s adapter on `registry`, following the feed.
async fn adapter(
    bus: &SecuredBus,
    agency: &str,
    registry: &Registry,
    signer: &Signer,
) -> anyhow::Result<RunningAdapter> {
    let mut config =
        bus.adapter_config(agency, Arc::new(registry.clone()), Some(signer.clone()))?;
    config.follow_registry = true;
    RunningAdapter::start(config).await
}

/// Waits until every one of `who` answered `revision` with `moved`.
async fn moved(
    acks: &mut async_nats::Subscriber,
    revision: u64,
    who: &[&str],
) -> anyhow::Result<()> {
    let mut waiting: Vec<String> = who
        .iter()
        .map(|w| format!("{ACK_SUBJECT_PREFIX}.{w}"))
        .collect();
    while !waiting.is_empty() {
        let message = tokio::time::timeout(DEADLINE, acks.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("ack subscription ended"))?;
        let ack: Ack = serde_json::from_slice(&message.payload)?;
        if ack.revision == revision {
            assert_eq!(ack.outcome, "moved", "{}", message.subject);
            waiting.retain(|w| *w != message.subject.as_str());
        }
    }
    Ok(())
}

#[tokio::test]
async fn running_adapters_route_and_verify_under_the_published_registry() -> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    let operator = bus.connect(&Identity::Operator).await?;
    ensure_inbox(&operator.js, &code("MPI"), &InboxSettings::default()).await?;
    let keys = keys();
    let old = with_key_file(&shipped_text("lao-2021.toml"), &keys.file);
    let new_text = shipped_text("lao-2025.toml");
    let new = with_key_file(&new_text, &keys.file);
    let front_adapter = adapter(&bus, FRONT, &old, &keys.front).await?;
    let mof_adapter = adapter(&bus, "MOF", &old, &keys.mof).await?;
    let mut front = front_adapter.agency(FRONT).await?;
    let mut mof = mof_adapter.agency("MOF").await?;

    // Under 2021: MPI exists and takes the task; MCT is unknown.
    let case_id = front.open_case("enterprise-registration").await?.case_id;
    front.hand_off(&case_id, "MPI").await?;
    let unknown = front
        .hand_off(&case_id, "MCT")
        .await
        .expect_err("2021 has no MCT");
    assert_eq!(unknown.code(), tonic::Code::InvalidArgument, "{unknown:?}");

    let mut acks = operator
        .client
        .subscribe(format!("{ACK_SUBJECT_PREFIX}.>"))
        .await?;
    operator.client.flush().await?;
    let publication = Publication::signed(&new_text, &keys.file, &keys.operator);
    let revision = publish(&operator.js, &publication).await?;
    moved(&mut acks, revision, &[FRONT, "MOF"]).await?;

    // The front office's adapter, never restarted, routes to MCT.
    let to_mct = front.hand_off(&case_id, "MCT").await?;
    assert!(!to_mct.event_id.is_empty());

    // The operator moves MPI's task to MOF after the publication.
    let transfers = CaseLog::open(operator.js.clone())
        .await?
        .with_signer(keys.operator.clone());
    let id = CaseId::parse(&case_id)?;
    let request = transfer_request(id, &code("MPI"), &new, time::OffsetDateTime::now_utc());
    let written = transfers.execute(&request, &new).await?;
    let transfer_id = written.event.event_id.to_string();

    // MOF's adapter believes it: delivered as a new task (a quarantined message never is).
    let mut inbox = mof.inbox(8).await?;
    let item = next_inbox_item(&mut inbox).await;
    let event = item.event.as_ref().expect("event");
    assert_eq!(event.event_id, transfer_id);
    assert_eq!(item.kind(), v1::InboxItemKind::NewTask);
    mof.accept(&case_id).await?;

    // So does the front office's: MOF holds the task, MPI no longer, MCT has its own.
    let view = eventually(
        "the front office sees MOF holding the task",
        DEADLINE,
        || {
            let mut front = TestAgency {
                code: FRONT.to_owned(),
                client: front.client.clone(),
            };
            let case_id = case_id.clone();
            async move {
                let view = front.get_case(&case_id).await?;
                let holders: Vec<String> =
                    view.open_tasks.iter().map(|t| t.agency.clone()).collect();
                Ok(holders
                    .contains(&"MOF".to_owned())
                    .then_some(view)
                    .ok_or(format!("{holders:?}")))
            }
        },
    )
    .await?;
    let mut holders: Vec<&str> = view.open_tasks.iter().map(|t| t.agency.as_str()).collect();
    holders.sort_unstable();
    assert_eq!(holders, ["MCT", "MOF"]);
    front_adapter.stop().await;
    mof_adapter.stop().await;
    Ok(())
}
