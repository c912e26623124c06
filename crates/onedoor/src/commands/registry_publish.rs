//! `onedoor registry apply NEW --execute`, before any transfer: NEW goes to every running
//! adapter, tracker and case reader through the registry feed (`onedoor_bus::registry_feed`),
//! signed with the operator key, and the command waits (up to `--ack-wait`) for their answers.
//! A process still on the old registry quarantines the transfers that follow, so each refusal
//! is named before they are written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use onedoor_bus::Signer;
use onedoor_bus::registry_feed::{ACK_SUBJECT_PREFIX, Ack, Publication, REGISTRY_BUCKET, publish};
use onedoor_case::Registry;

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// Key file published with NEW (`[[key]]`, `[[operator_key]]`, `[[token]]`: public keys
    /// the processes load beside the registry); by default, on a bus `onedoor up` runs, its
    /// development keys (DATA_DIR/keys/public-keys.toml).
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Seconds --execute waits for the running processes to answer the published registry.
    #[arg(long, default_value_t = 10)]
    pub ack_wait: u64,
}

/// What the processes answered.
#[derive(Debug, Default)]
pub struct Answers {
    pub moved: usize,
    pub running: usize,
    pub refused: Vec<String>,
}

/// Publishes `new_file` (with its key file) signed by `signer`, prints what each process
/// answered, and returns the answers. `expected` names the processes waited for.
pub async fn publish_registry(
    client: &async_nats::Client,
    args: &PublishArgs,
    files: (&Path, Option<&Path>),
    signer: &Signer,
    expected: BTreeSet<String>,
) -> anyhow::Result<Answers> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let registry_toml = read(files.0)?;
    let keys_toml = files.1.map(read).transpose()?.unwrap_or_default();
    let publication = Publication::signed(&registry_toml, &keys_toml, signer);
    let published: Registry = publication
        .registry()
        .context("the registry with its key file, as the processes would load it")?;
    let mut acks = client
        .subscribe(format!("{ACK_SUBJECT_PREFIX}.>"))
        .await
        .context("listening for the processes' answers")?;
    client.flush().await?;
    let revision = publish(&async_nats::jetstream::new(client.clone()), &publication).await?;
    println!(
        "published: registry {} in bucket {REGISTRY_BUCKET} (revision {revision}), signed with operator key {}{}",
        published.version,
        signer.key_id(),
        files
            .1
            .map(|keys| format!(", with key file {}", keys.display()))
            .unwrap_or_default()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.ack_wait);
    let mut waiting = expected;
    let mut answers = Answers::default();
    while !waiting.is_empty() {
        let Ok(Some(message)) = tokio::time::timeout_at(deadline, acks.next()).await else {
            break;
        };
        let Ok(ack) = serde_json::from_slice::<Ack>(&message.payload) else {
            continue;
        };
        let who = message
            .subject
            .strip_prefix(ACK_SUBJECT_PREFIX)
            .unwrap_or_default()
            .trim_start_matches('.')
            .to_owned();
        if ack.revision != revision {
            continue;
        }
        waiting.remove(&who);
        tally(&mut answers, &who, &ack);
    }
    summarise(&answers, &waiting);
    Ok(answers)
}

fn tally(answers: &mut Answers, who: &str, ack: &Ack) {
    println!("answered: {who}: {} (runs {})", ack.outcome, ack.running);
    match ack.outcome.as_str() {
        "moved" => answers.moved += 1,
        "running" => answers.running += 1,
        _ => answers.refused.push(who.to_owned()),
    }
}

fn summarise(answers: &Answers, waiting: &BTreeSet<String>) {
    let silent = match waiting.is_empty() {
        true => String::new(),
        false => format!(
            "; no answer from {} (not running, or not following yet: check its log)",
            waiting.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
    };
    println!(
        "registry answers: {} moved, {} already on it, {} refused{silent}",
        answers.moved,
        answers.running,
        answers.refused.len()
    );
}

/// The processes a bus on `registry` runs: an adapter per agency, the tracker, the case
/// reader.
pub fn expected_processes(registry: &Registry) -> BTreeSet<String> {
    registry
        .agencies
        .keys()
        .map(ToString::to_string)
        .chain(["tracker".to_owned(), "reader".to_owned()])
        .collect()
}

/// `--keys`, else the development key file of a bus `onedoor up` runs in `data_dir`.
pub fn key_file(args: &PublishArgs, data_dir: &Path, up_bus: bool) -> Option<PathBuf> {
    if let Some(keys) = &args.keys {
        return Some(keys.clone());
    }
    let dev = super::keys::public_keys_path(data_dir);
    (up_bus && dev.exists()).then_some(dev)
}
