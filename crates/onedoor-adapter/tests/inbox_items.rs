//! Complete inbox items through real adapters: each item says its kind and carries what a
//! clerk needs (service, citizen reference, route step, due time, trace), and a resolution
//! tells every agency still holding a task, once each.

use onedoor_proto::v1::{self, InboxItemKind, case_event::Body};
use onedoor_testkit::{FRONT, TestAgency, TestBus, key};

fn kind(item: &v1::InboxItem) -> InboxItemKind {
    item.kind()
}

fn step_agencies(item: &v1::InboxItem) -> Vec<String> {
    item.step
        .as_ref()
        .map(|s| s.agencies.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_inbox_item_says_its_kind_service_citizen_ref_step_due_time_and_trace()
-> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC"]).await?;
    let (mut front, mut moic) = (bus.agency(FRONT).await?, bus.agency("MOIC").await?);
    let (mut front_inbox, mut moic_inbox) = (front.inbox(0).await?, moic.inbox(0).await?);
    let opened = front.open_case("enterprise-registration").await?;
    let case = opened.case_id.clone();
    let handed = front.hand_off(&case, "MOIC").await?;

    let task = moic.take(&mut moic_inbox).await;
    let event = task.event.clone().expect("event");
    assert_eq!(kind(&task), InboxItemKind::NewTask);
    assert_eq!(event.event_id, handed.event_id);
    assert_eq!(
        (task.service.as_str(), task.citizen_ref.as_str()),
        ("enterprise-registration", "R-2026-0001")
    );
    let step = task.step.clone().expect("MOIC's step of the route");
    assert_eq!(
        (
            step.agencies,
            step.stage,
            step.purpose_en.as_str(),
            step.working_days
        ),
        (vec!["MOIC".to_owned()], 1, "enterprise registration", 5)
    );
    let Some(Body::HandedOff(body)) = event.body else {
        panic!("a hand-off")
    };
    assert_eq!(task.due_at, body.due_at, "the task's due time");
    assert_eq!(
        task.traceparent,
        format!("00-{}-{}-01", opened.trace_id, event.span_id)
    );
    assert!(!task.redelivered_from_stuck);

    moic.accept(&case).await?;
    let accepted = front.take(&mut front_inbox).await;
    assert_eq!(kind(&accepted), InboxItemKind::TaskAccepted);
    assert_eq!(accepted.due_at, body.due_at, "MOIC's task is due then");
    assert_eq!(step_agencies(&accepted), ["MOIC"]);

    moic.client
        .request_info(v1::RequestInfoRequest {
            case_id: case.clone(),
            question: "the lease, please".into(),
            idempotency_key: key(),
            actor: String::new(),
        })
        .await?;
    let asked = front.take(&mut front_inbox).await;
    assert_eq!(kind(&asked), InboxItemKind::InfoRequest);
    assert_eq!(step_agencies(&asked), ["MOIC"], "the asking agency's step");
    assert_eq!(asked.citizen_ref, "R-2026-0001");

    front.hand_off(&case, "MOIC").await?;
    let answer = moic.take(&mut moic_inbox).await;
    assert_eq!(kind(&answer), InboxItemKind::InfoAnswer);
    assert!(answer.due_at.is_some(), "the restarted due time");

    moic.complete(&case).await?;
    let completed = front.take(&mut front_inbox).await;
    assert_eq!(kind(&completed), InboxItemKind::TaskCompleted);
    assert_eq!(completed.due_at, None);
    assert_eq!(completed.service, "enterprise-registration");
    Ok(())
}

#[tokio::test]
async fn a_task_off_the_route_arrives_with_no_step_and_a_sent_back_one_says_so()
-> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOH"]).await?;
    let (mut front, mut moh) = (bus.agency(FRONT).await?, bus.agency("MOH").await?);
    let (mut front_inbox, mut moh_inbox) = (front.inbox(0).await?, moh.inbox(0).await?);
    let case = front.open_case("enterprise-registration").await?.case_id;
    front.hand_off(&case, "MOH").await?;
    let task = moh.take(&mut moh_inbox).await;
    assert_eq!(kind(&task), InboxItemKind::NewTask);
    assert_eq!(
        task.step, None,
        "MOH is off enterprise-registration's route"
    );
    assert!(task.due_at.is_some(), "the registry's default limit");

    moh.client
        .send_back(v1::SendBackRequest {
            case_id: case.clone(),
            reason: "wrong agency".into(),
            idempotency_key: key(),
            actor: String::new(),
        })
        .await?;
    let back = front.take(&mut front_inbox).await;
    assert_eq!(kind(&back), InboxItemKind::TaskSentBack);
    Ok(())
}

/// Opens a case at `front`, hands it to MOIC (accepted) and MOF (pending), and empties every
/// inbox. Returns the case id.
async fn case_with_two_open_tasks(
    front: &mut TestAgency,
    moic: &mut TestAgency,
    mof: &mut TestAgency,
    inboxes: &mut [tonic::Streaming<v1::InboxItem>; 3],
) -> anyhow::Result<String> {
    let case = front.open_case("enterprise-registration").await?.case_id;
    front.hand_off(&case, "MOIC").await?;
    front.hand_off(&case, "MOF").await?;
    moic.take(&mut inboxes[1]).await;
    mof.take(&mut inboxes[2]).await;
    moic.accept(&case).await?;
    front.take(&mut inboxes[0]).await;
    Ok(case)
}

fn closed_notices(view: &v1::CaseView) -> Vec<(String, String)> {
    view.events
        .iter()
        .filter(|e| matches!(e.body, Some(Body::TaskClosed(_))))
        .map(|e| (e.to_agency.clone(), e.causation_id.clone()))
        .collect()
}

#[tokio::test]
async fn a_withdrawal_notifies_every_agency_holding_a_task_exactly_once() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC", "MOF"]).await?;
    let mut front = bus.agency(FRONT).await?;
    let (mut moic, mut mof) = (bus.agency("MOIC").await?, bus.agency("MOF").await?);
    let mut inboxes = [
        front.inbox(0).await?,
        moic.inbox(0).await?,
        mof.inbox(0).await?,
    ];
    let case = case_with_two_open_tasks(&mut front, &mut moic, &mut mof, &mut inboxes).await?;

    let request = v1::ResolveCaseRequest {
        case_id: case.clone(),
        resolution: v1::Resolution::Withdrawn.into(),
        note: "the citizen withdrew".into(),
        idempotency_key: key(),
        actor: "clerk-1".into(),
    };
    let resolved = front
        .client
        .resolve_case(request.clone())
        .await?
        .into_inner();

    let [_, moic_inbox, mof_inbox] = &mut inboxes;
    for (agency, inbox) in [(&mut moic, moic_inbox), (&mut mof, mof_inbox)] {
        let item = agency.take(inbox).await;
        assert_eq!(step_agencies(&item), std::slice::from_ref(&agency.code));
        assert_eq!(kind(&item), InboxItemKind::CaseWithdrawn, "{}", agency.code);
        let event = item.event.expect("event");
        assert_eq!(event.to_agency, agency.code);
        assert_eq!(event.from_agency, FRONT);
        assert_eq!(event.causation_id, resolved.event_id);
        let Some(Body::TaskClosed(body)) = event.body else {
            panic!("a task_closed event")
        };
        assert_eq!(body.note, "the citizen withdrew");
    }

    // A retry of the resolution returns its receipt and writes no second notice.
    let again = front.client.resolve_case(request).await?.into_inner();
    assert_eq!(again.event_id, resolved.event_id);
    let view = front.get_case(&case).await?;
    let mut notices = closed_notices(&view);
    notices.sort();
    assert_eq!(
        notices,
        [
            ("MOF".to_owned(), resolved.event_id.clone()),
            ("MOIC".to_owned(), resolved.event_id.clone())
        ]
    );
    assert_eq!(view.status(), v1::CaseStatus::Resolved);
    Ok(())
}

#[tokio::test]
async fn a_denial_notifies_as_case_resolved_and_an_agency_done_before_is_not_told()
-> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC", "MOF"]).await?;
    let mut front = bus.agency(FRONT).await?;
    let (mut moic, mut mof) = (bus.agency("MOIC").await?, bus.agency("MOF").await?);
    let mut inboxes = [
        front.inbox(0).await?,
        moic.inbox(0).await?,
        mof.inbox(0).await?,
    ];
    let case = case_with_two_open_tasks(&mut front, &mut moic, &mut mof, &mut inboxes).await?;
    moic.complete(&case).await?;
    front.take(&mut inboxes[0]).await;

    front.resolve(&case, v1::Resolution::Denied).await?;
    let item = mof.take(&mut inboxes[2]).await;
    assert_eq!(kind(&item), InboxItemKind::CaseResolved);
    let view = front.get_case(&case).await?;
    let told: Vec<String> = closed_notices(&view)
        .into_iter()
        .map(|(to, _)| to)
        .collect();
    assert_eq!(
        told,
        ["MOF"],
        "MOIC had completed its task before the denial"
    );
    Ok(())
}

#[tokio::test]
async fn an_approval_with_no_open_task_notifies_nobody() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    let mut front = bus.agency(FRONT).await?;
    let case = front.open_case("enterprise-registration").await?.case_id;
    front.resolve(&case, v1::Resolution::Approved).await?;
    let view = front.get_case(&case).await?;
    assert_eq!(closed_notices(&view), []);
    assert_eq!(view.events.len(), 2);
    Ok(())
}
