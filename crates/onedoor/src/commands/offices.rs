//! `onedoor tracker offices`: the district offices the running tracker hears from, asked over
//! its CaseTracker gRPC API (`ListOffices`, supervisors only): which are disconnected and
//! since when, and how many steps wait at each for the link. A table, or `--json`.

use std::process::ExitCode;

use onedoor_proto::v1;
use serde::Serialize;
use time::OffsetDateTime;

use super::case::{TrackerAddress, civil, connect, explain, rfc3339, span, table};
use super::common::say;

#[derive(Debug, clap::Args)]
pub struct OfficesArgs {
    #[command(flatten)]
    pub address: TrackerAddress,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One office as printed with `--json`.
#[derive(Debug, Serialize)]
struct OfficeJson {
    office: String,
    connected: bool,
    last_heard: Option<String>,
    pending: u64,
    oldest_pending: Option<String>,
    conflicts: u64,
}

#[derive(Debug, Serialize)]
struct OfficesJson {
    silence_seconds: u32,
    disconnected: usize,
    offices: Vec<OfficeJson>,
}

pub async fn run(args: OfficesArgs) -> anyhow::Result<ExitCode> {
    let (mut client, url) = connect(&args.address).await?;
    let response = client
        .list_offices(v1::ListOfficesRequest {})
        .await
        .map_err(|status| explain(status, &url))?
        .into_inner();
    let offices: Vec<OfficeJson> = response
        .offices
        .iter()
        .map(|office| OfficeJson {
            office: office.office.clone(),
            connected: office.connected,
            last_heard: rfc3339(office.last_heard.as_ref()),
            pending: office.pending,
            oldest_pending: rfc3339(office.oldest_pending.as_ref()),
            conflicts: office.conflicts,
        })
        .collect();
    let listed = OfficesJson {
        silence_seconds: response.silence_seconds,
        disconnected: offices.iter().filter(|o| !o.connected).count(),
        offices,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&listed)?);
    } else {
        print_offices(&listed, OffsetDateTime::now_utc());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_offices(listed: &OfficesJson, now: OffsetDateTime) {
    say(&format!(
        "District offices heard since the tracker started: {} of {} disconnected \
         (silent for more than {} s)",
        listed.disconnected,
        listed.offices.len(),
        listed.silence_seconds
    ));
    if listed.offices.is_empty() {
        say("  No district office has reported yet.");
        return;
    }
    let rows: Vec<Vec<String>> = listed
        .offices
        .iter()
        .map(|office| {
            vec![
                office.office.clone(),
                link_text(office, now),
                office.pending.to_string(),
                civil(office.oldest_pending.as_deref()),
                office.conflicts.to_string(),
            ]
        })
        .collect();
    table(
        &["OFFICE", "LINK", "WAITING", "OLDEST WAITING", "CONFLICTS"],
        &rows,
    );
}

/// "connected", or "DISCONNECTED since <civil time> (<how long>)".
fn link_text(office: &OfficeJson, now: OffsetDateTime) -> String {
    if office.connected {
        return "connected".to_owned();
    }
    let since = office.last_heard.as_deref();
    let silent = since
        .and_then(|text| {
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|at| span((now - at).whole_seconds()));
    match silent {
        Some(silent) => format!("DISCONNECTED since {} ({silent})", civil(since)),
        None => "DISCONNECTED".to_owned(),
    }
}
