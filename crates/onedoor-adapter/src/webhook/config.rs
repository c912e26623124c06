//! [`WebhookConfig`]: where an agency's inbox is pushed, how it is signed, and how patiently.

use std::time::Duration;

use onedoor_bus::InboxSettings;
use reqwest::Url;

use super::retry::RetrySchedule;
use super::secret::WebhookSecrets;
use crate::error::AdapterError;

/// Below this a receiver on the other side of a ministry's network cannot answer at all.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);

/// One receiver URL per agency adapter: every inbox item is POSTed there instead of waiting to
/// be pulled (`docs/webhooks.md`).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `https://…` (or `http://…` on a network the agency trusts). No user or password in it:
    /// the signature is what authenticates the adapter, and URLs end up in logs.
    pub url: String,
    /// The signing secrets, newest first (two while rotating).
    pub secrets: WebhookSecrets,
    /// Trust only this CA (PEM) for an `https` receiver; `None` trusts the system's roots.
    pub ca_pem: Option<String>,
    /// Longest one POST may take, connection and response included. Default 10 s. Must be
    /// shorter than every inbox backoff step: the inbox sends an item again when its ack wait
    /// ends, and a POST still running then would overlap its own retry.
    pub timeout: Duration,
    /// Pauses between attempts; the number of attempts is the inbox's `max_deliver`.
    pub retry: RetrySchedule,
}

impl WebhookConfig {
    pub fn new(url: impl Into<String>, secrets: WebhookSecrets) -> Self {
        WebhookConfig {
            url: url.into(),
            secrets,
            ca_pem: None,
            timeout: Duration::from_secs(10),
            retry: RetrySchedule::default(),
        }
    }

    /// Checks the settings against each other and the inbox's, and returns the parsed URL.
    pub fn validate(&self, inbox: &InboxSettings) -> Result<Url, AdapterError> {
        let invalid = |why: String| Err(AdapterError::Config(format!("webhook {why}")));
        let url = Url::parse(&self.url).or_else(|e| invalid(format!("url: not a URL ({e})")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return invalid(format!(
                "url: scheme {:?}; use https (or http)",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return invalid("url: names no host".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return invalid(
                "url: holds a user or password; leave them out (the signature authenticates the adapter, and URLs are logged)".to_owned(),
            );
        }
        if self.ca_pem.is_some() && url.scheme() != "https" {
            return invalid("ca: given for an http URL; it only applies to https".to_owned());
        }
        let shortest_step = inbox.backoff.iter().min().copied().unwrap_or_default();
        if self.timeout < MIN_TIMEOUT || self.timeout >= shortest_step {
            return invalid(format!(
                "timeout: {:?}; it must be at least {MIN_TIMEOUT:?} and shorter than the inbox's shortest backoff step ({shortest_step:?}), or an item would be sent again while its POST still runs",
                self.timeout
            ));
        }
        if self.retry.first < onedoor_bus::inbox::settings::MIN_BACKOFF_STEP
            || self.retry.max < self.retry.first
        {
            return invalid(format!(
                "retry: first {:?}, max {:?}; first must be at least {:?} and max at least first",
                self.retry.first,
                self.retry.max,
                onedoor_bus::inbox::settings::MIN_BACKOFF_STEP
            ));
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::WebhookSecret;

    fn config(url: &str) -> WebhookConfig {
        let secrets = WebhookSecrets::new(vec![WebhookSecret::generate()]).expect("one");
        WebhookConfig::new(url, secrets)
    }

    #[test]
    fn the_defaults_fit_the_default_inbox() {
        let url = config("https://moic.example.la/onedoor/inbox")
            .validate(&InboxSettings::default())
            .expect("valid");
        assert_eq!(url.host_str(), Some("moic.example.la"));
    }

    #[test]
    fn bad_settings_are_refused_naming_the_key() {
        let inbox = InboxSettings::default();
        let mut slow = config("https://moic.example.la/");
        slow.timeout = Duration::from_secs(30);
        let mut ca_on_http = config("http://10.0.0.1:8080/hook");
        ca_on_http.ca_pem = Some(String::new());
        let mut bad_retry = config("https://moic.example.la/");
        bad_retry.retry.max = Duration::from_millis(1);
        for (config, key) in [
            (config("not a url"), "webhook url: not a URL"),
            (
                config("ftp://moic.example.la/"),
                "webhook url: scheme \"ftp\"",
            ),
            (
                config("https://clerk:pw@moic.example.la/"),
                "webhook url: holds a user",
            ),
            (slow, "webhook timeout: 30s"),
            (ca_on_http, "webhook ca:"),
            (bad_retry, "webhook retry:"),
        ] {
            let err = config.validate(&inbox).expect_err(key).to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}
