//! Agency self-service through real adapters: the catalogue (`ListServices`), strict routes,
//! and an agency's own stuck items (`ListStuck`, `Redeliver`), never another agency's.

use std::sync::Arc;
use std::time::Duration;

use onedoor_bus::InboxSettings;
use onedoor_case::ServiceCode;
use onedoor_proto::v1::{self, InboxItemKind};
use onedoor_testkit::{DEADLINE, FRONT, TestAgency, TestBus, eventually, next_inbox_item};
use tonic::Code;

/// Two deliveries 300 ms apart, then stuck: quick enough to observe.
fn give_up_after_two() -> InboxSettings {
    InboxSettings {
        max_in_flight: 8,
        max_deliver: 2,
        backoff: vec![Duration::from_millis(300)],
        ..InboxSettings::default()
    }
}

async fn bus_with(
    agencies: &[&str],
    strict: &[&str],
    inbox: InboxSettings,
) -> anyhow::Result<TestBus> {
    let mut bus = TestBus::start().await?;
    let mut registry = (*bus.registry).clone();
    for service in strict {
        registry
            .services
            .get_mut(&ServiceCode::parse(service)?)
            .expect("shipped service")
            .strict_route = true;
    }
    bus.registry = Arc::new(registry);
    for agency in agencies {
        let mut config = bus.adapter_config(agency)?;
        config.inbox = inbox.clone();
        bus.start_with(agency, config).await?;
    }
    Ok(bus)
}

async fn list_services(agency: &mut TestAgency) -> Result<v1::ListServicesResponse, tonic::Status> {
    Ok(agency
        .client
        .list_services(v1::ListServicesRequest {})
        .await?
        .into_inner())
}

async fn list_stuck(agency: &mut TestAgency) -> Result<Vec<v1::StuckItem>, tonic::Status> {
    Ok(agency
        .client
        .list_stuck(v1::ListStuckRequest {})
        .await?
        .into_inner()
        .items)
}

async fn redeliver(agency: &mut TestAgency, sequence: u64) -> Result<v1::StuckItem, tonic::Status> {
    let response = agency
        .client
        .redeliver(v1::RedeliverRequest {
            stream_sequence: sequence,
        })
        .await?
        .into_inner();
    Ok(response.item.expect("the queued item"))
}

#[tokio::test]
async fn list_services_matches_the_registry() -> anyhow::Result<()> {
    let bus = bus_with(&["MOF"], &["construction-permit"], InboxSettings::default()).await?;
    let mut mof = bus.agency("MOF").await?;
    let listed = list_services(&mut mof).await?.services;
    let codes: Vec<&str> = listed.iter().map(|s| s.code.as_str()).collect();
    let expected: Vec<String> = bus
        .registry
        .services
        .keys()
        .map(ToString::to_string)
        .collect();
    assert_eq!(codes, expected);
    for wire in &listed {
        let service = bus
            .registry
            .service(&ServiceCode::parse(&wire.code)?)
            .expect("listed service exists");
        assert_eq!(wire.name_en, service.name_en);
        assert_eq!(wire.name_lo, service.name_lo);
        assert_eq!(wire.strict_route, service.strict_route, "{}", wire.code);
        assert_eq!(wire.stages.len(), service.route.len(), "{}", wire.code);
        for (index, (stage, expected)) in wire.stages.iter().zip(&service.route).enumerate() {
            assert_eq!(stage.steps.len(), expected.steps.len());
            for (step, expected) in stage.steps.iter().zip(&expected.steps) {
                let agencies: Vec<String> = expected
                    .agency
                    .codes()
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                assert_eq!(step.agencies, agencies);
                assert_eq!(step.working_days, expected.working_days);
                assert_eq!(step.purpose_en, expected.purpose_en);
                assert_eq!(step.stage as usize, index + 1);
            }
        }
    }
    let permit = listed
        .iter()
        .find(|s| s.code == "construction-permit")
        .expect("listed");
    assert!(permit.strict_route);
    assert_eq!(permit.stages[0].steps.len(), 2, "MPWT and MAE in parallel");
    Ok(())
}

#[tokio::test]
async fn a_strict_route_refuses_off_route_and_parallel_hand_offs_naming_the_expected_agency()
-> anyhow::Result<()> {
    let bus = bus_with(
        &[FRONT, "MPWT"],
        &["construction-permit"],
        InboxSettings::default(),
    )
    .await?;
    let mut front = bus.agency(FRONT).await?;
    let case = front.open_case("construction-permit").await?.case_id;

    let off = front.hand_off(&case, "MOF").await.unwrap_err();
    assert_eq!(off.code(), Code::FailedPrecondition);
    assert!(
        off.message().contains("hand off to MPWT or MAE"),
        "{}",
        off.message()
    );

    front.hand_off(&case, "MPWT").await?;
    let ahead = front.hand_off(&case, "MOPS").await.unwrap_err();
    assert_eq!(ahead.code(), Code::FailedPrecondition);
    assert!(
        ahead.message().contains("hand off to MAE"),
        "{}",
        ahead.message()
    );
    assert!(ahead.message().contains("MPWT"), "{}", ahead.message());

    // The holder of a stage-1 task may not pass the case on ahead of its stage either.
    let mut mpwt = bus.agency("MPWT").await?;
    mpwt.accept(&case).await?;
    let parallel = mpwt.hand_off(&case, "MOPS").await.unwrap_err();
    assert_eq!(parallel.code(), Code::FailedPrecondition);
    assert!(
        parallel.message().contains("later stage"),
        "{}",
        parallel.message()
    );

    front.hand_off(&case, "MAE").await?;
    let view = front.get_case(&case).await?;
    assert_eq!(
        view.open_tasks.len(),
        2,
        "only the planned hand-offs were written"
    );
    Ok(())
}

#[tokio::test]
async fn a_route_not_marked_strict_keeps_accepting_any_hand_off() -> anyhow::Result<()> {
    let bus = bus_with(&[FRONT], &[], InboxSettings::default()).await?;
    let mut front = bus.agency(FRONT).await?;
    let case = front.open_case("construction-permit").await?.case_id;
    front.hand_off(&case, "MOPS").await?;
    front.hand_off(&case, "MOF").await?;
    Ok(())
}

/// Opens a case and hands it to `to`, whose open inbox stream then lets it run out of
/// deliveries; returns the receipt once `to` lists it as stuck.
async fn stuck_hand_off(
    front: &mut TestAgency,
    to: &mut TestAgency,
    inbox: &mut tonic::Streaming<v1::InboxItem>,
) -> anyhow::Result<v1::Receipt> {
    let case = front.open_case("enterprise-registration").await?.case_id;
    let handed = front.hand_off(&case, &to.code).await?;
    assert_eq!(next_inbox_item(inbox).await.delivery_attempt, 1);
    assert_eq!(next_inbox_item(inbox).await.delivery_attempt, 2);
    let sequence = handed.stream_sequence;
    let client = to.client.clone();
    eventually("the exhausted item is listed as stuck", DEADLINE, || {
        let mut client = client.clone();
        async move {
            let items = client
                .list_stuck(v1::ListStuckRequest {})
                .await?
                .into_inner()
                .items;
            Ok(items.into_iter().find(|i| i.stream_sequence == sequence))
        }
    })
    .await?;
    Ok(handed)
}

#[tokio::test]
async fn list_stuck_and_redeliver_see_only_the_agencys_own_items() -> anyhow::Result<()> {
    let bus = bus_with(&[FRONT, "MOIC", "MOF"], &[], give_up_after_two()).await?;
    let mut front = bus.agency(FRONT).await?;
    let (mut moic, mut mof) = (bus.agency("MOIC").await?, bus.agency("MOF").await?);
    let (mut moic_inbox, mut mof_inbox) = (moic.inbox(0).await?, mof.inbox(0).await?);
    let to_moic = stuck_hand_off(&mut front, &mut moic, &mut moic_inbox).await?;
    let to_mof = stuck_hand_off(&mut front, &mut mof, &mut mof_inbox).await?;

    let moic_items = list_stuck(&mut moic).await?;
    assert_eq!(moic_items.len(), 1, "{moic_items:?}");
    let item = &moic_items[0];
    assert_eq!(
        (
            item.event_id.as_str(),
            item.case_id.as_str(),
            item.deliveries
        ),
        (to_moic.event_id.as_str(), to_moic.case_id.as_str(), 2)
    );
    assert!(item.recorded_at.is_some() && !item.reason.is_empty());
    assert!(!item.redelivery_pending);
    let mof_items = list_stuck(&mut mof).await?;
    assert_eq!(
        mof_items
            .iter()
            .map(|i| i.event_id.as_str())
            .collect::<Vec<_>>(),
        [to_mof.event_id.as_str()]
    );

    // MOF's credentials cannot reach MOIC's item, at MOF's adapter or at MOIC's.
    let foreign = redeliver(&mut mof, to_moic.stream_sequence)
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound, "{}", foreign.message());
    let mut mof_at_moic = onedoor_testkit::TestAgency {
        code: "MOF".into(),
        client: bus
            .client_with_token("MOIC", &onedoor_testkit::token_for("MOF"))
            .await?,
    };
    let refused = redeliver(&mut mof_at_moic, to_moic.stream_sequence)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(list_stuck(&mut moic).await?.len(), 1, "nothing changed");

    // MOIC puts its own item back: it arrives on the open stream, marked, and its Ack clears
    // the record.
    let queued = redeliver(&mut moic, to_moic.stream_sequence).await?;
    assert!(queued.redelivery_pending);
    let again = next_inbox_item(&mut moic_inbox).await;
    let event = again.event.clone().expect("event");
    assert_eq!(event.event_id, to_moic.event_id);
    assert!(again.redelivered_from_stuck);
    assert_eq!(again.delivery_attempt, 3);
    assert_eq!(again.kind(), InboxItemKind::NewTask);
    assert_eq!(again.service, "enterprise-registration");
    assert!(list_stuck(&mut moic).await?[0].redelivery_pending);
    let acked = moic.ack(&[&event.event_id]).await?;
    assert_eq!(acked.acked_event_ids, std::slice::from_ref(&event.event_id));
    assert!(list_stuck(&mut moic).await?.is_empty());
    assert_eq!(
        list_stuck(&mut mof).await?.len(),
        1,
        "MOF's item is untouched"
    );
    Ok(())
}

#[tokio::test]
async fn self_service_calls_refuse_malformed_and_unauthenticated_requests() -> anyhow::Result<()> {
    let bus = bus_with(&["MOIC"], &[], InboxSettings::default()).await?;
    let mut moic = bus.agency("MOIC").await?;
    let zero = redeliver(&mut moic, 0).await.unwrap_err();
    assert_eq!(zero.code(), Code::InvalidArgument);
    assert!(
        zero.message().contains("stream_sequence"),
        "{}",
        zero.message()
    );
    let absent = redeliver(&mut moic, u64::MAX).await.unwrap_err();
    assert_eq!(absent.code(), Code::NotFound);
    assert!(
        absent.message().contains("ListStuck"),
        "{}",
        absent.message()
    );

    let mut stranger = TestAgency {
        code: "MOIC".into(),
        client: bus
            .client_with_token("MOIC", "not-a-token-of-anyone")
            .await?,
    };
    for status in [
        list_services(&mut stranger).await.unwrap_err(),
        list_stuck(&mut stranger).await.map(|_| ()).unwrap_err(),
        redeliver(&mut stranger, 1).await.map(|_| ()).unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::Unauthenticated, "{}", status.message());
    }
    Ok(())
}
