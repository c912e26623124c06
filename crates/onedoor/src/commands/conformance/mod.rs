//! `onedoor conformance --agency X --target URL`: drives a ministry's own webhook receiver
//! the way its adapter will (signed deliveries, bad signatures, stale timestamps, duplicates,
//! out-of-order items, fields at the bus's limits, the adapter's timeout) and prints a
//! pass/fail table with how to fix each failure. Exit 0 only when every check passes.
//! `--worker-cmd CMD` instead runs a pull worker against a bus of its own (`pull`).
//! The checks and the worker's side of the contract: `docs/integration.md`, "Conformance".
//!
//! # Layout
//! - `items`: the inbox items sent, addressed to the agency under test.
//! - `webhook`: the checks against a webhook receiver.
//! - `pull`: the checks against a pull worker.
//! - `report`: one [`report::Check`] per row, and the table.

mod items;
mod pull;
mod report;
mod webhook;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use onedoor_adapter::webhook::{Receiver, WebhookConfig, WebhookSecret, WebhookSecrets};
use onedoor_bus::InboxSettings;
use onedoor_case::AgencyCode;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("worker").required(true).args(["target", "worker_cmd"])))]
pub struct ConformanceArgs {
    /// The agency whose integration is checked: the items are addressed to it.
    #[arg(long)]
    pub agency: String,
    /// The agency's webhook receiver: the URL its adapter's --webhook-url will be.
    #[arg(long)]
    pub target: Option<String>,
    /// A pull worker to run against a bus of conformance's own: a shell command in which
    /// {adapter} (also {http}), {token} and {agency} are replaced (and given as
    /// ONEDOOR_ADAPTER, ONEDOOR_HTTP, ONEDOOR_TOKEN, ONEDOOR_AGENCY).
    #[arg(long, value_name = "CMD")]
    pub worker_cmd: Option<String>,
    /// Pull mode: the ack wait of the agency's inbox, in seconds (30 in production; short
    /// here so redeliveries come within the run).
    #[arg(long, default_value_t = 2, requires = "worker_cmd")]
    pub ack_wait: u64,
    /// Pull mode: seconds the worker may take to acknowledge one item.
    #[arg(long, default_value_t = 10, requires = "worker_cmd")]
    pub deadline: u64,
    /// Pull mode: the registry the bus runs with; by default the shipped one.
    #[arg(long, requires = "worker_cmd")]
    pub registry: Option<PathBuf>,
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
    if let Some(command) = &args.worker_cmd {
        return pull::run(
            &agency,
            &pull::PullSettings {
                command: command.clone(),
                registry: args.registry.clone(),
                ack_wait: Duration::from_secs(args.ack_wait),
                deadline: Duration::from_secs(args.deadline),
                json: args.json,
            },
        );
    }
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
    let header = format!(
        "webhook {shown} as {agency}, timeout {}s",
        args.webhook_timeout
    );
    Ok(report::print(
        &checks,
        args.json,
        &header,
        [("agency", agency.as_str()), ("target", shown.as_str())],
    ))
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
    let target = args.target.as_deref().context("--target")?;
    let config = super::adapter::webhook_config(
        target,
        secrets.clone(),
        args.webhook_ca.as_deref(),
        Some(args.webhook_timeout),
    )?;
    Ok((config, secrets))
}
