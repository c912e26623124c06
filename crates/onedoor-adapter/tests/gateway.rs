//! `AgencyGateway` writes and reads through real adapters, real gRPC and a real nats-server.

use onedoor_proto::v1;
use onedoor_testkit::{FRONT, TestBus, key, token_for};
use tonic::Code;

#[tokio::test]
async fn a_case_travels_through_several_agencies_with_one_trace_id() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC", "MOF", "MOPS"]).await?;
    let (mut front, mut moic, mut mof) = (
        bus.agency(FRONT).await?,
        bus.agency("MOIC").await?,
        bus.agency("MOF").await?,
    );

    let opened = front.open_case("enterprise-registration").await?;
    assert_eq!(opened.case_version, 1);
    assert_eq!(opened.trace_id.len(), 32);
    let case = opened.case_id.clone();
    front.hand_off(&case, "MOIC").await?;
    moic.accept(&case).await?;
    moic.hand_off(&case, "MOF").await?;
    mof.accept(&case).await?;
    mof.complete(&case).await?;
    moic.complete(&case).await?;
    let resolved = front.resolve(&case, v1::Resolution::Approved).await?;
    assert_eq!(resolved.case_version, 8);
    assert_eq!(resolved.trace_id, opened.trace_id);

    let js = bus.nats.jetstream().await?;
    let history = onedoor_bus::CaseLog::open(js)
        .await?
        .load(case.parse()?)
        .await?;
    onedoor_bus::verify_case(&history, &bus.registry)?;

    let view = mof.get_case(&case).await?;
    assert_eq!(view.status, v1::CaseStatus::Resolved as i32);
    assert_eq!(view.resolution, v1::Resolution::Approved as i32);
    assert_eq!(view.trace_id, opened.trace_id);
    let versions: Vec<u64> = view.events.iter().map(|e| e.case_version).collect();
    assert_eq!(versions, (1..=8).collect::<Vec<u64>>());
    assert!(
        view.events.iter().all(|e| e.trace_id == opened.trace_id),
        "one trace id on every event"
    );
    Ok(())
}

#[tokio::test]
async fn open_case_continues_the_callers_traceparent_and_returns_one() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    let mut front = bus.agency(FRONT).await?;
    let mut request = tonic::Request::new(v1::OpenCaseRequest {
        service: "construction-permit".into(),
        citizen_ref: "R-7".into(),
        idempotency_key: key(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?,
    );
    let response = front.client.open_case(request).await?;
    let traceparent = response
        .metadata()
        .get("traceparent")
        .expect("traceparent in response")
        .to_str()?
        .to_owned();
    assert!(
        traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{traceparent}"
    );
    assert_eq!(
        response.into_inner().trace_id,
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    Ok(())
}

#[tokio::test]
async fn a_refused_call_still_answers_in_the_callers_trace() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    let mut front = bus.agency(FRONT).await?;
    let mut request = tonic::Request::new(v1::GetCaseRequest {
        case_id: "not-a-ulid".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?,
    );
    let status = front.client.get_case(request).await.expect_err("bad id");
    assert_eq!(status.code(), Code::InvalidArgument);
    let traceparent = status
        .metadata()
        .get("traceparent")
        .expect("traceparent on an error")
        .to_str()?;
    assert!(
        traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{traceparent}"
    );
    Ok(())
}

#[tokio::test]
async fn calls_without_the_agencys_token_are_unauthenticated_and_write_nothing()
-> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC"]).await?;
    let mut wrong = onedoor_testkit::TestAgency {
        code: FRONT.into(),
        client: bus.client_with_token(FRONT, &token_for("MOIC")).await?,
    };
    let status = wrong
        .open_case("enterprise-registration")
        .await
        .expect_err("wrong token");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("authorization: Bearer"),
        "{}",
        status.message()
    );

    let channel = bus.channel(FRONT).await?;
    let mut anonymous = v1::agency_gateway_client::AgencyGatewayClient::new(channel);
    let status = anonymous
        .get_case(v1::GetCaseRequest {
            case_id: "x".into(),
        })
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);

    let js = bus.nats.jetstream().await?;
    let mut stream = js.get_stream("ONEDOOR").await?;
    assert_eq!(stream.info().await?.state.messages, 0);
    Ok(())
}

#[tokio::test]
async fn acting_outside_the_agencys_role_is_permission_denied() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC", "MOF"]).await?;
    let (mut front, mut moic, mut mof) = (
        bus.agency(FRONT).await?,
        bus.agency("MOIC").await?,
        bus.agency("MOF").await?,
    );
    let status = moic
        .open_case("enterprise-registration")
        .await
        .expect_err("a ministry opens");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("only a front office opens cases"),
        "{}",
        status.message()
    );

    let case = front.open_case("enterprise-registration").await?.case_id;
    front.hand_off(&case, "MOIC").await?;
    moic.accept(&case).await?;
    assert_eq!(
        moic.resolve(&case, v1::Resolution::Denied)
            .await
            .expect_err("not origin")
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        mof.complete(&case).await.expect_err("holds no task").code(),
        Code::PermissionDenied
    );
    assert_eq!(
        mof.get_case(&case)
            .await
            .expect_err("no part in the case")
            .code(),
        Code::PermissionDenied
    );
    Ok(())
}

#[tokio::test]
async fn malformed_and_oversize_requests_are_invalid_argument_and_write_nothing()
-> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    let mut front = bus.agency(FRONT).await?;
    let case = front.open_case("enterprise-registration").await?.case_id;

    let bad_open = |service: &str, summary: String, key: &str| v1::OpenCaseRequest {
        service: service.into(),
        citizen_ref: "R".into(),
        summary,
        idempotency_key: key.into(),
        ..Default::default()
    };
    let cases = [
        (
            bad_open("no-such-service", String::new(), "k1"),
            "service no-such-service is not in the catalogue",
        ),
        (bad_open("Bad Code", String::new(), "k2"), "service:"),
        (
            bad_open("enterprise-registration", "x".repeat(4097), "k3"),
            "summary is 4097 bytes; the limit is 4096",
        ),
        (
            bad_open("enterprise-registration", String::new(), ""),
            "idempotency_key: is required",
        ),
        (
            bad_open("enterprise-registration", String::new(), &"k".repeat(129)),
            "idempotency_key: is 129 bytes",
        ),
    ];
    for (request, expected) in cases {
        let status = front.client.open_case(request).await.expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
        assert!(
            status.message().contains(expected),
            "{:?} does not say {expected:?}",
            status.message()
        );
    }
    let status = front
        .hand_off("not-a-ulid", "MOIC")
        .await
        .expect_err("bad id");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("case_id:"),
        "{}",
        status.message()
    );
    let status = front.hand_off(&case, "MO.IC").await.expect_err("bad code");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = front.hand_off(&case, FRONT).await.expect_err("to oneself");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = front
        .resolve(&case, v1::Resolution::Unspecified)
        .await
        .expect_err("no resolution");
    assert_eq!(status.code(), Code::InvalidArgument);

    assert_eq!(
        front.get_case(&case).await?.events.len(),
        1,
        "nothing was written"
    );
    Ok(())
}

#[tokio::test]
async fn unknown_cases_are_not_found_and_wrong_states_are_failed_precondition() -> anyhow::Result<()>
{
    let bus = TestBus::with_adapters(&[FRONT, "MOIC"]).await?;
    let (mut front, mut moic) = (bus.agency(FRONT).await?, bus.agency("MOIC").await?);
    let missing = onedoor_case::CaseId::generate().to_string();
    let status = front.get_case(&missing).await.expect_err("unknown case");
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains(&missing));
    assert_eq!(
        moic.accept(&missing)
            .await
            .expect_err("unknown case")
            .code(),
        Code::NotFound
    );

    let case = front.open_case("enterprise-registration").await?.case_id;
    front.hand_off(&case, "MOIC").await?;
    assert_eq!(
        moic.complete(&case).await.expect_err("not accepted").code(),
        Code::FailedPrecondition
    );
    moic.accept(&case).await?;
    assert_eq!(
        moic.accept(&case).await.expect_err("twice").code(),
        Code::FailedPrecondition
    );
    Ok(())
}

#[tokio::test]
async fn a_retried_request_returns_the_first_receipt_even_after_an_adapter_restart()
-> anyhow::Result<()> {
    let mut bus = TestBus::with_adapters(&[FRONT]).await?;
    let request = v1::OpenCaseRequest {
        service: "vehicle-registration".into(),
        citizen_ref: "R-9".into(),
        summary: "car".into(),
        idempotency_key: "open-R-9".into(),
        actor: "clerk".into(),
        documents: vec![],
    };
    let first = bus
        .agency(FRONT)
        .await?
        .client
        .open_case(request.clone())
        .await?
        .into_inner();
    let again = bus
        .agency(FRONT)
        .await?
        .client
        .open_case(request.clone())
        .await?
        .into_inner();
    assert_eq!(again, first);

    bus.stop_adapter(FRONT).await;
    bus.start_adapter(FRONT).await?;
    let mut front = bus.agency(FRONT).await?;
    let after_restart = front.client.open_case(request.clone()).await?.into_inner();
    assert_eq!(after_restart, first);

    let mut changed = request;
    changed.summary = "truck".into();
    let status = front
        .client
        .open_case(changed)
        .await
        .expect_err("same key, other request");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(
        front.get_case(&first.case_id).await?.events.len(),
        1,
        "one event only"
    );
    Ok(())
}

#[tokio::test]
async fn the_same_key_on_a_hand_off_is_recognised_and_a_changed_one_is_already_exists()
-> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    let mut front = bus.agency(FRONT).await?;
    let case = front.open_case("enterprise-registration").await?.case_id;
    let request = v1::HandOffRequest {
        case_id: case.clone(),
        to_agency: "MOIC".into(),
        idempotency_key: "h1".into(),
        ..Default::default()
    };
    let first = front.client.hand_off(request.clone()).await?.into_inner();
    let again = front.client.hand_off(request.clone()).await?.into_inner();
    assert_eq!(again, first);
    let mut other = request;
    other.to_agency = "MOF".into();
    assert_eq!(
        front
            .client
            .hand_off(other)
            .await
            .expect_err("changed")
            .code(),
        Code::AlreadyExists
    );
    assert_eq!(front.get_case(&case).await?.events.len(), 2);
    Ok(())
}
