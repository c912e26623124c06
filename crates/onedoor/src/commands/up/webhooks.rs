//! `up --webhooks FILE`: agencies whose adapter pushes its inbox to a URL (docs/webhooks.md)
//! instead of waiting to be pulled, one TOML table per agency code:
//!
//! ```toml
//! [MOIC]
//! url = "http://127.0.0.1:8080/onedoor"
//! secrets = "moic.secrets"   # owner-only file of whsec_… secrets, newest first
//! # ca = "receiver-ca.pem"   # for an https URL, instead of the system's roots
//! # timeout = 10            # seconds per POST
//! # max_deliver = 8         # attempts before the item is stuck
//! # retry_first = 30        # seconds: the first pause after a failed POST
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use onedoor_adapter::webhook::{RetrySchedule, WebhookConfig, WebhookSecrets};
use onedoor_bus::InboxSettings;
use onedoor_case::{AgencyCode, Registry};
use onedoor_natsauth::Desired;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyWebhook {
    url: String,
    secrets: PathBuf,
    ca: Option<PathBuf>,
    timeout: Option<u64>,
    max_deliver: Option<u32>,
    retry_first: Option<u64>,
}

/// The agencies' webhooks by agency code; every code must be the registry's.
pub type Webhooks = BTreeMap<String, AgencyWebhook>;

pub fn load(path: Option<&Path>, registry: &Registry) -> anyhow::Result<Webhooks> {
    let Some(path) = path else {
        return Ok(Webhooks::new());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let webhooks: Webhooks =
        toml::from_str(&text).with_context(|| format!("webhooks file {}", path.display()))?;
    for (code, webhook) in &webhooks {
        let known = AgencyCode::parse(code)
            .ok()
            .is_some_and(|c| registry.agencies.contains_key(&c));
        anyhow::ensure!(
            known,
            "webhooks file {}: {code} is not an agency of the registry",
            path.display()
        );
        webhook
            .inbox()
            .validate()
            .with_context(|| format!("webhooks file {}: [{code}]", path.display()))?;
    }
    Ok(webhooks)
}

impl AgencyWebhook {
    /// The agency's inbox settings: the defaults, with this many attempts.
    pub fn inbox(&self) -> InboxSettings {
        let mut inbox = InboxSettings::default();
        if let Some(max) = self.max_deliver {
            inbox.max_deliver = max;
            // The server wants fewer back-off steps than deliveries.
            inbox.backoff.truncate(max.saturating_sub(1) as usize);
        }
        inbox
    }

    pub fn config(&self) -> anyhow::Result<WebhookConfig> {
        let mut config = crate::commands::adapter::webhook_config(
            &self.url,
            WebhookSecrets::load(&self.secrets)?,
            self.ca.as_deref(),
            self.timeout,
        )?;
        if let Some(seconds) = self.retry_first {
            config.retry = RetrySchedule {
                first: Duration::from_secs(seconds),
                ..RetrySchedule::default()
            };
        }
        Ok(config)
    }
}

/// Gives each webhook agency's inbox consumer its own number of attempts.
pub fn apply_to(desired: &mut Desired, webhooks: &Webhooks) -> anyhow::Result<()> {
    for (code, webhook) in webhooks {
        let config =
            onedoor_bus::inbox::inbox_consumer_config(&AgencyCode::parse(code)?, &webhook.inbox())?;
        for wanted in &mut desired.consumers {
            if wanted.config.durable_name == config.durable_name {
                wanted.config = config.clone();
            }
        }
    }
    Ok(())
}
