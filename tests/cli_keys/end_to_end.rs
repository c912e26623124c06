//! A front office onboarded the way the runbook says, end to end: `keys new` for its
//! credentials, `nats-config` + `keys nats-import` for the operator's NATS users, `certs` for
//! its adapter's TLS, the printed lines pasted into a registry. A real `onedoor adapter`
//! process then accepts the token and signs what `onedoor audit verify` accepts; after
//! `keys rotate --what signing`, cases signed by the old key still verify. It serves the
//! `certs server` certificate and accepts the `certs client` one by its printed SHA-256.

use std::path::{Path, PathBuf};
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

use super::{Printed, certs_client, keys_new, registry_with, succeeds, text};

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

/// A TLS channel to the adapter, trusting only the CA `certs ca` made, once it is SERVING.
/// With `client`, the channel presents that client certificate (`CODE.pem`, `CODE-key.pem`).
async fn serving_channel(
    address: &str,
    ca: &Path,
    client: Option<(&Path, &str)>,
) -> anyhow::Result<Channel> {
    let mut tls = ClientTlsConfig::new()
        .domain_name("localhost")
        .ca_certificate(Certificate::from_pem(std::fs::read(ca.join("ca.pem"))?));
    if let Some((dir, stem)) = client {
        tls = tls.identity(tonic::transport::Identity::from_pem(
            std::fs::read(dir.join(format!("{stem}.pem")))?,
            std::fs::read(dir.join(format!("{stem}-key.pem")))?,
        ));
    }
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

/// Everything onboarding made: the front office's keys (as `keys new` printed them), the
/// registry with its lines, the operator's NATS (running, provisioned), a CA and the adapter's
/// server certificate for `localhost` and `127.0.0.1`.
struct Onboarded {
    temp: tempfile::TempDir,
    first: Printed,
    registry: PathBuf,
    nats: TestNats,
    /// `onedoor reader`: the adapter reads cases through it.
    _reader: Child,
}

impl Onboarded {
    async fn new() -> anyhow::Result<Onboarded> {
        let temp = tempfile::tempdir()?;
        let dir = |name: &str| temp.path().join(name);
        let first = Printed::parse(succeeds(&keys_new(FRONT, &dir("keys"), &[])));
        let registry = dir("registry.toml");
        std::fs::write(&registry, registry_with(FRONT, &[&first.registry_lines]))?;
        succeeds(&["registry", "check", text(&registry)]);

        let (auth, reg) = (dir("nats-auth"), ["--registry", text(&registry)]);
        succeeds(&[&["nats-config", "--out", text(&auth)][..], &reg].concat());
        let public_key = first.nats_public_key.clone().expect("NATS key printed");
        let import = [
            "keys",
            "nats-import",
            "--agency",
            FRONT,
            "--public-key",
            &public_key,
        ];
        succeeds(&[&import[..], &["--out", text(&auth)], &reg].concat());
        let nats = operator_nats(&auth).await?;
        let reader_seed = CredentialSet::load(&auth.join("credentials"))?
            .seed_file(&Identity::Reader)
            .map(Path::to_path_buf)
            .ok_or_else(|| anyhow::anyhow!("nats-config made no reader seed"))?;
        let reader = Command::new(env!("CARGO_BIN_EXE_onedoor"))
            .args([
                "reader",
                "--nats-url",
                &nats.url(),
                "--registry",
                text(&registry),
            ])
            .arg("--nats-seed")
            .arg(&reader_seed)
            .stdout(Stdio::null())
            .env("ONEDOOR_LOG", "warn")
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;

        let (ca, server) = (dir("ca"), dir("server"));
        succeeds(&["certs", "ca", "--out", text(&ca)]);
        let names = ["--name", "localhost,127.0.0.1"];
        let issue = ["certs", "server", "--ca", text(&ca), "--out", text(&server)];
        succeeds(&[&issue[..], &names].concat());
        Ok(Onboarded {
            temp,
            first,
            registry,
            nats,
            _reader: reader,
        })
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.temp.path().join(name)
    }

    /// `onedoor adapter` for the front office with the keys in `printed`, and `extra` flags.
    fn spawn_adapter(
        &self,
        printed: &Printed,
        address: &str,
        extra: &[&str],
    ) -> anyhow::Result<Child> {
        let server = self.dir("server");
        Ok(Command::new(env!("CARGO_BIN_EXE_onedoor"))
            .args(["adapter", "--agency", FRONT, "--listen", address])
            .args([
                "--nats-url",
                &self.nats.url(),
                "--nats-connect-timeout",
                "20",
            ])
            .args(["--nats-seed", &printed.setting("nats_seed")])
            .args(["--signing-key", &printed.setting("signing_key")])
            .args(["--key-id", &printed.setting("key_id")])
            .args(["--registry", text(&self.registry)])
            .args(["--tls-cert", text(&server.join("server.pem"))])
            .args(["--tls-key", text(&server.join("server-key.pem"))])
            .args(extra)
            .stdout(Stdio::null())
            .env("ONEDOOR_LOG", "warn")
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?)
    }

    /// `onedoor audit verify CASE` (or `--all`) as the auditor, against `registry`;
    /// (succeeded, output).
    fn audit(&self, case: &str, registry: &Path) -> (bool, String) {
        let seed = self.dir("nats-auth").join("credentials").join("auditor.nk");
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_onedoor"))
            .args(["audit", "verify", case, "--registry", text(registry)])
            .args(["--data-dir", text(&self.dir("no-bus"))])
            .args(["--nats-url", &self.nats.url(), "--nats-seed", text(&seed)])
            .output()
            .expect("audit runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        (
            output.status.success(),
            stdout.into_owned() + &String::from_utf8_lossy(&output.stderr),
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adapter_runs_on_keys_new_credentials_and_rotation_keeps_old_signatures()
-> anyhow::Result<()> {
    let bus = Onboarded::new().await?;
    let (first, ca) = (&bus.first, bus.dir("ca"));
    let address = free_address()?;
    let mut adapter = bus.spawn_adapter(first, &address, &[])?;
    let channel = serving_channel(&address, &ca, None).await?;
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

    let (ok, out) = bus.audit(&old_case, &bus.registry);
    assert!(ok, "audit verify refused the adapter's signature: {out}");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2025.toml");
    let (ok, out) = bus.audit(&old_case, &shipped);
    assert!(
        !ok,
        "verified without the agency's key in the registry: {out}"
    );

    // Rotation: a new key beside the old, both listed; the old one's cases still verify.
    let keys = bus.dir("keys");
    let rotate = ["keys", "rotate", "--agency", FRONT, "--out", text(&keys)];
    let second = Printed::parse(succeeds(&[&rotate[..], &["--what", "signing"]].concat()));
    assert!(
        second.stdout.contains(&first.setting("key_id")),
        "{}",
        second.stdout
    );
    assert!(
        Path::new(&first.setting("signing_key")).exists(),
        "the old seed is kept"
    );
    let both = registry_with(FRONT, &[&first.registry_lines, &second.registry_lines]);
    std::fs::write(&bus.registry, both)?;
    adapter.kill().await?;
    let mut rotated = Printed::parse(second.stdout.clone());
    rotated
        .settings
        .insert("nats_seed".into(), first.setting("nats_seed").into());
    let _adapter = bus.spawn_adapter(&rotated, &address, &[])?;
    let channel = serving_channel(&address, &ca, None).await?;
    let new_case = front_office(channel, &token)
        .open_case("enterprise-registration")
        .await?
        .case_id;
    assert_ne!(new_case, old_case);
    let (ok, out) = bus.audit("--all", &bus.registry);
    assert!(ok && out.contains("2 case(s)"), "{out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_adapter_serves_the_certs_server_certificate_and_knows_the_client_one()
-> anyhow::Result<()> {
    let bus = Onboarded::new().await?;
    let (ca, clients) = (bus.dir("ca"), bus.dir("clients"));
    let printed = succeeds(&certs_client(&ca, &clients, FRONT));
    let sha256 = printed
        .lines()
        .find_map(|l| l.strip_prefix("sha256: "))
        .expect("sha256 printed");
    let address = free_address()?;
    let client_ca = ca.join("ca.pem");
    let extra = [
        "--client-ca",
        text(&client_ca),
        "--client-cert-sha256",
        sha256,
    ];
    let _adapter = bus.spawn_adapter(&bus.first, &address, &extra)?;

    // The certificate alone speaks for the front office: the token sent with it is unknown.
    let channel = serving_channel(&address, &ca, Some((&clients, FRONT))).await?;
    front_office(channel, "no-such-token")
        .open_case("enterprise-registration")
        .await?;

    // `onedoor health` reaches it by IP address with the CA: the certificate names 127.0.0.1.
    let port = address.rsplit(':').next().expect("port");
    let url = format!("https://127.0.0.1:{port}");
    let health = succeeds(&["health", "--address", &url, "--ca-cert", text(&client_ca)]);
    assert_eq!(health.trim(), "SERVING");
    Ok(())
}
