//! `onedoor audit verify`: checks every message of a case as every reader does (decodes,
//! subject matches payload, signature, hash chain, case rules) and names each one that fails,
//! going on to the end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use onedoor_bus::{CaseLog, RawMessage, subject_case_id, verify_history};
use onedoor_case::{CaseId, Registry};

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

/// What the audit found, counted as it goes.
#[derive(Default)]
struct Tally {
    cases: usize,
    messages: usize,
    bad: usize,
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
    let mut tally = Tally::default();
    match &args.case_id {
        Some(text) => {
            let case_id = CaseId::parse(text)?;
            let log = CaseLog::open(jetstream.clone())
                .await?
                .with_registry(registry.clone());
            let verified = log.load_verified(case_id).await?;
            anyhow::ensure!(
                !verified.accepted.is_empty() || !verified.quarantined.is_empty(),
                "case {case_id} does not exist"
            );
            tally.cases = 1;
            tally.messages = verified.accepted.len() + verified.quarantined.len();
            for bad in &verified.quarantined {
                say(&format!("BAD case {case_id}: {bad}"));
                tally.bad += 1;
            }
        }
        None => {
            let cases = read_all(&jetstream, &mut tally).await?;
            check_cases(cases, &registry, &mut tally);
        }
    }
    if tally.bad > 0 {
        say(&format!(
            "{} bad message(s) in {} case(s) ({} messages read)",
            tally.bad, tally.cases, tally.messages
        ));
        return Ok(ExitCode::FAILURE);
    }
    say(&format!(
        "ok: {} case(s), {} event(s): every signature, hash chain and step verified",
        tally.cases, tally.messages
    ));
    Ok(ExitCode::SUCCESS)
}

fn check_cases(cases: BTreeMap<CaseId, Vec<RawMessage>>, registry: &Registry, tally: &mut Tally) {
    tally.cases = cases.len();
    for (case_id, messages) in cases {
        let verified = verify_history(case_id, messages, Some(registry));
        for bad in &verified.quarantined {
            say(&format!("BAD case {case_id}: {bad}"));
            tally.bad += 1;
        }
    }
}

/// Every message in the stream, grouped by the case its subject names. Pages through the
/// stream with direct gets (next message on `onedoor.v1.case.>` from a sequence), which the
/// read-only auditor identity may do; it may not create consumers. A message whose subject
/// names no case is reported here and counted bad.
async fn read_all(
    jetstream: &async_nats::jetstream::Context,
    tally: &mut Tally,
) -> anyhow::Result<BTreeMap<CaseId, Vec<RawMessage>>> {
    let stream = jetstream.get_stream(onedoor_bus::STREAM_NAME).await?;
    let mut cases: BTreeMap<CaseId, Vec<RawMessage>> = BTreeMap::new();
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
        tally.messages += 1;
        let subject = message.subject.to_string();
        let Some(case_id) = subject_case_id(&subject) else {
            say(&format!(
                "BAD stream sequence {} ({subject}): the subject names no case",
                message.sequence
            ));
            tally.bad += 1;
            continue;
        };
        cases.entry(case_id).or_default().push(RawMessage {
            sequence: message.sequence,
            subject,
            payload: message.payload,
        });
    }
    Ok(cases)
}
