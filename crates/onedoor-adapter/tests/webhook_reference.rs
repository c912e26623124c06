//! The reference receiver (`examples/webhook-receiver/receiver.py`, Python standard library)
//! against a real adapter on a real nats-server: it verifies the signature, handles each
//! `webhook-id` once, and refuses what a wrong secret signed.

use onedoor_adapter::webhook::signature::signature_header;
use onedoor_adapter::webhook::{WebhookSecret, WebhookSecrets};
use onedoor_testkit::ReferenceReceiver;

mod webhook_common;
use webhook_common::{bus_pushing_moic, hand_off_to_moic, wait_stuck, webhook};

/// POSTs `body` as the adapter would, signed with `secret`, to the receiver at `url`; the
/// answer's status.
async fn post(url: &str, secret: &WebhookSecret, id: &str, body: &str) -> anyhow::Result<u16> {
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
        .post(url)
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

#[tokio::test]
async fn the_reference_receiver_accepts_a_signed_item_once_and_refuses_a_wrong_signature()
-> anyhow::Result<()> {
    let secret = WebhookSecret::generate();
    let mut reference = ReferenceReceiver::start(&secret.expose()).await?;
    let bus = bus_pushing_moic(webhook(&reference.url, &[&secret])?, 2).await?;
    let handed = hand_off_to_moic(&bus).await?;

    let line = reference.next().await?;
    assert_eq!(line["accepted"], handed.event_id.as_str(), "{line}");
    assert_eq!(line["case"], handed.case_id.as_str(), "{line}");

    // The same id again (a redelivery whose ack was lost): answered 200, not handled twice.
    let body = r#"{"event":{"eventId":"x"},"deliveryAttempt":2}"#;
    assert_eq!(
        post(&reference.url, &secret, &handed.event_id, body).await?,
        200
    );
    assert_eq!(
        reference.next().await?["duplicate"],
        handed.event_id.as_str()
    );

    let wrong = WebhookSecret::generate();
    assert_eq!(
        post(&reference.url, &wrong, "01JDQ3Z6Y8K9M2N4P5R7S9T1V4", body).await?,
        401
    );
    let line = reference.next().await?;
    assert_eq!(line["why"], "no signature matches", "{line}");
    Ok(())
}

#[tokio::test]
async fn an_adapter_with_the_wrong_secret_is_refused_until_the_item_is_stuck() -> anyhow::Result<()>
{
    let mut reference = ReferenceReceiver::start(&WebhookSecret::generate().expose()).await?;
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
