//! `onedoor audit verify`: checks signatures and hash chains, case by case, and names the first
//! bad event.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use onedoor_bus::{CaseLog, StoredEvent, verify_case};
use onedoor_case::CaseId;

use super::common::say;
use super::{common, keys};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The case to verify; omit with --all.
    pub case_id: Option<String>,
    /// Verify every case in the stream.
    #[arg(long, conflicts_with = "case_id")]
    pub all: bool,
    /// Find the bus here (endpoints.json, development keys).
    #[arg(long, env = "ONEDOOR_DATA_DIR", default_value = ".onedoor")]
    pub data_dir: PathBuf,
    /// Registry file with the agencies' public keys; by default the built-in one, plus the
    /// development keys `onedoor up` wrote to the data dir.
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Public key file; by default DATA/keys/public-keys.toml when it exists.
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// NATS as the auditor identity; by default the URL and seed in endpoints.json.
    #[command(flatten)]
    pub nats: super::nats::NatsArgs,
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if args.case_id.is_none() && !args.all {
        anyhow::bail!("name a case id, or pass --all");
    }
    let keys = args
        .keys
        .clone()
        .or_else(|| Some(keys::public_keys_path(&args.data_dir)).filter(|p| p.exists()));
    let (registry, _) = common::load_registry_with_keys(args.registry.as_deref(), keys.as_deref())?;
    let client = super::nats::connect_auditor(&args.data_dir, &args.nats).await?;
    let jetstream = async_nats::jetstream::new(client);
    let log = CaseLog::open(jetstream.clone()).await?;

    let cases: BTreeMap<CaseId, Vec<StoredEvent>> = match &args.case_id {
        Some(text) => {
            let case_id = CaseId::parse(text)?;
            let events = log.load(case_id).await?;
            anyhow::ensure!(!events.is_empty(), "case {case_id} does not exist");
            BTreeMap::from([(case_id, events)])
        }
        None => read_all(&jetstream).await?,
    };
    let events: usize = cases.values().map(Vec::len).sum();
    let mut failures = 0;
    for events in cases.values() {
        if let Err(failure) = verify_case(events, &registry) {
            say(&format!("BAD {failure}"));
            failures += 1;
        }
    }
    if failures > 0 {
        say(&format!(
            "{failures} of {} case(s) failed verification ({events} events read)",
            cases.len()
        ));
        return Ok(ExitCode::FAILURE);
    }
    say(&format!(
        "ok: {} case(s), {events} event(s): every signature and hash chain verified",
        cases.len()
    ));
    Ok(ExitCode::SUCCESS)
}

/// Every case event in the stream, grouped by case. Pages through the stream with direct gets
/// (next message on `onedoor.v1.case.>` from a sequence), which the read-only auditor identity
/// may do; it may not create consumers.
async fn read_all(
    jetstream: &async_nats::jetstream::Context,
) -> anyhow::Result<BTreeMap<CaseId, Vec<StoredEvent>>> {
    let stream = jetstream.get_stream(onedoor_bus::STREAM_NAME).await?;
    let mut cases: BTreeMap<CaseId, Vec<StoredEvent>> = BTreeMap::new();
    let mut next = 1;
    loop {
        let message = match stream
            .direct_get_next_for_subject(onedoor_bus::subjects::STREAM_SUBJECTS, Some(next))
            .await
        {
            Ok(message) => message,
            Err(err)
                if matches!(
                    err.kind(),
                    async_nats::jetstream::stream::DirectGetErrorKind::NotFound
                ) =>
            {
                break;
            }
            Err(err) => return Err(anyhow::anyhow!("reading stream message {next}: {err}")),
        };
        next = message.sequence + 1;
        // An undecodable message cannot be grouped by case; it is itself an audit failure.
        let stored = onedoor_bus::case_log::decode_stored(message.sequence, message.payload)?;
        cases.entry(stored.event.case_id).or_default().push(stored);
    }
    Ok(cases)
}
