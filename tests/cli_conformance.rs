//! `onedoor conformance --agency X --target URL`: passes against the reference webhook receiver
//! (`examples/webhook-receiver/receiver.py`) and fails, naming the problem and its fix, against
//! deliberately broken ones (`tests/support/broken_receiver.py`).

use std::path::PathBuf;

use onedoor_adapter::webhook::WebhookSecret;
use onedoor_testkit::{DEADLINE, ReferenceReceiver};
use tokio::process::Command;

#[path = "support/conformance_report.rs"]
mod conformance_report;
use conformance_report::{check, failed};

/// Runs conformance against `url` with `secret` and `extra` flags; its exit success and its
/// JSON report.
async fn conformance(
    url: &str,
    secret: &str,
    extra: &[&str],
) -> anyhow::Result<(bool, serde_json::Value)> {
    let output = tokio::time::timeout(
        DEADLINE,
        Command::new(env!("CARGO_BIN_EXE_onedoor"))
            .args(["conformance", "--agency", "MOIC", "--target", url, "--json"])
            .args(extra)
            .env("ONEDOOR_WEBHOOK_SECRET", secret)
            .kill_on_drop(true)
            .output(),
    )
    .await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout).map_err(|e| {
        anyhow::anyhow!("{e}: {stdout} {}", String::from_utf8_lossy(&output.stderr))
    })?;
    Ok((output.status.success(), report))
}

/// True when the check named `name` failed with a fix that mentions `words`.
fn fix_says(report: &serde_json::Value, name: &str, words: &str) -> bool {
    let found = check(report, name);
    found["passed"] == false && found["fix"].as_str().is_some_and(|f| f.contains(words))
}

async fn broken(secret: &str, faults: &str, slow: &str) -> anyhow::Result<ReferenceReceiver> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/support/broken_receiver.py");
    ReferenceReceiver::start_script(
        &script,
        secret,
        &[("BROKEN", faults), ("SLOW_SECONDS", slow)],
    )
    .await
}

#[tokio::test]
async fn the_reference_receiver_passes_every_check() -> anyhow::Result<()> {
    let secret = WebhookSecret::generate().expose();
    let mut receiver = ReferenceReceiver::start(&secret).await?;
    let (passed, report) = conformance(&receiver.url, &secret, &[]).await?;
    assert!(passed, "{report:#}");
    assert!(failed(&report).is_empty(), "{report:#}");
    assert_eq!(report["checks"].as_array().map(Vec::len), Some(7));
    // It really received them: the first line is the signed item, accepted.
    let first = receiver.next().await?;
    assert!(first.get("accepted").is_some(), "{first}");
    Ok(())
}

#[tokio::test]
async fn a_receiver_with_the_wrong_secret_fails_saying_so() -> anyhow::Result<()> {
    let receiver = ReferenceReceiver::start(&WebhookSecret::generate().expose()).await?;
    let other = WebhookSecret::generate().expose();
    let (passed, report) = conformance(&receiver.url, &other, &[]).await?;
    assert!(!passed);
    assert!(
        fix_says(&report, "signed item acked with 2xx", "same secret"),
        "{report:#}"
    );
    Ok(())
}

#[tokio::test]
async fn skipped_signature_checks_and_double_work_are_named() -> anyhow::Result<()> {
    let secret = WebhookSecret::generate().expose();
    let receiver = broken(&secret, "skip-signature,act-twice", "0").await?;
    let (passed, report) = conformance(&receiver.url, &secret, &[]).await?;
    assert!(!passed);
    assert_eq!(
        failed(&report),
        [
            "bad signature refused with 4xx",
            "stale timestamp refused with 4xx",
            "same item twice: acked twice, acted on once"
        ],
        "{report:#}"
    );
    assert!(
        fix_says(
            &report,
            "same item twice: acked twice, acted on once",
            "the work was done twice"
        ),
        "{report:#}"
    );
    assert!(
        fix_says(&report, "bad signature refused with 4xx", "was accepted"),
        "{report:#}"
    );
    Ok(())
}

#[tokio::test]
async fn refused_out_of_order_items_and_crashes_on_long_fields_are_named() -> anyhow::Result<()> {
    let secret = WebhookSecret::generate().expose();
    let receiver = broken(&secret, "refuse-out-of-order,crash-on-large", "0").await?;
    let (passed, report) = conformance(&receiver.url, &secret, &[]).await?;
    assert!(!passed);
    assert_eq!(
        failed(&report),
        [
            "later step before earlier accepted",
            "fields at the bus's limits handled"
        ],
        "{report:#}"
    );
    let large = check(&report, "fields at the bus's limits handled");
    assert!(
        large["saw"].as_str().is_some_and(|s| s.starts_with("500")),
        "{large}"
    );
    Ok(())
}

#[tokio::test]
async fn an_answer_later_than_the_timeout_fails_and_is_retried() -> anyhow::Result<()> {
    let secret = WebhookSecret::generate().expose();
    let receiver = broken(&secret, "slow", "3").await?;
    let (passed, report) = conformance(&receiver.url, &secret, &["--webhook-timeout", "1"]).await?;
    assert!(!passed);
    let slow = check(&report, "ack within the adapter's timeout");
    assert_eq!(slow["passed"], false, "{slow}");
    assert!(
        slow["saw"]
            .as_str()
            .is_some_and(|s| s.contains("no answer within 1s") && s.contains("retried")),
        "{slow}"
    );
    assert!(
        slow["fix"]
            .as_str()
            .is_some_and(|f| f.contains("answer within 1s")),
        "{slow}"
    );
    // Refusals come before the slow part, so they still pass.
    assert_eq!(
        check(&report, "bad signature refused with 4xx")["passed"],
        true
    );
    Ok(())
}

#[tokio::test]
async fn no_secret_is_an_error_that_says_how_to_give_one() -> anyhow::Result<()> {
    let output = Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .args([
            "conformance",
            "--agency",
            "MOIC",
            "--target",
            "http://127.0.0.1:9/",
        ])
        .env_remove("ONEDOOR_WEBHOOK_SECRET")
        .env_remove("ONEDOOR_WEBHOOK_SECRETS")
        .output()
        .await?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--webhook-secrets FILE"), "{stderr}");
    Ok(())
}
