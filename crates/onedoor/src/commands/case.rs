//! `onedoor case show` and `onedoor case list`: what a front-office clerk needs to answer a
//! citizen, read from the tracker's CaseTracker gRPC API. Text tables for people, `--json` for
//! scripts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use onedoor_case::text::escape;
use onedoor_case::{CaseId, CaseState};
use onedoor_proto::convert::{from_timestamp, from_wire};
use onedoor_proto::v1;
use onedoor_proto::v1::agency_gateway_client::AgencyGatewayClient;
use onedoor_proto::v1::case_tracker_client::CaseTrackerClient;
use onedoor_tracker::view::{TimelineEntry, timeline};
use serde::Serialize;
use time::{OffsetDateTime, UtcOffset};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::common::say;
use super::grpc::Bearer;
use crate::data_dir::Endpoints;

/// How long to wait for the tracker to accept a connection before saying it is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Lao civil time (UTC+07:00, no daylight saving): how clerks read times.
const CIVIL_OFFSET_SECONDS: i32 = 7 * 3600;

#[derive(Debug, clap::Subcommand)]
pub enum CaseCommand {
    /// One case: status, who holds it since when and until when, and its timeline.
    Show(ShowArgs),
    /// Cases matching filters, newest opened first.
    List(ListArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct TrackerAddress {
    /// The tracker's gRPC address, e.g. http://127.0.0.1:50070; by default the one in
    /// DATA_DIR/endpoints.json.
    #[arg(long, env = "ONEDOOR_TRACKER")]
    pub tracker: Option<String>,
    /// The bus's data dir, where `onedoor up` wrote endpoints.json.
    #[arg(long, env = "ONEDOOR_DATA_DIR", default_value = ".onedoor")]
    pub data_dir: PathBuf,
    /// Bearer token for the tracker: an agency's (it sees only the cases it is part of) or the
    /// supervisor's; by default the development supervisor token in endpoints.json.
    #[arg(long, env = "ONEDOOR_TRACKER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) that signed the tracker's TLS certificate; by default the one in
    /// endpoints.json.
    #[arg(long, env = "ONEDOOR_CA_CERT")]
    pub ca_cert: Option<String>,
    /// The name the tracker's TLS certificate must carry, when it differs from the URL's host
    /// (e.g. dialling an IP address behind a certificate for `tracker.gov.la`).
    #[arg(long, env = "ONEDOOR_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The case id (26-character ULID) from the OpenCase receipt.
    pub case_id: String,
    /// Registry that names the agencies (as they were named at each step, and who does their
    /// work today); by default the one the bus in DATA_DIR runs, else the built-in one.
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Print the case as JSON.
    #[arg(long)]
    pub json: bool,
    /// Ask this district office's adapter (its gRPC URL) instead of the tracker, with the
    /// office's token (`--token`): it also shows the office's steps still waiting for the
    /// link to the capital, which the tracker does not have yet.
    #[arg(long, env = "ONEDOOR_OFFICE")]
    pub office: Option<String>,
    #[command(flatten)]
    pub address: TrackerAddress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    AtFrontOffice,
    InProgress,
    AwaitingInfo,
    Resolved,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only cases where this agency holds an open task, e.g. MOF.
    #[arg(long)]
    pub agency: Option<String>,
    /// Only cases with an open task past its due time.
    #[arg(long)]
    pub overdue: bool,
    /// Only cases of this service, e.g. enterprise-registration.
    #[arg(long)]
    pub service: Option<String>,
    /// Only cases opened by this front office, e.g. ODSC-VTE-SAYSETTHA.
    #[arg(long)]
    pub front_office: Option<String>,
    /// Only cases in these statuses (repeat the flag for several).
    #[arg(long, value_enum)]
    pub status: Vec<StatusArg>,
    /// Only cases whose id, citizen reference or summary contains this text, or one of whose
    /// agencies has a code or name (now or before, or its successor's) containing it.
    #[arg(long)]
    pub text: Option<String>,
    /// At most this many cases.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print the cases as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub address: TrackerAddress,
}

pub fn run(command: CaseCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match command {
        CaseCommand::Show(args) => runtime.block_on(show(args)),
        CaseCommand::List(args) => runtime.block_on(list(args)),
    }
}

/// How to reach the tracker: URL, CA and token, each from its flag or else endpoints.json.
struct TrackerTarget {
    url: String,
    ca_cert: Option<String>,
    token: Option<String>,
}

/// The tracker's URL: `--tracker`, else `tracker.grpc` in endpoints.json; likewise the CA and
/// the token.
fn tracker_target(address: &TrackerAddress) -> anyhow::Result<TrackerTarget> {
    // endpoints.json is read only for what the flags leave open.
    let endpoints =
        if address.tracker.is_none() || address.token.is_none() || address.ca_cert.is_none() {
            Endpoints::read(&address.data_dir)?
        } else {
            None
        };
    let listed = endpoints.as_ref().and_then(|e| e.tracker.as_ref());
    let url = match &address.tracker {
        Some(url) => url.clone(),
        None => match listed {
            Some(tracker) => tracker.grpc.clone(),
            None => anyhow::bail!(
                "no tracker address: pass --tracker URL, or run `onedoor up --data-dir {}` \
                     (it lists the tracker in endpoints.json)",
                address.data_dir.display()
            ),
        },
    };
    let url = if url.contains("://") {
        url
    } else {
        format!("http://{url}")
    };
    Ok(TrackerTarget {
        url,
        ca_cert: address
            .ca_cert
            .clone()
            .or_else(|| endpoints.as_ref().and_then(|e| e.tls_ca_cert.clone())),
        token: address
            .token
            .clone()
            .or_else(|| listed.and_then(|t| t.supervisor_token.clone())),
    })
}

pub(super) type Client = CaseTrackerClient<InterceptedService<Channel, Bearer>>;

pub(super) async fn connect(address: &TrackerAddress) -> anyhow::Result<(Client, String)> {
    let target = tracker_target(address)?;
    let url = target.url;
    let endpoint = super::grpc::endpoint(
        &url,
        target.ca_cert.as_deref(),
        address.tls_server_name.as_deref(),
    )
    .with_context(|| match &address.tls_server_name {
        Some(name) => format!("{url:?} with --tls-server-name {name:?}: not a usable gRPC address"),
        None => format!("{url:?} is not a gRPC address"),
    })?
    .connect_timeout(CONNECT_TIMEOUT)
    .timeout(REQUEST_TIMEOUT);
    let bearer = Bearer::new(target.token.as_deref())?;
    match endpoint.connect().await {
        Ok(channel) => Ok((CaseTrackerClient::with_interceptor(channel, bearer), url)),
        Err(error) => {
            let cause = root_cause(&error);
            if cause.contains("not valid for name") {
                anyhow::bail!(
                    "the tracker at {url} has a certificate for other names ({cause}); dial one \
                     of its names, or pass --tls-server-name with one"
                )
            }
            if cause.contains("certificate") {
                anyhow::bail!(
                    "cannot trust the tracker at {url} ({cause}); pass --ca-cert with the CA that signed its certificate"
                )
            }
            anyhow::bail!(
                "cannot reach the tracker at {url} ({cause}); is `onedoor up` or `onedoor tracker` running?"
            )
        }
    }
}

/// The innermost cause of an error, which is the part a person can act on ("Connection
/// refused"), without the layers of "transport error".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A tracker answer that is not a result, as one sentence for the person at the terminal.
pub(super) fn explain(status: tonic::Status, url: &str) -> anyhow::Error {
    match status.code() {
        Code::NotFound | Code::InvalidArgument => anyhow::anyhow!("{}", status.message()),
        Code::Unavailable => anyhow::anyhow!(
            "the tracker at {url} is unavailable ({}); try again in a moment",
            status.message()
        ),
        Code::DeadlineExceeded => {
            anyhow::anyhow!("the tracker at {url} did not answer within {REQUEST_TIMEOUT:?}")
        }
        Code::Unauthenticated => anyhow::anyhow!(
            "the tracker at {url} refused the credentials ({}); pass --token (an agency's or the supervisor's)",
            status.message()
        ),
        Code::PermissionDenied => anyhow::anyhow!(
            "the tracker at {url} refused this caller: {}",
            status.message()
        ),
        // A plaintext client talking to a TLS server sees a broken HTTP/2 connection.
        _ if url.starts_with("http://") => anyhow::anyhow!(
            "the tracker at {url} answered {:?}: {} (does it serve TLS? then use https://)",
            status.code(),
            status.message()
        ),
        code => anyhow::anyhow!(
            "the tracker at {url} answered {code:?}: {}",
            status.message()
        ),
    }
}

fn parse_case_id(text: &str) -> anyhow::Result<CaseId> {
    // Case ids are upper case; accept what a clerk types in lower case.
    CaseId::parse(&text.trim().to_uppercase()).map_err(|e| anyhow::anyhow!("{e}"))
}

async fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let case_id = parse_case_id(&args.case_id)?;
    let request = v1::GetCaseRequest {
        case_id: case_id.to_string(),
    };
    let view = match &args.office {
        Some(office) => office_view(office, &args.address, request).await?,
        None => {
            let (mut client, url) = connect(&args.address).await?;
            client
                .get_case(request)
                .await
                .map_err(|status| explain(status, &url))?
                .into_inner()
        }
    };
    let now = OffsetDateTime::now_utc();
    let entries = case_timeline(&view, now)?;
    let mut shown = CaseJson::new(&view, Some(&entries));
    shown.agencies =
        super::case_names::registry_for_names(args.registry.as_deref(), &args.address.data_dir)
            .map(|registry| super::case_names::names(&registry, &view.origin_agency, &entries));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else {
        print_case(&shown);
    }
    Ok(ExitCode::SUCCESS)
}

/// The case as a district office's adapter knows it: with the steps waiting for the link.
async fn office_view(
    office: &str,
    address: &TrackerAddress,
    request: v1::GetCaseRequest,
) -> anyhow::Result<v1::CaseView> {
    let channel = super::grpc::endpoint(
        office,
        address.ca_cert.as_deref(),
        address.tls_server_name.as_deref(),
    )
    .with_context(|| format!("{office:?} is not a gRPC address"))?
    .connect_timeout(CONNECT_TIMEOUT)
    .timeout(REQUEST_TIMEOUT)
    .connect()
    .await
    .with_context(|| format!("the office's adapter at {office} does not answer"))?;
    let bearer = Bearer::new(address.token.as_deref())?;
    Ok(AgencyGatewayClient::with_interceptor(channel, bearer)
        .get_case(request)
        .await
        .map_err(|status| explain(status, office))?
        .into_inner())
}

/// The timeline with time held, from the case rules' fold of the events the tracker sent.
fn case_timeline(view: &v1::CaseView, now: OffsetDateTime) -> anyhow::Result<Vec<TimelineEntry>> {
    let events = view
        .events
        .iter()
        .map(|wire| from_wire(wire).map(|(event, _)| event))
        .collect::<Result<Vec<_>, _>>()
        .context("the tracker sent an event that is not valid")?;
    let Some(state) = CaseState::fold(&events).context("the case's events do not fold")? else {
        return Ok(Vec::new());
    };
    Ok(timeline(&state, &events, now))
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let statuses = args
        .status
        .iter()
        .map(|s| {
            i32::from(match s {
                StatusArg::AtFrontOffice => v1::CaseStatus::AtFrontOffice,
                StatusArg::InProgress => v1::CaseStatus::InProgress,
                StatusArg::AwaitingInfo => v1::CaseStatus::AwaitingInfo,
                StatusArg::Resolved => v1::CaseStatus::Resolved,
            })
        })
        .collect();
    let mut request = v1::ListCasesRequest {
        holding_agency: args.agency.clone().unwrap_or_default(),
        statuses,
        overdue_only: args.overdue,
        origin_agency: args.front_office.clone().unwrap_or_default(),
        service: args.service.clone().unwrap_or_default(),
        text: args.text.clone().unwrap_or_default(),
        page_size: u32::try_from(args.limit.clamp(1, 500)).unwrap_or(500),
        page_token: String::new(),
    };
    let (mut client, url) = connect(&args.address).await?;
    let mut cases = Vec::new();
    let truncated = loop {
        let page = client
            .list_cases(request.clone())
            .await
            .map_err(|status| explain(status, &url))?
            .into_inner();
        cases.extend(page.cases);
        if cases.len() >= args.limit {
            let more = cases.len() > args.limit || !page.next_page_token.is_empty();
            cases.truncate(args.limit);
            break more;
        }
        if page.next_page_token.is_empty() {
            break false;
        }
        request.page_token = page.next_page_token;
    };
    let shown: Vec<CaseJson> = cases.iter().map(|c| CaseJson::new(c, None)).collect();
    if args.json {
        let out = serde_json::json!({ "cases": shown, "truncated": truncated });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_list(&shown, truncated, args.limit);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Serialize)]
struct CaseJson {
    case_id: String,
    service: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolution: Option<&'static str>,
    origin_agency: String,
    citizen_ref: String,
    summary: String,
    trace_id: String,
    version: u64,
    opened_at: Option<String>,
    updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved_at: Option<String>,
    overdue: bool,
    open_tasks: Vec<TaskJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeline: Option<Vec<EntryJson>>,
    /// The case's agencies by the names they bore at their steps, and their successors today.
    #[serde(skip_serializing_if = "Option::is_none")]
    agencies: Option<Vec<super::case_names::AgencyName>>,
    /// Messages on the case's subjects that were not believed (`CaseView.quarantined`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    quarantined: Vec<QuarantinedJson>,
}

#[derive(Debug, Serialize)]
struct QuarantinedJson {
    stream_sequence: u64,
    reason: String,
    detail: String,
}

#[derive(Debug, Serialize)]
struct TaskJson {
    handoff_event_id: String,
    agency: String,
    from_agency: String,
    state: &'static str,
    instructions: String,
    handed_off_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted_at: Option<String>,
    due_at: Option<String>,
    overdue: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    open_question: String,
}

#[derive(Debug, Serialize)]
struct EntryJson {
    version: u64,
    at: String,
    from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    kind: &'static str,
    detail: String,
    /// On a hand-off that created a task: seconds the receiver held it (so far, if open).
    #[serde(skip_serializing_if = "Option::is_none")]
    held_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_open: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    due_at: Option<String>,
    overdue: bool,
    /// Written at a district office and not yet delivered to the capital (`--office` only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    awaiting_link: bool,
}

pub(super) fn rfc3339(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    let at = from_timestamp("timestamp", ts).ok()?;
    at.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

fn status_name(status: v1::CaseStatus) -> &'static str {
    match status {
        v1::CaseStatus::AtFrontOffice => "at_front_office",
        v1::CaseStatus::InProgress => "in_progress",
        v1::CaseStatus::AwaitingInfo => "awaiting_info",
        v1::CaseStatus::Resolved => "resolved",
        v1::CaseStatus::Unspecified => "unspecified",
    }
}

impl TaskJson {
    fn new(t: &v1::Task) -> Self {
        TaskJson {
            handoff_event_id: t.handoff_event_id.clone(),
            agency: t.agency.clone(),
            from_agency: t.from_agency.clone(),
            state: match t.state() {
                v1::TaskState::Accepted => "accepted",
                _ => "pending",
            },
            instructions: t.instructions.clone(),
            handed_off_at: rfc3339(t.handed_off_at.as_ref()),
            accepted_at: rfc3339(t.accepted_at.as_ref()),
            due_at: rfc3339(t.due_at.as_ref()),
            overdue: t.overdue,
            open_question: t.open_question.clone(),
        }
    }
}

impl CaseJson {
    fn new(view: &v1::CaseView, entries: Option<&[TimelineEntry]>) -> Self {
        let open_tasks: Vec<TaskJson> = view.open_tasks.iter().map(TaskJson::new).collect();
        let timeline = entries.map(|entries| {
            entries
                .iter()
                .map(|entry| {
                    // Overdue is the tracker's verdict (its clock), not this machine's.
                    let overdue = view
                        .open_tasks
                        .iter()
                        .any(|t| t.handoff_event_id == entry.event_id && t.overdue);
                    EntryJson {
                        version: entry.version,
                        at: entry
                            .at
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                        from: entry.from.clone(),
                        to: entry.to.clone(),
                        kind: entry.kind,
                        detail: entry.detail.clone(),
                        held_seconds: entry.task.as_ref().map(|t| t.held.whole_seconds()),
                        task_open: entry.task.as_ref().map(|t| t.ended.is_none()),
                        due_at: entry.task.as_ref().and_then(|t| {
                            t.due_at
                                .format(&time::format_description::well_known::Rfc3339)
                                .ok()
                        }),
                        overdue,
                        awaiting_link: view.awaiting_link_event_ids.contains(&entry.event_id),
                    }
                })
                .collect()
        });
        CaseJson {
            case_id: view.case_id.clone(),
            service: view.service.clone(),
            status: status_name(view.status()),
            resolution: match view.resolution() {
                v1::Resolution::Approved => Some("approved"),
                v1::Resolution::Denied => Some("denied"),
                v1::Resolution::Withdrawn => Some("withdrawn"),
                v1::Resolution::Unspecified => None,
            },
            origin_agency: view.origin_agency.clone(),
            citizen_ref: view.citizen_ref.clone(),
            summary: view.summary.clone(),
            trace_id: view.trace_id.clone(),
            version: view.version,
            opened_at: rfc3339(view.opened_at.as_ref()),
            updated_at: rfc3339(view.updated_at.as_ref()),
            resolved_at: rfc3339(view.resolved_at.as_ref()),
            overdue: view.overdue,
            open_tasks,
            timeline,
            agencies: None,
            quarantined: view
                .quarantined
                .iter()
                .map(|q| QuarantinedJson {
                    stream_sequence: q.stream_sequence,
                    reason: q.reason.clone(),
                    detail: q.detail.clone(),
                })
                .collect(),
        }
    }
}

/// An RFC 3339 time as a clerk reads it: civil time, to the minute.
pub(super) fn civil(text: Option<&str>) -> String {
    let Some(text) = text else {
        return String::new();
    };
    let offset = UtcOffset::from_whole_seconds(CIVIL_OFFSET_SECONDS).unwrap_or(UtcOffset::UTC);
    match OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        Ok(at) => {
            let at = at.to_offset(offset);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute()
            )
        }
        Err(_) => text.to_owned(),
    }
}

/// `3d 4h`, `5h 12m`, `7m`: how long, to the precision a person cares about.
pub(super) fn span(seconds: i64) -> String {
    let minutes = seconds.max(0) / 60;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes}m"),
        (0, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

pub(super) fn table(headers: &[&str], rows: &[Vec<String>]) {
    // Escaped before measuring, so the columns line up with what is printed.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape(c).into_owned()).collect())
        .collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
            .chain([headers[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..headers.len()).map(width).collect();
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        say(&format!("  {}", text.join("  ").trim_end()));
    };
    line(headers.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn print_case(case: &CaseJson) {
    print_header(case);
    say("");
    print_open_tasks(case);
    say("");
    say("Timeline");
    print_timeline(case);
    if let Some(agencies) = case.agencies.as_deref().filter(|a| !a.is_empty()) {
        say("");
        say("Agencies (named as at their steps)");
        let rows: Vec<Vec<String>> = agencies
            .iter()
            .map(|a| {
                vec![
                    a.code.clone(),
                    format!("{} ({})", a.name_en, a.name_lo),
                    a.now
                        .as_ref()
                        .map(|now| format!("now {now}"))
                        .unwrap_or_default(),
                ]
            })
            .collect();
        table(&["CODE", "NAME", "TODAY"], &rows);
    }
    if !case.quarantined.is_empty() {
        say("");
        say("Messages not accepted");
        let rows: Vec<Vec<String>> = case
            .quarantined
            .iter()
            .map(|q| {
                vec![
                    q.stream_sequence.to_string(),
                    q.reason.clone(),
                    q.detail.clone(),
                ]
            })
            .collect();
        table(&["SEQUENCE", "REASON", "DETAIL"], &rows);
    }
}

fn print_header(case: &CaseJson) {
    let status = match case.resolution {
        Some(resolution) => format!("{} ({resolution})", case.status),
        None => case.status.to_owned(),
    };
    let flag = if case.overdue { "   OVERDUE" } else { "" };
    say(&format!(
        "Case {}   {}   {status}{flag}",
        case.case_id, case.service
    ));
    say(&format!("  citizen ref  {}", case.citizen_ref));
    say(&format!("  summary      {}", case.summary));
    say(&format!(
        "  opened       {} by {}",
        civil(case.opened_at.as_deref()),
        case.origin_agency
    ));
    if case.resolved_at.is_some() {
        say(&format!(
            "  resolved     {}",
            civil(case.resolved_at.as_deref())
        ));
    }
    say(&format!("  trace id     {}", case.trace_id));
    println!(
        "  version      {} (last change {}; times are UTC+07:00)",
        case.version,
        civil(case.updated_at.as_deref())
    );
}

fn overdue_mark(overdue: bool) -> String {
    if overdue {
        "OVERDUE".into()
    } else {
        String::new()
    }
}

fn print_open_tasks(case: &CaseJson) {
    if case.open_tasks.is_empty() {
        say(&format!(
            "No open tasks: the case is with {}.",
            case.origin_agency
        ));
        return;
    }
    say("Open tasks");
    let rows: Vec<Vec<String>> = case
        .open_tasks
        .iter()
        .map(|t| {
            vec![
                t.agency.clone(),
                t.from_agency.clone(),
                t.state.to_owned(),
                civil(t.handed_off_at.as_deref()),
                civil(t.due_at.as_deref()),
                overdue_mark(t.overdue),
                t.open_question.clone(),
            ]
        })
        .collect();
    table(
        &["AGENCY", "FROM", "STATE", "SINCE", "DUE", "", "WAITING FOR"],
        &rows,
    );
}

fn print_timeline(case: &CaseJson) {
    let rows: Vec<Vec<String>> = case
        .timeline
        .iter()
        .flatten()
        .map(|e| {
            let route = match &e.to {
                Some(to) => format!("{} → {to}", e.from),
                None => e.from.clone(),
            };
            let held = match (e.held_seconds, e.task_open) {
                (Some(s), Some(true)) => format!("{} so far", span(s)),
                (Some(s), _) => span(s),
                _ => String::new(),
            };
            vec![
                e.version.to_string(),
                civil(Some(&e.at)),
                route,
                e.kind.to_owned(),
                held,
                if e.awaiting_link {
                    "WAITING FOR THE LINK".into()
                } else {
                    overdue_mark(e.overdue)
                },
                e.detail.clone(),
            ]
        })
        .collect();
    table(
        &["#", "WHEN", "FROM → TO", "WHAT", "TIME HELD", "", "DETAIL"],
        &rows,
    );
}

fn print_list(cases: &[CaseJson], truncated: bool, limit: usize) {
    if cases.is_empty() {
        say("No cases match.");
        return;
    }
    let rows: Vec<Vec<String>> = cases
        .iter()
        .map(|c| {
            let holders: Vec<&str> = c.open_tasks.iter().map(|t| t.agency.as_str()).collect();
            let next_due = c
                .open_tasks
                .iter()
                .filter_map(|t| t.due_at.as_deref())
                .min_by_key(|due| {
                    OffsetDateTime::parse(due, &time::format_description::well_known::Rfc3339).ok()
                })
                .map(|due| civil(Some(due)))
                .unwrap_or_default();
            vec![
                c.case_id.clone(),
                civil(c.opened_at.as_deref()),
                c.service.clone(),
                c.origin_agency.clone(),
                c.status.to_owned(),
                holders.join(","),
                next_due,
                if c.overdue {
                    "OVERDUE".into()
                } else {
                    String::new()
                },
                c.citizen_ref.clone(),
            ]
        })
        .collect();
    table(
        &[
            "CASE",
            "OPENED",
            "SERVICE",
            "FRONT OFFICE",
            "STATUS",
            "HELD BY",
            "NEXT DUE",
            "",
            "CITIZEN REF",
        ],
        &rows,
    );
    if truncated {
        println!("(first {limit} shown; use --limit or narrower filters for more)");
    } else {
        say(&format!("{} case(s)", cases.len()));
    }
}
