//! `RecallTask` through real adapters on a real bus: the front office takes back the task it
//! handed MOIC, MOIC's inbox says so (kind TASK_TAKEN_BACK, with the reason, service, citizen
//! reference and trace), MOIC's later answers are refused, and an agency that did not hand the
//! task over may not take it back.

use onedoor_proto::v1::{self, InboxItemKind, case_event::Body};
use onedoor_testkit::{FRONT, TestBus, key};
use tonic::Code;

const REASON: &str = "ສົ່ງຜິດກະຊວງ: sent to the wrong ministry";

fn recall(case_id: &str, holder: &str, idempotency_key: &str) -> v1::RecallTaskRequest {
    v1::RecallTaskRequest {
        case_id: case_id.into(),
        holder_agency: holder.into(),
        reason: REASON.into(),
        idempotency_key: idempotency_key.into(),
        actor: "clerk-7".into(),
    }
}

#[tokio::test]
async fn the_sender_takes_a_task_back_and_the_holder_is_told_and_refused_afterwards()
-> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC", "MOF"]).await?;
    let (mut front, mut moic) = (bus.agency(FRONT).await?, bus.agency("MOIC").await?);
    let mut mof = bus.agency("MOF").await?;
    let mut moic_inbox = moic.inbox(0).await?;
    let opened = front.open_case("enterprise-registration").await?;
    let case = opened.case_id.clone();
    let handed = front.hand_off(&case, "MOIC").await?;
    assert_eq!(
        moic.take(&mut moic_inbox).await.kind(),
        InboxItemKind::NewTask
    );
    moic.accept(&case).await?;

    // MOF did not hand MOIC the task: refused, nothing written.
    let denied = mof
        .client
        .recall_task(recall(&case, "MOIC", &key()))
        .await
        .expect_err("only the sender may take a task back");
    assert_eq!(
        denied.code(),
        Code::PermissionDenied,
        "{}",
        denied.message()
    );
    assert!(
        denied.message().contains(&format!(
            "only {FRONT}, which handed MOIC its task on case {case}, may take it back"
        )),
        "{}",
        denied.message()
    );

    let request = recall(&case, "MOIC", &key());
    let receipt = front
        .client
        .recall_task(request.clone())
        .await?
        .into_inner();
    assert_eq!(
        receipt.case_version, 4,
        "opened, handed off, accepted, taken back"
    );
    let again = front.client.recall_task(request).await?.into_inner();
    assert_eq!(
        again.event_id, receipt.event_id,
        "a retry writes nothing new"
    );

    let item = moic.take(&mut moic_inbox).await;
    assert_eq!(item.kind(), InboxItemKind::TaskTakenBack);
    assert_eq!(
        (item.service.as_str(), item.citizen_ref.as_str()),
        ("enterprise-registration", "R-2026-0001")
    );
    let step = item.step.clone().expect("MOIC's step of the route");
    assert_eq!(step.agencies, ["MOIC"]);
    assert_eq!(item.due_at, None, "no deadline is left to keep");
    let event = item.event.expect("event");
    assert_eq!(event.event_id, receipt.event_id);
    assert_eq!(
        (event.from_agency.as_str(), event.to_agency.as_str()),
        (FRONT, "MOIC")
    );
    assert_eq!(event.causation_id, handed.event_id, "names the task");
    assert_eq!(
        item.traceparent,
        format!("00-{}-{}-01", opened.trace_id, event.span_id)
    );
    let Some(Body::TaskTakenBack(body)) = event.body else {
        panic!("a task_taken_back event: {:?}", event.body)
    };
    assert_eq!(body.reason, REASON);

    // MOIC's system answers anyway: refused, saying why.
    let refused = moic
        .complete(&case)
        .await
        .expect_err("the task was taken back");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("taken back by its sender"),
        "{}",
        refused.message()
    );
    let view = front.get_case(&case).await?;
    assert_eq!(view.events.len(), 4, "the refused answer wrote nothing");
    assert!(view.open_tasks.is_empty(), "{:?}", view.open_tasks);

    // The task is over: taking it back twice is refused too.
    let twice = front
        .client
        .recall_task(recall(&case, "MOIC", &key()))
        .await
        .expect_err("nothing left to take back");
    assert_eq!(twice.code(), Code::FailedPrecondition);
    Ok(())
}

#[tokio::test]
async fn a_ministry_takes_back_what_it_passed_on_and_not_what_the_front_office_did()
-> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC", "MOF"]).await?;
    let (mut front, mut moic) = (bus.agency(FRONT).await?, bus.agency("MOIC").await?);
    let mut mof = bus.agency("MOF").await?;
    let mut mof_inbox = mof.inbox(0).await?;
    let case = front.open_case("enterprise-registration").await?.case_id;
    front.hand_off(&case, "MOIC").await?;
    moic.accept(&case).await?;
    moic.hand_off(&case, "MOF").await?;
    assert_eq!(
        mof.take(&mut mof_inbox).await.kind(),
        InboxItemKind::NewTask
    );

    let denied = front
        .client
        .recall_task(recall(&case, "MOF", &key()))
        .await
        .expect_err("the front office did not hand MOF its task");
    assert_eq!(denied.code(), Code::PermissionDenied);
    moic.client
        .recall_task(recall(&case, "MOF", &key()))
        .await?;
    let item = mof.take(&mut mof_inbox).await;
    assert_eq!(item.kind(), InboxItemKind::TaskTakenBack);
    assert_eq!(item.event.expect("event").from_agency, "MOIC");
    // MOIC's own task goes on.
    moic.complete(&case).await?;
    Ok(())
}
