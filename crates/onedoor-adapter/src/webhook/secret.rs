//! Webhook signing secrets in the Standard Webhooks form `whsec_<base64 key>`, and the one or
//! two of them in force at once (two while a secret is being rotated).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::AdapterError;

/// The prefix Standard Webhooks libraries expect, so a receiver can paste the secret as is.
pub const SECRET_PREFIX: &str = "whsec_";

/// The Standard Webhooks specification asks for keys of 24 to 64 bytes: shorter keys can be
/// guessed offline from one signed body, longer ones add nothing to HMAC-SHA256.
pub const MIN_KEY_BYTES: usize = 24;
pub const MAX_KEY_BYTES: usize = 64;

/// At most two: the new secret and the one being retired (`docs/webhooks.md`, "rotation").
pub const MAX_SECRETS: usize = 2;

/// One signing key. Never printed: `Debug` shows only that it is there.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(redacted)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`; the key must decode to 24 to 64 bytes.
    pub fn parse(text: &str) -> Result<Self, AdapterError> {
        let invalid = |why: String| AdapterError::Config(format!("webhook secret: {why}"));
        let encoded = text.trim().strip_prefix(SECRET_PREFIX).ok_or_else(|| {
            invalid(format!(
                "must start with {SECRET_PREFIX:?} (the Standard Webhooks form; docs/webhooks.md shows how to make one)"
            ))
        })?;
        let key = STANDARD.decode(encoded).map_err(|e| {
            invalid(format!(
                "the part after {SECRET_PREFIX:?} is not base64 ({e})"
            ))
        })?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(invalid(format!(
                "the key is {} bytes; it must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES}",
                key.len()
            )));
        }
        Ok(WebhookSecret { key })
    }

    /// A fresh random 32-byte secret.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::fill(&mut key[..]);
        WebhookSecret { key }
    }

    /// The `whsec_…` text, to hand to the receiver. Do not log it.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }
}

/// The secrets the adapter signs with, newest first: one normally, two during a rotation (each
/// delivery then carries a signature by each, so a receiver holding either one verifies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSecrets(Vec<WebhookSecret>);

impl WebhookSecrets {
    pub fn new(secrets: Vec<WebhookSecret>) -> Result<Self, AdapterError> {
        if secrets.is_empty() || secrets.len() > MAX_SECRETS {
            return Err(AdapterError::Config(format!(
                "webhook secrets: give 1 or {MAX_SECRETS} (two only while rotating), not {}",
                secrets.len()
            )));
        }
        Ok(WebhookSecrets(secrets))
    }

    /// One secret per line, newest first; blank lines and lines starting with `#` are skipped.
    /// Errors name the line, never its content.
    pub fn parse(text: &str) -> Result<Self, AdapterError> {
        let secrets = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
            .map(|(index, line)| {
                WebhookSecret::parse(line).map_err(|e| within(&format!("line {}", index + 1), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(secrets)
    }

    /// [`WebhookSecrets::parse`] of a file.
    pub fn load(path: &Path) -> Result<Self, AdapterError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            AdapterError::Config(format!("reading webhook secrets {}: {e}", path.display()))
        })?;
        Self::parse(&text).map_err(|e| within(&path.display().to_string(), e))
    }

    pub fn iter(&self) -> impl Iterator<Item = &WebhookSecret> {
        self.0.iter()
    }
}

/// `err` said of `place` (a file, a line), without repeating "adapter configuration".
fn within(place: &str, err: AdapterError) -> AdapterError {
    match err {
        AdapterError::Config(why) => AdapterError::Config(format!("{place}: {why}")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_parses_back_to_itself() {
        let secret = WebhookSecret::generate();
        assert_eq!(WebhookSecret::parse(&secret.expose()).ok(), Some(secret));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let secret = WebhookSecret::generate();
        let shown = format!("{:?}", WebhookSecrets::new(vec![secret.clone()]));
        let encoded = secret.expose();
        assert!(!shown.contains(&encoded[SECRET_PREFIX.len()..]), "{shown}");
    }

    #[test]
    fn malformed_secrets_are_refused_saying_why() {
        let short = format!("{SECRET_PREFIX}{}", STANDARD.encode([7u8; 16]));
        let long = format!("{SECRET_PREFIX}{}", STANDARD.encode([7u8; 65]));
        for (text, why) in [
            ("c2VjcmV0", "must start with"),
            ("whsec_not base64!", "not base64"),
            (short.as_str(), "16 bytes"),
            (long.as_str(), "65 bytes"),
        ] {
            let err = WebhookSecret::parse(text).expect_err(text).to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn a_secrets_file_holds_one_or_two_and_errors_name_the_line_not_the_secret() {
        let (a, b, c) = (
            WebhookSecret::generate(),
            WebhookSecret::generate(),
            WebhookSecret::generate(),
        );
        let two = format!("# new first\n{}\n\n{}\n", a.expose(), b.expose());
        let parsed = WebhookSecrets::parse(&two).expect("two");
        assert_eq!(parsed.iter().collect::<Vec<_>>(), [&a, &b]);
        let three = format!("{}\n{}\n{}\n", a.expose(), b.expose(), c.expose());
        assert!(WebhookSecrets::parse(&three).is_err());
        assert!(WebhookSecrets::parse("# nothing\n").is_err());
        let bad = format!("{}\nwhsec_!!{}\n", a.expose(), "x");
        let err = WebhookSecrets::parse(&bad)
            .expect_err("bad line")
            .to_string();
        assert!(err.starts_with("adapter configuration: line 2:"), "{err}");
        assert!(!err.contains(&a.expose()), "{err}");
    }
}
