//! Who may call an adapter, over real TLS: the agency's own client certificate (no token
//! needed), another agency's certificate (refused even with a good token), bearer tokens known
//! to the registry only by hash, and revoked tokens.

use std::sync::Arc;

use onedoor_case::{AgencyCode, TokenHash};
use onedoor_grpc::TlsIdentity;
use onedoor_grpc::devpki::DevPki;
use onedoor_proto::v1;
use onedoor_proto::v1::agency_gateway_client::AgencyGatewayClient;
use onedoor_testkit::{BearerToken, FRONT, TestBus, token_for};
use sha2::Digest as _;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

const REGISTRY_TOKEN: &str = "registry-token-for-the-front-office-0001";
const REVOKED_TOKEN: &str = "revoked-token-for-the-front-office-00002";

/// FRONT's adapter over TLS, knowing FRONT's client certificate, with one registry token and
/// one revoked token for FRONT.
async fn tls_bus() -> anyhow::Result<(TestBus, DevPki)> {
    let mut bus = TestBus::start().await?;
    let pki = DevPki::generate([FRONT, "MOIC"])?;
    let mut registry = (*bus.registry).clone();
    let front = AgencyCode::parse(FRONT)?;
    for (token, label, revoked) in [
        (REGISTRY_TOKEN, "front-erp", false),
        (REVOKED_TOKEN, "old-laptop", true),
    ] {
        let sha256: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        registry
            .add_token(
                &front,
                TokenHash {
                    label: label.into(),
                    sha256,
                    revoked,
                },
            )
            .map_err(anyhow::Error::msg)?;
    }
    bus.registry = Arc::new(registry);
    let mut config = bus.adapter_config(FRONT)?;
    config.tls = Some(TlsIdentity {
        cert_pem: pki.server.cert_pem.clone(),
        key_pem: pki.server.key_pem.clone(),
        client_ca_pem: Some(pki.ca_cert_pem.clone()),
    });
    config.client_certs = vec![pki.clients[FRONT].sha256];
    bus.start_with(FRONT, config).await?;
    Ok((bus, pki))
}

async fn channel(
    bus: &TestBus,
    pki: &DevPki,
    client_cert: Option<&str>,
) -> anyhow::Result<Channel> {
    let address = bus.address(FRONT).replace("http://", "https://");
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_cert_pem))
        .domain_name("localhost");
    if let Some(agency) = client_cert {
        let client = &pki.clients[agency];
        tls = tls.identity(Identity::from_pem(&client.cert_pem, &client.key_pem));
    }
    Ok(Channel::from_shared(address)?
        .tls_config(tls)?
        .connect()
        .await?)
}

fn client(
    channel: Channel,
    token: &str,
) -> AgencyGatewayClient<InterceptedService<Channel, BearerToken>> {
    AgencyGatewayClient::with_interceptor(channel, BearerToken(token.to_owned()))
}

fn open_request() -> v1::OpenCaseRequest {
    v1::OpenCaseRequest {
        service: "enterprise-registration".into(),
        citizen_ref: "R-TLS".into(),
        idempotency_key: onedoor_testkit::key(),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_agencys_own_client_certificate_needs_no_token() -> anyhow::Result<()> {
    let (bus, pki) = tls_bus().await?;
    let mut anonymous = AgencyGatewayClient::new(channel(&bus, &pki, Some(FRONT)).await?);
    let receipt = anonymous.open_case(open_request()).await?.into_inner();
    assert_eq!(receipt.case_version, 1);
    Ok(())
}

#[tokio::test]
async fn another_agencys_certificate_is_refused_even_with_a_good_token() -> anyhow::Result<()> {
    let (bus, pki) = tls_bus().await?;
    let mut moic_cert = client(channel(&bus, &pki, Some("MOIC")).await?, &token_for(FRONT));
    let status = moic_cert
        .open_case(open_request())
        .await
        .expect_err("foreign certificate");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("not one of ODSC-VTE-SAYSETTHA's"),
        "{}",
        status.message()
    );
    Ok(())
}

#[tokio::test]
async fn tokens_are_checked_against_hashes_and_revoked_ones_say_so() -> anyhow::Result<()> {
    let (bus, pki) = tls_bus().await?;
    let no_cert = channel(&bus, &pki, None).await?;
    client(no_cert.clone(), REGISTRY_TOKEN)
        .open_case(open_request())
        .await?;
    client(no_cert.clone(), &token_for(FRONT))
        .open_case(open_request())
        .await?;

    let status = client(no_cert.clone(), REVOKED_TOKEN)
        .open_case(open_request())
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("\"old-laptop\" has been revoked"),
        "{}",
        status.message()
    );
    let status = client(no_cert.clone(), "a-guess-that-is-long-enough")
        .open_case(open_request())
        .await
        .expect_err("wrong");
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = AgencyGatewayClient::new(no_cert)
        .open_case(open_request())
        .await
        .expect_err("no credential");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        bus.stream_messages().await?,
        2,
        "only the two authenticated writes landed"
    );
    Ok(())
}

#[tokio::test]
async fn a_plaintext_client_cannot_talk_to_a_tls_adapter() -> anyhow::Result<()> {
    let (bus, _pki) = tls_bus().await?;
    let plain = Channel::from_shared(bus.address(FRONT))?.connect().await;
    let refused = match plain {
        Err(_) => true,
        Ok(channel) => client(channel, &token_for(FRONT))
            .open_case(open_request())
            .await
            .is_err(),
    };
    assert!(refused);
    Ok(())
}
