//! `onedoor reader`: the case reader, the one service through which agencies read cases, and
//! only the cases they are a party to (`docs/jetstream.md` §15). Stateless: run two or more
//! anywhere that reaches NATS; they share the requests (a queue group).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use onedoor_bus::CaseLog;
use onedoor_bus::read::{CaseReader, READER_CACHED_CASES};
use onedoor_bus::registry_feed::{self, LiveRegistry};
use onedoor_natsauth::Identity;

use super::common;

#[derive(Debug, clap::Args)]
pub struct ReaderArgs {
    /// NATS with the ONEDOOR stream (a URL is required), as the `reader` NATS identity.
    #[command(flatten)]
    pub nats: super::nats::NatsArgs,
    /// Registry file with the agencies' public keys (every message is verified before it
    /// decides who is a party); by default the shipped 2025 registry.
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Cases whose newest messages are kept in memory.
    #[arg(long, env = "ONEDOOR_READER_CACHED_CASES", default_value_t = READER_CACHED_CASES)]
    pub cached_cases: usize,
}

pub fn run(args: ReaderArgs) -> anyhow::Result<ExitCode> {
    crate::file_modes::owner_only_umask();
    crate::file_modes::check_secrets(&[
        ("NATS seed", args.nats.nats_seed.as_deref()),
        ("NATS credentials", args.nats.nats_creds.as_deref()),
        ("NATS TLS key", args.nats.nats_tls_key.as_deref()),
    ])?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ReaderArgs) -> anyhow::Result<ExitCode> {
    let (registry, _) = common::load_registry(args.registry.as_deref())?;
    let registry = LiveRegistry::new(registry);
    common::reload_on_sighup(args.registry.as_deref(), &registry)?;
    let settings = args.nats.settings()?;
    let client = settings
        .connect(&Identity::Reader, |options| options.name("onedoor-reader"))
        .await?;
    let reader = start(client, registry, args.cached_cases).await?;
    tokio::select! {
        served = reader => {
            served.context("the case reader failed")?;
            anyhow::bail!("the case reader stopped: its NATS connection closed");
        }
        signal = common::shutdown_signal() => signal?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts a case reader on `client` (connected as [`Identity::Reader`]), answering once this
/// returns, until the returned task is aborted or the connection closes for good. It follows
/// the operator's published registry and moves `registry` to each later one.
pub async fn start(
    client: async_nats::Client,
    registry: impl Into<LiveRegistry>,
    cached_cases: usize,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let registry = registry.into();
    let js = async_nats::jetstream::new(client.clone());
    let log = CaseLog::open(js.clone())
        .await
        .context("the case reader binding to the ONEDOOR stream")?;
    let reader = Arc::new(CaseReader::new(log, Some(registry.clone()), cached_cases));
    let answering = reader.listen(client).await?;
    let follower = registry_feed::follow(js, registry, "reader");
    Ok(tokio::spawn(async move {
        // Aborting this task drops both: the answers stop with it.
        let _follower = follower;
        let mut answering = AbortOnDrop(answering);
        let _ = (&mut answering.0).await;
    }))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
