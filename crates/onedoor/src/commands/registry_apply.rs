//! `onedoor registry apply NEW`: the plan for moving a running bus to a new registry, as a dry
//! run unless `--execute` (then the transfers of open tasks follow the plan:
//! `registry_execute`). It reads what the bus holds now (open tasks from the tracker, inbox consumers from
//! NATS as the operator) and prints what would change; it refuses, exit 1, when an agency that
//! ends with no successor still holds open tasks, naming each one.
//!
//! Open tasks come from the tracker's `ListCases` filtered by holding agency: the tracker folds
//! every case with the same rules the adapters use and indexes open tasks by holder, while the
//! stream has no such index (finding them there means folding every case ever opened). The
//! tracker can lag the stream, so the plan also reads the tracker's consumer and warns by how
//! many events it is behind.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use onedoor_case::{AgencyCode, Registry, RegistryDiff};
use onedoor_natsauth::{CredentialSet, Identity};
use onedoor_proto::convert::from_timestamp;
use onedoor_proto::v1;

use super::case::TrackerAddress;
use super::nats::{Fallback, NatsArgs};
use super::registry_execute::{OperatorKeyArgs, execute, operator_signer};
use super::registry_plan::{InboxState, Live, OpenTask, plan};
use crate::data_dir::Endpoints;

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The registry to move to, e.g. deploy/registry/lao-2025.toml.
    pub new: PathBuf,
    /// The registry the bus runs on now; by default the one `onedoor up` names in
    /// DATA_DIR/endpoints.json.
    #[arg(long)]
    pub current: Option<PathBuf>,
    #[command(flatten)]
    pub tracker: TrackerAddress,
    /// NATS as the operator identity; by default the bus in DATA_DIR and the operator seed
    /// `onedoor up` made there.
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub operator: OperatorKeyArgs,
    #[command(flatten)]
    pub publish: super::registry_publish::PublishArgs,
}

/// How many cases to ask the tracker for at once (its maximum).
const PAGE_SIZE: u32 = 500;

pub fn run(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let new = match Registry::load(&args.new) {
        Ok(registry) => registry,
        Err(err) => return Ok(super::registry::refused(err)),
    };
    let current = match current_registry(&args)? {
        Ok(registry) => registry,
        Err(err) => return Ok(super::registry::refused(err)),
    };
    let diff = match RegistryDiff::between(&current, &new) {
        Ok(diff) => diff,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let signer = match args.operator.execute {
        true => Some(operator_signer(&args.operator, &new)?),
        false => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let live = runtime.block_on(gather(&args, &diff))?;
    let mut plan = plan(&diff, &live);
    if signer.is_some()
        && let Some(first) = plan.lines.first_mut()
    {
        *first = first.replace(
            "(dry run: nothing is changed)",
            "(--execute: tasks move now)",
        );
    }
    for line in &plan.lines {
        println!("{line}");
    }
    if plan.refusals.is_empty() {
        let Some(signer) = signer else {
            return Ok(ExitCode::SUCCESS);
        };
        let failed = runtime.block_on(async {
            let client = connect_operator(&args).await?;
            publish_first(&client, &args, &signer, &current).await?;
            let js = async_nats::jetstream::new(client);
            execute(js, signer, &diff, &live, &args.operator.drain).await
        })?;
        return Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    for line in &plan.refusals {
        println!("{line}");
    }
    eprintln!(
        "error: {} would orphan open tasks; nothing can be applied until every ending agency's tasks have a successor",
        args.new.display()
    );
    Ok(ExitCode::FAILURE)
}

/// Publishes NEW to the running processes (`registry_publish`) and says which refused it:
/// those keep quarantining the transfers until they run NEW (restarted on it). The transfers
/// are still written, being idempotent and the only way the tasks move.
async fn publish_first(
    client: &async_nats::Client,
    args: &ApplyArgs,
    signer: &onedoor_bus::Signer,
    current: &Registry,
) -> anyhow::Result<()> {
    use super::registry_publish::{expected_processes, key_file, publish_registry};
    let data_dir = &args.tracker.data_dir;
    let keys = key_file(&args.publish, data_dir, args.current.is_none());
    let answers = publish_registry(
        client,
        &args.publish,
        (&args.new, keys.as_deref()),
        signer,
        expected_processes(current),
    )
    .await?;
    if !answers.refused.is_empty() {
        eprintln!(
            "warning: {} refused the new registry (see their logs): until each runs it (restart it on NEW), it quarantines the transfers below",
            answers.refused.join(", ")
        );
    }
    Ok(())
}

/// `--current`, else the registry `onedoor up` says it runs (a path, or the built-in one). The
/// inner error is a registry file that does not load, printed problem by problem.
fn current_registry(
    args: &ApplyArgs,
) -> anyhow::Result<Result<Registry, onedoor_case::RegistryError>> {
    if let Some(path) = &args.current {
        return Ok(Registry::load(path));
    }
    let data_dir = &args.tracker.data_dir;
    let Some(endpoints) = Endpoints::read(data_dir)? else {
        anyhow::bail!(
            "no running bus in {} (no endpoints.json): pass --current FILE with the registry the bus runs, and --tracker and --nats-url to reach it",
            data_dir.display()
        );
    };
    if endpoints.registry.starts_with("built-in ") {
        return Ok(Ok(super::common::load_registry_mut(None)?.0));
    }
    Ok(Registry::load(Path::new(&endpoints.registry)))
}

async fn gather(args: &ApplyArgs, diff: &RegistryDiff<'_>) -> anyhow::Result<Live> {
    let mut live = Live::default();
    let (mut client, url) = super::case::connect(&args.tracker).await?;
    for change in diff.endings() {
        let code = change.code();
        let tasks = open_tasks(&mut client, &url, code).await?;
        live.tasks.insert(code.clone(), tasks);
    }
    let js = async_nats::jetstream::new(connect_operator(args).await?);
    let stream = js
        .get_stream(onedoor_bus::STREAM_NAME)
        .await
        .context("reading the ONEDOOR stream as the operator")?;
    let touched = diff.agencies.iter().flat_map(|change| {
        [Some(change.code()), change.successor().map(|s| &s.code)]
            .into_iter()
            .flatten()
    });
    for code in touched {
        let name = format!("inbox-{code}");
        live.inboxes
            .insert(code.clone(), inbox_state(&stream, &name).await?);
    }
    let tracker = inbox_state(&stream, onedoor_bus::subjects::TRACKER_CONSUMER).await?;
    live.tracker_behind = tracker.undelivered + tracker.unacknowledged;
    Ok(live)
}

async fn connect_operator(args: &ApplyArgs) -> anyhow::Result<async_nats::Client> {
    let data_dir = &args.tracker.data_dir;
    let seed = CredentialSet::load(&data_dir.join("nats-credentials"))
        .ok()
        .and_then(|set| set.seed_file(&Identity::Operator).map(Path::to_path_buf));
    let settings = args.nats.settings_or(Fallback { data_dir, seed })?;
    Ok(settings
        .connect(&Identity::Operator, |options| {
            options.name("onedoor-registry-apply")
        })
        .await?)
}

/// A consumer's depth; a missing consumer is `exists: false`, not an error.
async fn inbox_state(
    stream: &async_nats::jetstream::stream::Stream,
    name: &str,
) -> anyhow::Result<InboxState> {
    match stream.consumer_info(name).await {
        Ok(info) => Ok(InboxState {
            exists: true,
            undelivered: info.num_pending,
            unacknowledged: u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX),
        }),
        Err(err) if err.kind() == ConsumerInfoErrorKind::NotFound => Ok(InboxState::default()),
        Err(err) => Err(anyhow::Error::new(err).context(format!("reading consumer {name}"))),
    }
}

/// Every open task `code` holds, from every page of the tracker's answer.
async fn open_tasks(
    client: &mut super::case::Client,
    url: &str,
    code: &AgencyCode,
) -> anyhow::Result<Vec<OpenTask>> {
    let mut request = v1::ListCasesRequest {
        holding_agency: code.to_string(),
        page_size: PAGE_SIZE,
        ..Default::default()
    };
    let mut tasks = Vec::new();
    loop {
        let page = client
            .list_cases(request.clone())
            .await
            .map_err(|status| super::case::explain(status, url))?
            .into_inner();
        for view in &page.cases {
            tasks.extend(held_by(view, code));
        }
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    tasks.sort_by(|a, b| (&a.since, &a.case_id).cmp(&(&b.since, &b.case_id)));
    Ok(tasks)
}

fn held_by(view: &v1::CaseView, code: &AgencyCode) -> Vec<OpenTask> {
    view.open_tasks
        .iter()
        .filter(|task| task.agency == code.as_str())
        .map(|task| OpenTask {
            case_id: view.case_id.clone(),
            agency: code.clone(),
            from: task.from_agency.clone(),
            since: from_timestamp("handed_off_at", task.handed_off_at.as_ref())
                .ok()
                .and_then(|at| {
                    at.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| "unknown".to_owned()),
            accepted: task.state == i32::from(v1::TaskState::Accepted),
        })
        .collect()
}
