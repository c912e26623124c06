//! A front office onboarded the way the runbook says, end to end: `keys new` for its
//! credentials, `nats-config` + `keys nats-import` for the operator's NATS users, `certs` for
//! its adapter's TLS, the printed lines pasted into a registry. A real `onedoor adapter`
//! process then accepts the token and signs what `onedoor audit verify` accepts; after
//! `keys rotate --what signing`, cases signed by the old key still verify.

use std::path::Path;
use std::process::Stdio;

use async_nats::jetstream;
use onedoor_bus::{InboxSettings, StreamSettings, ensure_inbox, ensure_stream};
use onedoor_natsauth::{CredentialSet, Identity, connect_options};
use onedoor_proto::v1::agency_gateway_client::AgencyGatewayClient;
use onedoor_testkit::{BearerToken, DEADLINE, FRONT, TestAgency, TestNats, code, eventually};
use tokio::process::{Child, Command};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::{Printed, keys_new, registry_with, succeeds, text};

/// The operator's side: a nats-server on the configuration written by `nats-config` and
/// `keys nats-import`, and the stream, the front office's inbox and the stuck bucket.
async fn operator_nats(auth: &Path) -> anyhow::Result<TestNats> {
    let config = std::fs::read_to_string(auth.join("nats-auth.conf"))?;
    let nats = TestNats::start_with_config(&config).await?;
    let credentials = CredentialSet::load(&auth.join("credentials"))?;
    let operator = connect_options(&Identity::Operator, &credentials.seed(&Identity::Operator)?)
        .connect(nats.url())
        .await?;
    let js = jetstream::new(operator);
    ensure_stream(&js, &StreamSettings::development()).await?;
    ensure_inbox(&js, &code(FRONT), &InboxSettings::default()).await?;
    onedoor_bus::stuck::ensure_stuck_bucket(&js).await?;
    Ok(nats)
}

/// A free loopback port for the adapter process (bound once here, then released).
fn free_address() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

/// `onedoor adapter` for the front office with the keys in `printed`, TLS from `server`.
fn spawn_adapter(
    printed: &Printed,
    address: &str,
    nats_url: &str,
    registry: &Path,
    server: &Path,
) -> anyhow::Result<Child> {
    Ok(Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .args(["adapter", "--agency", FRONT, "--listen", address])
        .args(["--nats-url", nats_url, "--nats-connect-timeout", "20"])
        .args(["--nats-seed", &printed.setting("nats_seed")])
        .args(["--signing-key", &printed.setting("signing_key")])
        .args(["--key-id", &printed.setting("key_id")])
        .args(["--registry", text(registry)])
        .args(["--tls-cert", text(&server.join("server.pem"))])
        .args(["--tls-key", text(&server.join("server-key.pem"))])
        .stdout(Stdio::null())
        .env("ONEDOOR_LOG", "warn")
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?)
}

/// A TLS channel to the adapter, trusting only the CA `certs ca` made, once it is SERVING.
async fn serving_channel(address: &str, ca: &Path) -> anyhow::Result<Channel> {
    let tls = ClientTlsConfig::new()
        .domain_name("localhost")
        .ca_certificate(Certificate::from_pem(std::fs::read(ca.join("ca.pem"))?));
    let endpoint = Channel::from_shared(format!("https://{address}"))?.tls_config(tls)?;
    eventually("the adapter to serve over TLS", DEADLINE, || async {
        let Ok(channel) = endpoint.connect().await else {
            return Ok(Err("not listening yet".to_owned()));
        };
        let status = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: "onedoor.v1.AgencyGateway".into(),
            })
            .await
            .map(|r| r.into_inner().status());
        Ok(match status {
            Ok(ServingStatus::Serving) => Ok(channel),
            other => Err(format!("{other:?}")),
        })
    })
    .await
}

fn front_office(channel: Channel, token: &str) -> TestAgency {
    TestAgency {
        code: FRONT.to_owned(),
        client: AgencyGatewayClient::with_interceptor(channel, BearerToken(token.to_owned())),
    }
}

/// `onedoor audit verify` as the auditor; (succeeded, stdout).
fn audit(
    case: &str,
    registry: &Path,
    nats_url: &str,
    auth: &Path,
    scratch: &Path,
) -> (bool, String) {
    let seed = auth.join("credentials").join("auditor.nk");
    let case_args: Vec<&str> = if case == "--all" {
        vec!["--all"]
    } else {
        vec![case]
    };
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .args(["audit", "verify"])
        .args(case_args)
        .args(["--registry", text(registry), "--data-dir", text(scratch)])
        .args(["--nats-url", nats_url, "--nats-seed", text(&seed)])
        .output()
        .expect("audit runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adapter_runs_on_keys_new_credentials_and_rotation_keeps_old_signatures()
-> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = |name: &str| temp.path().join(name);
    let (keys, auth, ca, server) = (dir("keys"), dir("nats-auth"), dir("ca"), dir("server"));
    let first = Printed::parse(succeeds(&keys_new(FRONT, &keys, &[])));
    let registry = dir("registry.toml");
    std::fs::write(&registry, registry_with(FRONT, &[&first.registry_lines]))?;
    succeeds(&["registry", "check", text(&registry)]);

    succeeds(&[
        "nats-config",
        "--out",
        text(&auth),
        "--registry",
        text(&registry),
    ]);
    let public_key = first
        .nats_public_key
        .clone()
        .expect("NATS public key printed");
    succeeds(&[
        "keys",
        "nats-import",
        "--agency",
        FRONT,
        "--public-key",
        &public_key,
        "--out",
        text(&auth),
        "--registry",
        text(&registry),
    ]);
    let nats = operator_nats(&auth).await?;
    succeeds(&["certs", "ca", "--out", text(&ca)]);
    succeeds(&[
        "certs",
        "server",
        "--ca",
        text(&ca),
        "--out",
        text(&server),
        "--name",
        "localhost,127.0.0.1",
    ]);

    let address = free_address()?;
    let mut adapter = spawn_adapter(&first, &address, &nats.url(), &registry, &server)?;
    let channel = serving_channel(&address, &ca).await?;
    let refused = front_office(channel.clone(), "not-the-token")
        .open_case("enterprise-registration")
        .await;
    assert_eq!(
        refused.map(|_| ()).map_err(|s| s.code()),
        Err(tonic::Code::Unauthenticated)
    );
    let token = first.token.clone().expect("token printed");
    let old_case = front_office(channel, &token)
        .open_case("enterprise-registration")
        .await?
        .case_id;

    let scratch = dir("no-bus");
    let (ok, out) = audit(&old_case, &registry, &nats.url(), &auth, &scratch);
    assert!(ok, "audit verify refused the adapter's signature: {out}");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2025.toml");
    let (ok, out) = audit(&old_case, &shipped, &nats.url(), &auth, &scratch);
    assert!(
        !ok,
        "verified without the agency's key in the registry: {out}"
    );

    // Rotation: a new key beside the old, both listed; the old one's cases still verify.
    let second = Printed::parse(succeeds(&[
        "keys",
        "rotate",
        "--agency",
        FRONT,
        "--out",
        text(&keys),
        "--what",
        "signing",
    ]));
    assert!(
        second.stdout.contains(&first.setting("key_id")),
        "{}",
        second.stdout
    );
    assert!(
        Path::new(&first.setting("signing_key")).exists(),
        "the old seed is kept"
    );
    std::fs::write(
        &registry,
        registry_with(FRONT, &[&first.registry_lines, &second.registry_lines]),
    )?;
    adapter.kill().await?;
    let mut rotated = Printed::parse(second.stdout.clone());
    rotated
        .settings
        .insert("nats_seed".into(), first.setting("nats_seed").into());
    let _adapter = spawn_adapter(&rotated, &address, &nats.url(), &registry, &server)?;
    let channel = serving_channel(&address, &ca).await?;
    let new_case = front_office(channel, &token)
        .open_case("enterprise-registration")
        .await?
        .case_id;
    assert_ne!(new_case, old_case);
    let (ok, out) = audit("--all", &registry, &nats.url(), &auth, &scratch);
    assert!(ok && out.contains("2 case(s)"), "{out}");
    Ok(())
}
