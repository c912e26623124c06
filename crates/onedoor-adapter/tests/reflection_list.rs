//! What `grpcurl list` shows against an adapter, asked through both reflection protocols
//! (grpcurl tries `v1`, older tools `v1alpha`): the gateway, health and reflection, nothing
//! else.

use onedoor_testkit::{FRONT, TestBus};

/// Every service the adapter serves, sorted.
const SERVED: [&str; 4] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "onedoor.v1.AgencyGateway",
];

/// The service names a `ListServices` reflection request gets, sorted, through the protocol
/// version whose generated module is `$version` (`v1`, `v1alpha`: the same messages).
macro_rules! list_services {
    ($bus:expr, $version:ident) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;

        let mut client = ServerReflectionClient::new($bus.channel(FRONT).await?);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await?
            .into_inner();
        match answers.message().await?.and_then(|a| a.message_response) {
            Some(MessageResponse::ListServicesResponse(list)) => {
                let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
                names.sort();
                names
            }
            other => anyhow::bail!("{}: not a service list: {other:?}", stringify!($version)),
        }
    }};
}

#[tokio::test]
async fn both_reflection_protocols_list_exactly_what_the_adapter_serves() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    assert_eq!(list_services!(bus, v1), SERVED);
    assert_eq!(list_services!(bus, v1alpha), SERVED);
    Ok(())
}
