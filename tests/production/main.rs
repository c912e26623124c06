//! The production layout on one machine, as issue "production" describes it: a three-node
//! cluster from `deploy/nats/`'s files (TLS on client and route ports, nkey users with the
//! generated permissions), `onedoor provision` as the operator, the front office, MOIC, MOF and
//! MOPS adapters and the tracker each as a separate `onedoor` process with only its own
//! credentials and all three NATS URLs. A case flows through all of them; then, under load,
//! the stream leader, one adapter and the tracker are killed and restarted in turn, and the
//! test counts what was lost, duplicated or wrongly refused (it must be nothing).

mod flows;
mod layout;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use flows::{Agencies, Tally, flow, run_flows};
use layout::{Layout, SUPERVISOR};
use onedoor_natsauth::Identity;
use onedoor_proto::v1;
use onedoor_proto::v1::case_tracker_client::CaseTrackerClient;
use onedoor_testkit::{BearerToken, DEADLINE, FRONT, eventually, stream_leader};
use tokio::sync::Mutex;

const MINISTRIES: [&str; 3] = ["MOIC", "MOF", "MOPS"];
/// Cases in the load phase: enough that every fault lands mid-flow, few enough to finish in
/// well under a minute on two cores.
const CASES: usize = 90;
const CONCURRENCY: usize = 6;

fn agencies(layout: &Layout) -> anyhow::Result<Agencies> {
    Ok(Agencies {
        front: (FRONT.to_owned(), layout.endpoint(FRONT)?.client()?),
        ministries: MINISTRIES
            .iter()
            .map(|code| Ok(((*code).to_owned(), layout.endpoint(code)?.client()?)))
            .collect::<anyhow::Result<_>>()?,
    })
}

fn stdout(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every case event in the stream, as (event id → how many messages carry it), read by the
/// operator from the leader.
async fn events_in_stream(layout: &Layout) -> anyhow::Result<BTreeMap<String, usize>> {
    let js = jetstream::new(layout.cluster.connect(&Identity::Operator).await?);
    let mut stream = js.get_stream(onedoor_bus::STREAM_NAME).await?;
    let last = stream.info().await?.state.last_sequence;
    let mut ids = BTreeMap::new();
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await?;
        let stored = onedoor_bus::case_log::decode_stored(sequence, message.payload)?;
        *ids.entry(stored.event.event_id.to_string()).or_default() += 1;
    }
    Ok(ids)
}

/// Waits until the tracker's view of `case_id` has reached `version`.
async fn tracker_reaches(url: &str, case_id: &str, version: u64) -> anyhow::Result<v1::CaseView> {
    let channel = tonic::transport::Channel::from_shared(url.to_owned())?.connect_lazy();
    let what = format!("the tracker to show case {case_id} at version {version}");
    eventually(&what, DEADLINE, || {
        let mut tracker =
            CaseTrackerClient::with_interceptor(channel.clone(), BearerToken(SUPERVISOR.into()));
        let request = v1::GetCaseRequest {
            case_id: case_id.to_owned(),
        };
        async move {
            Ok(match tracker.get_case(request).await {
                Ok(view) => Some(view.into_inner()).filter(|v| v.version >= version),
                Err(_) => None,
            })
        }
    })
    .await
}

/// `error` with the last lines of `process`'s log, to see why it did not do its part.
fn with_log(error: anyhow::Error, name: &str, process: Option<&layout::Process>) -> anyhow::Error {
    let tail = process.map(layout::Process::log_tail).unwrap_or_default();
    anyhow::anyhow!("{error:#}\n--- {name} log ---\n{tail}")
}

/// Waits until `count` flows have resolved their case.
async fn resolved_at_least(tally: &Mutex<Tally>, count: usize) -> anyhow::Result<()> {
    let what = format!("{count} cases resolved under load");
    eventually(&what, Duration::from_secs(120), || async {
        let tally = tally.lock().await;
        anyhow::ensure!(
            tally.refused.is_empty() && tally.gave_up.is_empty(),
            "a step failed: {:?} {:?}",
            tally.refused,
            tally.gave_up
        );
        Ok((tally.resolved >= count).then_some(()))
    })
    .await
}

/// The node leading the ONEDOOR stream now.
async fn leader_node(layout: &Layout) -> anyhow::Result<usize> {
    let js = jetstream::new(layout.cluster.connect(&Identity::Operator).await?);
    let name = stream_leader(&js, onedoor_bus::STREAM_NAME).await?;
    layout
        .cluster
        .index_of(&name)
        .ok_or_else(|| anyhow::anyhow!("unknown leader {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_production_layout_carries_cases_through_separate_processes_and_survives_faults()
-> anyhow::Result<()> {
    let codes: Vec<&str> = [FRONT].into_iter().chain(MINISTRIES).collect();
    let mut layout = Layout::start(&codes).await?;

    let first = layout.provision(&[])?;
    anyhow::ensure!(
        first.status.success(),
        "provision failed:\n{}",
        stdout(&first)
    );
    assert!(stdout(&first).contains("created"), "{}", stdout(&first));
    let second = layout.provision(&[])?;
    anyhow::ensure!(
        second.status.success(),
        "provision again failed:\n{}",
        stdout(&second)
    );
    let again = String::from_utf8_lossy(&second.stdout).into_owned();
    assert!(
        again.contains("unchanged") && !again.contains("created") && !again.contains("updated"),
        "a second provision changed something:\n{again}"
    );
    let check = layout.provision(&["--check"])?;
    assert!(
        check.status.success(),
        "drift right after provision:\n{}",
        stdout(&check)
    );

    // Two case readers share the agencies' reads; one is killed under load below.
    layout.start_reader()?;
    layout.start_reader()?;
    for agency in [FRONT].iter().chain(MINISTRIES.iter()) {
        layout.start_adapter(agency)?;
    }
    layout.start_tracker()?;
    for agency in [FRONT].iter().chain(MINISTRIES.iter()) {
        layout.wait_serving(agency).await?;
    }
    let tracker_url = format!(
        "http://127.0.0.1:{}",
        layout.tracker.as_ref().map_or(0, |t| t.port)
    );

    // One case through every agency, and the tracker shows it resolved.
    let agencies = Arc::new(agencies(&layout)?);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let journey = flow(&agencies, &[0, 1, 2], "journey", &tally)
        .await
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the journey failed: {:?}",
                tally
                    .try_lock()
                    .map(|t| format!("{:?} {:?}", t.refused, t.gave_up))
            )
        })?;
    let view = tracker_reaches(&tracker_url, &journey.case_id, journey.case_version)
        .await
        .map_err(|e| with_log(e, "tracker", layout.tracker.as_ref()))?;
    assert_eq!(view.status(), v1::CaseStatus::Resolved, "{view:?}");

    // Load, with the stream leader, then MOF's adapter, then the tracker killed and restarted.
    let load = tokio::spawn(run_flows(
        agencies.clone(),
        "load",
        CASES,
        CONCURRENCY,
        tally.clone(),
    ));
    let mut outages = Vec::new();
    resolved_at_least(&tally, 1 + CASES / 5).await?;
    let leader = leader_node(&layout).await?;
    let started = Instant::now();
    layout.cluster.kill(leader)?;
    resolved_at_least(&tally, 1 + CASES / 3).await?;
    layout.cluster.restart(leader).await?;
    outages.push(("stream leader down", started.elapsed()));

    let started = Instant::now();
    if let Some(mof) = layout.adapters.get_mut("MOF") {
        mof.crash()?;
        mof.restart()?;
    }
    layout.wait_serving("MOF").await?;
    outages.push(("MOF adapter killed until serving", started.elapsed()));
    resolved_at_least(&tally, 1 + CASES / 2).await?;

    // One case reader dies for good: the other answers every read.
    if let Some(reader) = layout.readers.first_mut() {
        reader.crash()?;
    }
    resolved_at_least(&tally, 1 + CASES * 3 / 5).await?;

    let started = Instant::now();
    if let Some(tracker) = layout.tracker.as_mut() {
        tracker.crash()?;
        tracker.restart()?;
    }
    outages.push(("tracker killed until restarted", started.elapsed()));
    load.await?;

    let tally = tally.lock().await;
    assert!(
        tally.refused.is_empty(),
        "valid steps refused: {:?}",
        tally.refused
    );
    assert!(
        tally.gave_up.is_empty(),
        "steps never landed: {:?}",
        tally.gave_up
    );
    assert_eq!(tally.resolved, CASES + 1, "every case resolved");

    // The stream holds each step exactly once, and nothing else.
    let stored = events_in_stream(&layout).await?;
    let duplicated: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "events stored twice: {duplicated:?}");
    let missing: Vec<_> = tally
        .receipts
        .keys()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "receipts for events not stored: {missing:?}"
    );
    let journey_events = 2 + 3 * 3;
    assert_eq!(
        stored.len(),
        journey_events + CASES * 5,
        "events in the stream"
    );

    // The tracker, killed mid-load, shows every case at its last version without a rebuild.
    for case_id in &tally.opened {
        let view = tracker_reaches(&tracker_url, case_id, 5).await?;
        assert_eq!(view.status(), v1::CaseStatus::Resolved, "{view:?}");
    }

    let audit = layout.audit_verify()?;
    assert!(
        audit.status.success(),
        "audit verify failed:\n{}",
        stdout(&audit)
    );

    println!(
        "production layout: {} cases, {} events, 0 lost, 0 duplicated, 0 refused; {} retried \
         attempts; longest step {:?}; outages {outages:?}",
        CASES + 1,
        stored.len(),
        tally.retries,
        tally.longest_stall
    );
    Ok(())
}
