//! What an operator relies on: health that follows the NATS connection, reflection for any gRPC
//! tool, and a clear UNAVAILABLE while the bus is down.

use std::time::{Duration, Instant};

use onedoor_testkit::{FRONT, TestBus};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const SERVICE: &str = "onedoor.v1.AgencyGateway";

async fn status(bus: &TestBus) -> anyhow::Result<ServingStatus> {
    let mut health = HealthClient::new(bus.channel(FRONT).await?);
    let response = health
        .check(HealthCheckRequest {
            service: SERVICE.into(),
        })
        .await?
        .into_inner();
    Ok(response.status())
}

async fn wait_for_status(bus: &TestBus, wanted: ServingStatus) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if status(bus).await? == wanted {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "health never became {wanted:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn health_is_not_serving_while_nats_is_down_and_writes_are_unavailable() -> anyhow::Result<()>
{
    let mut bus = TestBus::start().await?;
    let mut config = bus.adapter_config(FRONT)?;
    config.nats_timeout = Duration::from_millis(500);
    bus.start_with(FRONT, config).await?;
    wait_for_status(&bus, ServingStatus::Serving).await?;

    bus.nats.kill()?;
    wait_for_status(&bus, ServingStatus::NotServing).await?;
    let mut front = bus.agency(FRONT).await?;
    let status = front
        .open_case("enterprise-registration")
        .await
        .expect_err("bus is down");
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());

    bus.nats.restart().await?;
    wait_for_status(&bus, ServingStatus::Serving).await?;
    front.open_case("enterprise-registration").await?;
    Ok(())
}

#[tokio::test]
async fn reflection_lists_the_gateway_without_a_token_or_proto_files() -> anyhow::Result<()> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let bus = TestBus::with_adapters(&[FRONT]).await?;
    let mut client = ServerReflectionClient::new(bus.channel(FRONT).await?);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let response = responses.message().await?.expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        anyhow::bail!("not a service list: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&SERVICE.to_owned()), "{names:?}");
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    // Only what this server answers: CaseTracker is the tracker's.
    assert!(
        !names.iter().any(|name| name.contains("CaseTracker")),
        "{names:?}"
    );
    Ok(())
}
