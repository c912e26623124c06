//! `onedoor conformance --agency X --target URL`: drives a ministry's own webhook receiver
//! the way its adapter will (signed deliveries, bad signatures, stale timestamps, duplicates,
//! out-of-order items, fields at the bus's limits, the adapter's timeout) and prints a
//! pass/fail table with how to fix each failure. Exit 0 only when every check passes.
//! The checks and the receiver's side of the contract: `docs/integration.md`, "Conformance".
//!
//! # Layout
//! - `items`: the inbox items sent, addressed to the agency under test.
//! - `webhook`: the checks against a webhook receiver.
//! - `report`: one [`report::Check`] per row, and the table.

mod items;
mod report;
mod webhook;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use onedoor_adapter::webhook::{Receiver, WebhookConfig, WebhookSecret, WebhookSecrets};
use onedoor_bus::InboxSettings;
use onedoor_case::AgencyCode;

#[derive(Debug, clap::Args)]
pub struct ConformanceArgs {
    /// The agency whose integration is checked: the items are addressed to it.
    #[arg(long)]
    pub agency: String,
    /// The agency's webhook receiver: the URL its adapter's --webhook-url will be.
    #[arg(long)]
    pub target: String,
    /// A signing secret (`whsec_…`) the receiver holds. The environment variable or
    /// --webhook-secrets keep it out of the process list.
    #[arg(
        long,
        env = "ONEDOOR_WEBHOOK_SECRET",
        hide_env_values = true,
        conflicts_with = "webhook_secrets"
    )]
    pub webhook_secret: Option<String>,
    /// File of signing secrets as the adapter reads it (`whsec_…`, one a line, newest first).
    #[arg(long, env = "ONEDOOR_WEBHOOK_SECRETS")]
    pub webhook_secrets: Option<PathBuf>,
    /// CA (PEM) to trust for an https target instead of the system's roots.
    #[arg(long, env = "ONEDOOR_WEBHOOK_CA")]
    pub webhook_ca: Option<PathBuf>,
    /// Seconds one POST may take, as the adapter's --webhook-timeout (default 10).
    #[arg(long, default_value_t = 10)]
    pub webhook_timeout: u64,
    /// Print the checks as one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ConformanceArgs) -> anyhow::Result<ExitCode> {
    let agency = AgencyCode::parse(&args.agency).context("--agency")?;
    let (config, secrets) = config(&args)?;
    let url = config.validate(&InboxSettings::default())?;
    let receiver = Receiver::new(&config, url)?;
    let shown = receiver.shown_url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let checks = runtime.block_on(async {
        webhook::Webhook::new(receiver, secrets, agency.as_str())?
            .run()
            .await
    })?;
    let passed = checks.iter().all(|c| c.passed);
    if args.json {
        let report = serde_json::json!({
            "agency": agency.as_str(),
            "target": shown,
            "passed": passed,
            "checks": checks,
        });
        println!("{report}");
    } else {
        println!(
            "webhook {shown} as {agency}, timeout {}s",
            args.webhook_timeout
        );
        print!("{}", report::table(&checks));
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The adapter's webhook settings from the flags, and the secrets they sign with.
fn config(args: &ConformanceArgs) -> anyhow::Result<(WebhookConfig, WebhookSecrets)> {
    let secrets = match (&args.webhook_secret, &args.webhook_secrets) {
        (Some(text), None) => WebhookSecrets::new(vec![
            WebhookSecret::parse(text).context("--webhook-secret")?,
        ])?,
        (None, Some(path)) => WebhookSecrets::load(path)?,
        _ => anyhow::bail!(
            "give the receiver's signing secret: --webhook-secrets FILE or ONEDOOR_WEBHOOK_SECRET"
        ),
    };
    let config = super::adapter::webhook_config(
        &args.target,
        secrets.clone(),
        args.webhook_ca.as_deref(),
        Some(args.webhook_timeout),
    )?;
    Ok((config, secrets))
}
