//! `onedoor adapter --webhook-url …`: the binary pushes an agency's inbox to the reference
//! receiver (`examples/webhook-receiver/receiver.py`) signed with the secrets file, never logs
//! the secret, and refuses webhook settings that cannot work, by name.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use onedoor_adapter::webhook::WebhookSecret;
use onedoor_testkit::{DEADLINE, FRONT, ReferenceReceiver, TestBus};
use tokio::process::Command;

/// Writes `text` to `dir/name` with `mode`.
fn file(dir: &Path, name: &str, text: &str, mode: u32) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    Ok(path)
}

/// `onedoor adapter` for MOIC on `nats_url` with `extra` flags, as a child process.
fn adapter(nats_url: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onedoor"));
    command
        .args(["adapter", "--agency", "MOIC", "--listen", "127.0.0.1:0"])
        .args(["--nats-url", nats_url])
        // A development NATS without users: the adapter may read the stream itself.
        .args(["--case-reads", "stream"])
        .args(extra)
        .kill_on_drop(true);
    command
}

/// Runs the adapter expecting it to refuse to start; its stderr.
async fn refused(extra: &[&str]) -> anyhow::Result<String> {
    let output =
        tokio::time::timeout(DEADLINE, adapter("nats://127.0.0.1:1", extra).output()).await??;
    assert!(!output.status.success(), "started with {extra:?}");
    Ok(String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn webhook_settings_that_cannot_work_stop_the_start_by_name() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let secret = WebhookSecret::generate().expose();
    let loose = file(dir.path(), "loose.secrets", &secret, 0o644)?;
    let bad = file(
        dir.path(),
        "bad.secrets",
        "whsec_c2VjcmV0LXRvby1zaG9ydA==\n",
        0o600,
    )?;
    let url = "https://moic.example.la/onedoor";

    let text = refused(&["--webhook-url", url]).await?;
    assert!(
        text.contains("webhook_url and webhook_secrets go together"),
        "{text}"
    );

    let text = refused(&[
        "--webhook-url",
        url,
        "--webhook-secrets",
        &loose.to_string_lossy(),
    ])
    .await?;
    assert!(text.contains("chmod 600"), "{text}");
    assert!(!text.contains(&secret), "{text}");

    let text = refused(&[
        "--webhook-url",
        url,
        "--webhook-secrets",
        &bad.to_string_lossy(),
    ])
    .await?;
    assert!(
        text.contains("line 1: webhook secret: the key is 16 bytes"),
        "{text}"
    );
    assert!(!text.contains("c2VjcmV0LXRvby1zaG9ydA"), "{text}");
    Ok(())
}

#[tokio::test]
async fn the_adapter_binary_pushes_a_hand_off_to_the_reference_receiver() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let secret = WebhookSecret::generate().expose();
    let secrets = file(dir.path(), "moic.secrets", &format!("{secret}\n"), 0o600)?;

    let mut receiver = ReferenceReceiver::start(&secret).await?;
    let url = receiver.url.clone();

    let mut bus = TestBus::start().await?;
    bus.start_adapter(FRONT).await?;
    let log = std::fs::File::create(dir.path().join("adapter.log"))?;
    let mut moic = adapter(
        &bus.nats.url(),
        &[
            "--webhook-url",
            &url,
            "--webhook-secrets",
            &secrets.to_string_lossy(),
        ],
    )
    .env("RUST_LOG", "debug")
    .stderr(log.try_clone()?)
    .stdout(log)
    .spawn()?;

    let mut front = bus.agency(FRONT).await?;
    let case = front.open_case("enterprise-registration").await?.case_id;
    let handed = front.hand_off(&case, "MOIC").await?;
    let line = receiver.next().await?;
    assert_eq!(line["accepted"], handed.event_id.as_str(), "{line}");

    moic.kill().await?;
    let logged = std::fs::read_to_string(dir.path().join("adapter.log"))?;
    assert!(
        logged.contains("pushing the inbox to a webhook"),
        "{logged}"
    );
    assert!(
        !logged.contains(&secret["whsec_".len()..]),
        "the secret was logged"
    );
    bus.stop_adapter(FRONT).await;
    Ok(())
}
