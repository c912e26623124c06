//! `onedoor health`, the probe containers and Kubernetes run: exit 0 and SERVING from a
//! running adapter, non-zero once the adapter's NATS is gone or for a service it does not
//! serve.

use onedoor_grpc::TlsIdentity;
use onedoor_grpc::devpki::DevPki;
use onedoor_testkit::{DEADLINE, TestBus, eventually};
use tokio::process::Command;

/// `onedoor health --address ADDRESS --service SERVICE [EXTRA…]`: (succeeded, output).
async fn health_with(
    address: &str,
    service: &str,
    extra: &[&str],
) -> anyhow::Result<(bool, String)> {
    let output = Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .args(["health", "--address", address, "--service", service])
        .args(["--timeout", "3"])
        .args(extra)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    Ok((output.status.success(), text))
}

async fn health(address: &str, service: &str) -> anyhow::Result<(bool, String)> {
    health_with(address, service, &[]).await
}

#[tokio::test]
async fn health_follows_the_adapter_and_its_nats() -> anyhow::Result<()> {
    let mut bus = TestBus::with_adapters(&["MOIC"]).await?;
    let address = bus.address("MOIC");
    let gateway = "onedoor.v1.AgencyGateway";

    let serving = eventually("the adapter to report SERVING", DEADLINE, || async {
        let (ok, text) = health(&address, gateway).await?;
        Ok(if ok { Ok(text) } else { Err(text) })
    })
    .await?;
    assert_eq!(serving.trim(), "SERVING");

    let (ok, text) = health(&address, "onedoor.v1.NoSuchService").await?;
    assert!(!ok, "an unknown service passed: {text}");

    bus.nats.kill()?;
    let down = eventually("the probe to fail with NATS gone", DEADLINE, || async {
        let (ok, text) = health(&address, gateway).await?;
        Ok(if ok { Err(text) } else { Ok(text) })
    })
    .await?;
    assert!(down.contains("NOT_SERVING"), "{down}");
    Ok(())
}

/// Production adapters serve TLS: the probe checks the server's certificate against the CA it
/// is given, and refuses one it cannot verify.
#[tokio::test]
async fn health_speaks_tls_with_the_servers_ca() -> anyhow::Result<()> {
    let mut bus = TestBus::start().await?;
    let pki = DevPki::generate([])?;
    let mut config = bus.adapter_config("MOF")?;
    config.tls = Some(TlsIdentity {
        cert_pem: pki.server.cert_pem.clone(),
        key_pem: pki.server.key_pem.clone(),
        client_ca_pem: None,
    });
    bus.start_with("MOF", config).await?;
    let address = bus.address("MOF").replacen("http://", "https://", 1);
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_cert_pem)?;
    let ca = ca.display().to_string();
    let gateway = "onedoor.v1.AgencyGateway";

    let serving = eventually("SERVING over TLS", DEADLINE, || async {
        let (ok, text) = health_with(&address, gateway, &["--ca-cert", &ca]).await?;
        Ok(if ok { Ok(text) } else { Err(text) })
    })
    .await?;
    assert_eq!(serving.trim(), "SERVING");

    let (ok, text) = health(&address, gateway).await?;
    assert!(!ok, "a certificate from an unknown CA was accepted: {text}");
    Ok(())
}
