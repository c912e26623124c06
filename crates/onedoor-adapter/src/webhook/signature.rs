//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `<webhook-id>.<webhook-timestamp>.<body>`, one signature per secret in force, separated by
//! spaces.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit as _, Mac as _};

use super::secret::{WebhookSecret, WebhookSecrets};

type HmacSha256 = hmac::Hmac<sha2_hmac::Sha256>;

/// The event id: the same on every attempt, so receivers de-duplicate by it.
pub const WEBHOOK_ID: &str = "webhook-id";
/// Seconds since the Unix epoch when this attempt was signed.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// How far a receiver should let `webhook-timestamp` stray from its clock (the specification's
/// usual tolerance), so a captured request cannot be replayed later.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

fn mac(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC pads a key shorter than its block with zeros; keys are at most 64 bytes (the
    // block), so padding here gives the same MAC through the infallible constructor.
    let mut block = hmac::digest::Key::<HmacSha256>::default();
    let key = secret.key();
    let len = key.len().min(block.len());
    block[..len].copy_from_slice(&key[..len]);
    let mut mac = HmacSha256::new(&block);
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `v1,<base64>` by one secret.
pub fn signature(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(digest))
}

/// The `webhook-signature` header: a signature by each secret, newest first.
pub fn signature_header(secrets: &WebhookSecrets, id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| signature(secret, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// True when any `v1` signature in `header` is by `secret` (compared in constant time), and
/// `timestamp` is within [`TOLERANCE_SECONDS`] of `now`. What a receiver does; used by the
/// adapter's tests and `docs/webhooks.md`'s snippets follow the same steps.
pub fn verify(
    secret: &WebhookSecret,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
) -> bool {
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return false;
    }
    header
        .split(' ')
        .filter_map(|part| part.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|candidate| {
            mac(secret, id, timestamp, body)
                .verify_slice(&candidate)
                .is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector published with the Standard Webhooks specification (its reference
    /// libraries' tests), so our signature is the one every receiver library computes.
    #[test]
    fn the_published_test_vector_signs_the_same() {
        let secret =
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("vector secret");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn either_secret_of_a_rotation_verifies_and_a_third_does_not() {
        let (new, old, other) = (
            WebhookSecret::generate(),
            WebhookSecret::generate(),
            WebhookSecret::generate(),
        );
        let both = WebhookSecrets::new(vec![new.clone(), old.clone()]).expect("two");
        let header = signature_header(&both, "01JDQ3Z6Y8K9M2N4P5R7S9T1V4", 1_700_000_000, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        for secret in [&new, &old] {
            assert!(verify(
                secret,
                "01JDQ3Z6Y8K9M2N4P5R7S9T1V4",
                1_700_000_000,
                b"{}",
                &header,
                1_700_000_000
            ));
        }
        assert!(!verify(
            &other,
            "01JDQ3Z6Y8K9M2N4P5R7S9T1V4",
            1_700_000_000,
            b"{}",
            &header,
            1_700_000_000
        ));
    }

    #[test]
    fn a_changed_body_id_or_stale_timestamp_does_not_verify() {
        let secret = WebhookSecret::generate();
        let one = WebhookSecrets::new(vec![secret.clone()]).expect("one");
        let header = signature_header(&one, "id1", 1_700_000_000, b"{\"a\":1}");
        assert!(verify(
            &secret,
            "id1",
            1_700_000_000,
            b"{\"a\":1}",
            &header,
            1_700_000_100
        ));
        assert!(!verify(
            &secret,
            "id1",
            1_700_000_000,
            b"{\"a\":2}",
            &header,
            1_700_000_000
        ));
        assert!(!verify(
            &secret,
            "id2",
            1_700_000_000,
            b"{\"a\":1}",
            &header,
            1_700_000_000
        ));
        assert!(!verify(
            &secret,
            "id1",
            1_700_000_000,
            b"{\"a\":1}",
            &header,
            1_700_000_301
        ));
    }
}
