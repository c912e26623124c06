//! The reference receiver (`examples/webhook-receiver/receiver.py`, Python standard library)
//! against a real adapter on a real nats-server: it verifies the signature, handles each
//! `webhook-id` once, and refuses what a wrong secret signed.

use std::path::PathBuf;
use std::process::Stdio;

use onedoor_adapter::webhook::signature::signature_header;
use onedoor_adapter::webhook::{WebhookSecret, WebhookSecrets};
use onedoor_testkit::DEADLINE;
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

mod webhook_common;
use webhook_common::{bus_pushing_moic, hand_off_to_moic, wait_stuck, webhook};

/// The receiver process and what it prints, one JSON line per request.
struct Reference {
    url: String,
    lines: Lines<BufReader<ChildStdout>>,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Reference {
    /// Starts the receiver accepting `secrets` (space-separated `whsec_…`) on a free port.
    async fn start(secrets: &str) -> anyhow::Result<Self> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/webhook-receiver/receiver.py");
        let dir = tempfile::tempdir()?;
        let mut child = Command::new("python3")
            .arg(script)
            .env("WEBHOOK_SECRETS", secrets)
            .env("PORT", "0")
            .env("DB", dir.path().join("handled.sqlite3"))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(DEADLINE, lines.next_line())
            .await??
            .unwrap_or_default();
        let url = first
            .strip_prefix("listening on ")
            .ok_or_else(|| anyhow::anyhow!("the receiver said {first:?}"))?
            .to_owned();
        Ok(Reference {
            url,
            lines,
            _child: child,
            _dir: dir,
        })
    }

    /// The next JSON line the receiver prints.
    async fn next(&mut self) -> anyhow::Result<serde_json::Value> {
        let line = tokio::time::timeout(DEADLINE, self.lines.next_line())
            .await??
            .ok_or_else(|| anyhow::anyhow!("the receiver exited"))?;
        Ok(serde_json::from_str(&line)?)
    }

    /// POSTs `body` as the adapter would, signed with `secret`; the answer's status.
    async fn post(&self, secret: &WebhookSecret, id: &str, body: &str) -> anyhow::Result<u16> {
        let secrets = WebhookSecrets::new(vec![secret.clone()])?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        // reqwest is built without a default TLS provider; plain http needs only a config.
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let response = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()?
            .post(&self.url)
            .header("webhook-id", id)
            .header("webhook-timestamp", now.to_string())
            .header(
                "webhook-signature",
                signature_header(&secrets, id, now, body.as_bytes()),
            )
            .body(body.to_owned())
            .send()
            .await?;
        Ok(response.status().as_u16())
    }
}

#[tokio::test]
async fn the_reference_receiver_accepts_a_signed_item_once_and_refuses_a_wrong_signature()
-> anyhow::Result<()> {
    let secret = WebhookSecret::generate();
    let mut reference = Reference::start(&secret.expose()).await?;
    let bus = bus_pushing_moic(webhook(&reference.url, &[&secret])?, 2).await?;
    let handed = hand_off_to_moic(&bus).await?;

    let line = reference.next().await?;
    assert_eq!(line["accepted"], handed.event_id.as_str(), "{line}");
    assert_eq!(line["case"], handed.case_id.as_str(), "{line}");

    // The same id again (a redelivery whose ack was lost): answered 200, not handled twice.
    let body = r#"{"event":{"eventId":"x"},"deliveryAttempt":2}"#;
    assert_eq!(reference.post(&secret, &handed.event_id, body).await?, 200);
    assert_eq!(
        reference.next().await?["duplicate"],
        handed.event_id.as_str()
    );

    let wrong = WebhookSecret::generate();
    assert_eq!(
        reference
            .post(&wrong, "01JDQ3Z6Y8K9M2N4P5R7S9T1V4", body)
            .await?,
        401
    );
    let line = reference.next().await?;
    assert_eq!(line["why"], "no signature matches", "{line}");
    Ok(())
}

#[tokio::test]
async fn an_adapter_with_the_wrong_secret_is_refused_until_the_item_is_stuck() -> anyhow::Result<()>
{
    let mut reference = Reference::start(&WebhookSecret::generate().expose()).await?;
    let bus = bus_pushing_moic(webhook(&reference.url, &[&WebhookSecret::generate()])?, 2).await?;
    let handed = hand_off_to_moic(&bus).await?;

    for _ in 0..2 {
        let line = reference.next().await?;
        assert_eq!(line["rejected"], handed.event_id.as_str(), "{line}");
    }
    let record = wait_stuck(&bus, &handed.event_id).await?;
    assert!(record.reason.contains("HTTP 401"), "{}", record.reason);
    Ok(())
}
