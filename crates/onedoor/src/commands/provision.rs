//! `onedoor provision`: as the operator, create or update what adapters and the tracker need
//! on NATS (the stream, every inbox consumer, the tracker's consumer, the stuck bucket), or
//! with `--check` only report how the server differs. The comparison and the changes are in
//! `onedoor_natsauth::provision`, which `onedoor up` runs too.
//!
//! Exit codes: 0 done (or, with `--check`, nothing differs), 1 `--check` found drift, 2 an
//! error or a refused change, so a script can tell drift from a broken connection.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use onedoor_bus::drift::{Drift, FieldDrift, Fix, Start};
use onedoor_bus::{InboxSettings, StreamSettings};
use onedoor_case::Registry;
use onedoor_natsauth::{Desired, Identity, Survey};
use serde::{Deserialize, Serialize};

use super::common;
use super::nats::NatsArgs;
use super::settings::{self, Resolved};

/// Settings may come from `--config FILE` (keys are these flags' names with `_`), from the
/// environment, or from the flags; a flag wins over a variable, which wins over the file.
#[derive(Debug, Default, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct ProvisionArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub file: settings::FileFlags,
    /// NATS as the operator identity (its seed is `credentials/operator.nk` under
    /// `onedoor nats-config --out DIR`).
    #[command(flatten)]
    #[serde(flatten)]
    pub nats: NatsArgs,
    /// Registry file: every agency listed gets its inbox consumer; by default the shipped
    /// 2025 registry.
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Copies of every event and stuck record: 1 on a single node, 3 on the production
    /// cluster (survives one node down); default 1.
    #[arg(long, env = "ONEDOOR_REPLICAS", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub replicas: Option<u8>,
    /// Change nothing: print each object that is missing or differs, and exit 1 if any does.
    #[arg(long)]
    #[serde(skip)]
    pub check: bool,
    /// Accept a change that loses data or fault tolerance: fewer replicas of a stream or
    /// bucket that holds messages.
    #[arg(long, conflicts_with = "check")]
    #[serde(skip)]
    pub force: bool,
}

/// Exit code of `--check` when the server differs from the wanted settings.
const DRIFT: u8 = 1;
/// Exit code of an error or a refused change.
const FAILED: u8 = 2;

pub fn run(args: ProvisionArgs) -> anyhow::Result<ExitCode> {
    match resolve_and_run(args) {
        Ok(code) => Ok(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            Ok(ExitCode::from(FAILED))
        }
    }
}

fn resolve_and_run(args: ProvisionArgs) -> anyhow::Result<ExitCode> {
    let (flags, check, force) = (args.file.clone(), args.check, args.force);
    let Resolved::Run(args) = settings::resolve(&flags, args, |a| a.nats.validate(true), &[])?
    else {
        return Ok(ExitCode::SUCCESS);
    };
    let (registry, _) = common::load_registry(args.registry.as_deref())?;
    let stream = StreamSettings {
        replicas: usize::from(args.replicas.unwrap_or(1)),
        ..StreamSettings::default()
    };
    let desired = desired(&registry, stream)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let client = args
            .nats
            .settings()?
            .connect(&Identity::Operator, |options| {
                options.name("onedoor-provision")
            })
            .await?;
        let js = async_nats::jetstream::new(client);
        let survey = onedoor_natsauth::survey(&js, &desired).await?;
        if check {
            return Ok(report_drift(&survey));
        }
        survey.check_allowed(force)?;
        for (object, change) in onedoor_natsauth::apply(&js, &desired, survey).await? {
            println!("{object}: {change}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Everything onedoor needs on NATS for `registry`: the stream with `stream`'s settings,
/// every agency's inbox with the adapters' settings, the tracker's consumer (with the
/// tracker's own configuration; its rebuild moves its start), and the stuck bucket.
pub fn desired(registry: &Registry, stream: StreamSettings) -> anyhow::Result<Desired> {
    let tracker = onedoor_tracker::projection::consumer_config(
        onedoor_bus::subjects::TRACKER_CONSUMER,
        onedoor_tracker::DEFAULT_ACK_WAIT,
    );
    Ok(Desired::new(registry, stream, &InboxSettings::default())?
        .with_consumer(tracker, Start::SetByOwner))
}

/// One line per object on stdout, a summary on stderr; the exit code says whether anything
/// differs.
fn report_drift(survey: &Survey) -> ExitCode {
    let mut drifted = 0;
    for surveyed in &survey.objects {
        let state = match &surveyed.drift {
            Drift::InSync => "in sync".to_owned(),
            Drift::Missing => "missing".to_owned(),
            Drift::Differs(fields) => format!("differs ({})", annotated(fields)),
        };
        if surveyed.drift != Drift::InSync {
            drifted += 1;
        }
        println!("{}: {state}", surveyed.object);
    }
    if drifted == 0 {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "drift: {drifted} of {} objects differ from the wanted settings; \
         `onedoor provision` without --check changes them",
        survey.objects.len()
    );
    ExitCode::from(DRIFT)
}

/// The fields, each marked when provisioning would refuse it or need `--force`.
fn annotated(fields: &[FieldDrift]) -> String {
    fields
        .iter()
        .map(|field| match &field.fix {
            Fix::InPlace => field.to_string(),
            Fix::LosesData { .. } => format!("{field} [needs --force]"),
            Fix::NotInPlace => format!("{field} [cannot change in place]"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}
