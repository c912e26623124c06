//! `registry apply NEW --execute`, after the transfers: the ended agencies' inboxes are drained
//! and deleted, the NATS configuration is written from NEW without their users, and what cannot
//! be done from here (reloading the servers, revoking tokens and certificates in the registry
//! file) is printed as steps.
//!
//! An inbox is deleted only once its consumer has nothing undelivered and nothing
//! unacknowledged: the old agency's adapter, still running, reads it empty. One left with
//! messages is kept, and so is the agency's NATS user, because deleting either would leave those
//! messages unread. Running `--execute` again picks up where this stopped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::Stream;
use onedoor_case::{AgencyCode, RegistryDiff};
use onedoor_natsauth::CredentialSet;

/// How `--execute` drains and revokes.
#[derive(Debug, Clone, clap::Args)]
pub struct DrainArgs {
    /// Seconds to wait for each ended agency's inbox to be read and acknowledged before
    /// leaving it (and the agency's NATS user) in place, for --execute.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub drain_timeout: u64,
    /// Write DIR/nats-auth.conf from NEW without users for the agencies it ends (seeds and
    /// public keys in DIR/credentials, as `onedoor nats-config --out DIR` keeps them), for
    /// --execute. Reload the servers with it from the effective date.
    #[arg(long, value_name = "DIR")]
    pub nats_auth_out: Option<PathBuf>,
}

/// What became of one ended agency's inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Read empty and deleted now.
    Deleted,
    /// No consumer: deleted by an earlier run, or never made.
    Absent,
    /// Still holds messages at the deadline: kept.
    Kept {
        undelivered: u64,
        unacknowledged: u64,
    },
}

/// How often the inbox is looked at while it drains: the old adapter acknowledges within its
/// ack wait, so this only decides how soon after the last ack the deletion follows.
const POLL: Duration = Duration::from_millis(250);

/// Drains and deletes every ended agency's inbox, writes the configuration without the users
/// of those that drained, and prints the remaining steps. Returns how many inboxes were kept.
pub async fn drain_and_revoke(
    js: &async_nats::jetstream::Context,
    diff: &RegistryDiff<'_>,
    args: &DrainArgs,
) -> anyhow::Result<usize> {
    let stream = js
        .get_stream(onedoor_bus::STREAM_NAME)
        .await
        .context("reading the ONEDOOR stream as the operator")?;
    let timeout = Duration::from_secs(args.drain_timeout);
    let mut revoked = Vec::new();
    let mut kept = 0;
    for change in diff.endings() {
        let code = change.code();
        match drain(&stream, code, timeout).await? {
            Drained::Deleted => println!("inbox deleted: inbox-{code} (read empty)"),
            Drained::Absent => println!("inbox gone: inbox-{code} (deleted earlier or never made)"),
            Drained::Kept {
                undelivered,
                unacknowledged,
            } => {
                kept += 1;
                println!(
                    "inbox kept: inbox-{code} still has {undelivered} undelivered and {unacknowledged} unacknowledged after {}s; its adapter must read them, then run --execute again (its NATS user stays until then)",
                    args.drain_timeout
                );
                continue;
            }
        }
        revoked.push(code.clone());
    }
    if let Some(dir) = &args.nats_auth_out {
        write_revoked_config(dir, diff, &revoked)?;
    }
    print_manual_steps(diff, &revoked, args.nats_auth_out.as_deref());
    Ok(kept)
}

/// Waits until `code`'s inbox has nothing undelivered or unacknowledged, then deletes it.
async fn drain(stream: &Stream, code: &AgencyCode, timeout: Duration) -> anyhow::Result<Drained> {
    let name = format!("inbox-{code}");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let info = match stream.consumer_info(&name).await {
            Ok(info) => info,
            Err(err) if err.kind() == ConsumerInfoErrorKind::NotFound => {
                return Ok(Drained::Absent);
            }
            Err(err) => {
                return Err(anyhow::Error::new(err).context(format!("reading consumer {name}")));
            }
        };
        let unacknowledged = u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX);
        if info.num_pending == 0 && unacknowledged == 0 {
            stream
                .delete_consumer(&name)
                .await
                .with_context(|| format!("deleting consumer {name}"))?;
            return Ok(Drained::Deleted);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Drained::Kept {
                undelivered: info.num_pending,
                unacknowledged,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `DIR/nats-auth.conf` from NEW, without users for `revoked`.
fn write_revoked_config(
    dir: &Path,
    diff: &RegistryDiff<'_>,
    revoked: &[AgencyCode],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let credentials = CredentialSet::load_or_generate(&dir.join("credentials"), diff.new)?;
    let config = onedoor_natsauth::render_config_revoking(diff.new, &credentials, revoked)?;
    let path = dir.join("nats-auth.conf");
    std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
    let names: Vec<&str> = revoked.iter().map(AgencyCode::as_str).collect();
    println!(
        "nats config written: {} from {} with no user for {}",
        path.display(),
        diff.new.version,
        if names.is_empty() {
            "any agency (none drained)".to_owned()
        } else {
            names.join(", ")
        }
    );
    Ok(())
}

/// What only the operator can do: reload the servers, and edit the registry file every
/// adapter and the tracker load (tokens revoked, keys closed).
fn print_manual_steps(diff: &RegistryDiff<'_>, revoked: &[AgencyCode], config: Option<&Path>) {
    let effective = diff.new.effective_from;
    if revoked.is_empty() {
        return;
    }
    let names: Vec<&str> = revoked.iter().map(AgencyCode::as_str).collect();
    let names = names.join(", ");
    match config {
        Some(dir) => println!(
            "to do: copy {} to every NATS node and reload each (systemctl reload nats-server@a, …: SIGHUP) on or after {effective}; {names} are refused from then",
            dir.join("nats-auth.conf").display()
        ),
        None => println!(
            "to do: write the NATS configuration without {names} (run again with --nats-auth-out DIR), copy it to every node and reload each on or after {effective}"
        ),
    }
    println!(
        "to do: in NEW, set revoked = true on every [[agency.token]] of {names}, and valid_until = the day before {effective} on their keys (the plan above lists them); keep the keys listed: they verify the history signed before {effective}"
    );
    println!(
        "to do: stop the adapters of {names}, and remove their TLS client certificates from what the tracker and web page trust; roll NEW out and restart the readers on it"
    );
}
