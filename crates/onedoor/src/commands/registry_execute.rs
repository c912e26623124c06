//! `onedoor registry apply NEW --execute`: what the dry run planned for open tasks, done. Each
//! open task of an agency the new registry merges or renames away is moved to its successor by
//! a `task_transferred` event signed with an operator key (`docs/agency-lifecycle.md`). The
//! event ids are fixed by case, holder and registry version, so running it again writes
//! nothing twice.
//!
//! Then the old agencies' inboxes are drained and their NATS users revoked
//! (`registry_drain`), once every transfer is written.

use std::path::PathBuf;

use anyhow::Context as _;
use onedoor_bus::transfer::transfer_request;
use onedoor_bus::{CaseLog, Signer};
use onedoor_case::{CaseId, Registry, RegistryDiff};

use super::registry_drain::{DrainArgs, drain_and_revoke};
use super::registry_plan::Live;

/// The operator's signing key, as `--execute` needs it.
#[derive(Debug, clap::Args)]
pub struct OperatorKeyArgs {
    /// Do it: write the transfers the plan lists (the default is a dry run).
    #[arg(long)]
    pub execute: bool,
    /// The operator's Ed25519 signing key file (base64 of the 32-byte seed), for --execute.
    #[arg(long, requires = "execute")]
    pub operator_key: Option<PathBuf>,
    /// The id NEW lists that key under (`[[operator.key]]`), for --execute.
    #[arg(long, requires = "execute")]
    pub operator_key_id: Option<String>,
    #[command(flatten)]
    pub drain: DrainArgs,
}

/// The operator key, checked against the one the new registry lists: a transfer signed with a
/// key it does not list would be quarantined by every reader.
pub fn operator_signer(args: &OperatorKeyArgs, new: &Registry) -> anyhow::Result<Signer> {
    let (Some(file), Some(id)) = (&args.operator_key, &args.operator_key_id) else {
        anyhow::bail!("--execute needs --operator-key FILE and --operator-key-id ID");
    };
    let signer = Signer::load(id.clone(), file)?;
    let listed = new.operator_key(id).with_context(|| {
        format!("the new registry lists no operator key {id:?} ([[operator.key]])")
    })?;
    if listed.public_key != signer.public_key() {
        anyhow::bail!(
            "{} is not the key the new registry lists as {id:?}",
            file.display()
        );
    }
    Ok(signer)
}

/// Writes the transfers, then (when all were written) drains and revokes. Returns how many
/// steps failed or were left undone (each printed).
pub async fn execute(
    js: async_nats::jetstream::Context,
    signer: Signer,
    diff: &RegistryDiff<'_>,
    live: &Live,
    drain: &DrainArgs,
) -> anyhow::Result<usize> {
    let failed = transfer_open_tasks(js.clone(), signer, diff, live).await?;
    if failed > 0 {
        println!(
            "not drained: the old agencies' inboxes and NATS users stay until every transfer is written"
        );
        return Ok(failed);
    }
    drain_and_revoke(&js, diff, drain).await
}

/// Writes one transfer per open task `live` lists for an agency that ends with a successor.
/// Returns how many failed (each printed).
async fn transfer_open_tasks(
    js: async_nats::jetstream::Context,
    signer: Signer,
    diff: &RegistryDiff<'_>,
    live: &Live,
) -> anyhow::Result<usize> {
    let log = CaseLog::open(js).await?.with_signer(signer);
    let new = diff.new;
    let mut failed = 0;
    for change in diff.endings() {
        let (Some(successor), Some(tasks)) = (change.successor(), live.tasks.get(change.code()))
        else {
            continue;
        };
        for task in tasks {
            let case_id = CaseId::parse(&task.case_id)
                .with_context(|| format!("the tracker listed case {:?}", task.case_id))?;
            let now = time::OffsetDateTime::now_utc();
            let request = transfer_request(case_id, change.code(), new, now);
            let what = format!(
                "case {case_id} held by {} to {}",
                change.code(),
                successor.code
            );
            match log.execute(&request, new).await {
                Ok(written) if written.duplicate => {
                    println!("transferred earlier: {what} (event {})", request.event_id);
                }
                Ok(written) => println!(
                    "transferred: {what} (event {}, stream sequence {})",
                    request.event_id, written.sequence
                ),
                Err(err) => {
                    failed += 1;
                    println!("transfer failed: {what}: {err}");
                }
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "error: {failed} transfer(s) failed; if NATS refused them, the servers still run the configuration of the old registry: regenerate it from the new one (onedoor nats-config) and reload them, then run this again"
        );
    }
    Ok(failed)
}
