//! `onedoor health`, the probe containers and Kubernetes run: exit 0 and SERVING from a
//! running adapter, non-zero once the adapter's NATS is gone or for a service it does not
//! serve.

use onedoor_testkit::{DEADLINE, TestBus, eventually};
use tokio::process::Command;

/// `onedoor health --address ADDRESS --service SERVICE`: (succeeded, stdout + stderr).
async fn health(address: &str, service: &str) -> anyhow::Result<(bool, String)> {
    let output = Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .args(["health", "--address", address, "--service", service])
        .args(["--timeout", "3"])
        .output()
        .await?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    Ok((output.status.success(), text))
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
