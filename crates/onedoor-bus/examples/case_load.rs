//! Measures `CaseLog::load` for one case while the stream holds many other events: the load
//! must follow the case's length, not the stream's. Not a test (numbers are not asserted).
//!
//! cargo run --release -p onedoor-bus --example case_load -- [OTHER_EVENTS] [CASE_EVENTS]

use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use onedoor_bus::{CaseLog, StreamSettings, WriteRequest, ensure_stream, subjects};
use onedoor_case::{Action, AgencyCode, CaseId, Command, EventId, Registry, ServiceCode};
use onedoor_testkit::TestNats;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let others: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let case_events: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(12);

    let nats = TestNats::start().await?;
    let js = nats.jetstream().await?;
    ensure_stream(&js, &StreamSettings::development()).await?;
    let registry = Registry::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2025.toml"),
    )?;
    let log = CaseLog::open(js.clone()).await?;

    // Filler: other cases' messages on their own subjects (payload size of a typical event).
    let started = Instant::now();
    let payload = Bytes::from(vec![7u8; 400]);
    let mut pending = std::collections::VecDeque::new();
    for i in 0..others {
        let subject = subjects::case_subject(&CaseId::generate().to_string(), "MOIC", Some("MOF"))?;
        pending.push_back(js.publish(subject, payload.clone()).await?);
        if pending.len() >= 4096 || i + 1 == others {
            while let Some(ack) = pending.pop_front() {
                ack.await?;
            }
        }
    }
    let fill_s = started.elapsed().as_secs_f64();

    // The measured case, written through the real write path, in the middle of the filler.
    let case_id = CaseId::generate();
    let front = AgencyCode::parse("ODSC-VTE-SAYSETTHA")?;
    let write = |action| WriteRequest {
        case_id,
        event_id: EventId::generate(),
        command: Command {
            agency: front.clone(),
            actor: String::new(),
            at: time::OffsetDateTime::now_utc(),
            action,
        },
        idempotency_key: String::new(),
        caller_trace: None,
    };
    log.execute(
        &write(Action::Open {
            service: ServiceCode::parse("construction-permit")?,
            citizen_ref: "R".into(),
            summary: String::new(),
            documents: vec![],
        }),
        &registry,
    )
    .await?;
    let ministries = [
        "MPWT", "MAE", "MOPS", "MOF", "MOIC", "MOH", "MOES", "MLSW", "MOFA", "MOJ", "MTC", "MCT",
        "MOND",
    ];
    for to in ministries
        .iter()
        .cycle()
        .take(case_events.saturating_sub(1))
    {
        let to = AgencyCode::parse(to)?;
        let action = Action::HandOff {
            to,
            instructions: String::new(),
            documents: vec![],
            due_working_days: None,
        };
        if log.execute(&write(action), &registry).await.is_err() {
            break;
        }
    }

    let mut timings = Vec::new();
    let mut loaded = 0;
    for _ in 0..200 {
        let t = Instant::now();
        loaded = log.load(case_id).await?.len();
        timings.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    timings.sort_by(f64::total_cmp);
    let pct = |p: f64| timings[((timings.len() as f64 - 1.0) * p) as usize];
    println!(
        "{{\"stream_messages\":{},\"case_events\":{loaded},\"fill_s\":{fill_s:.1},\"load_p50_ms\":{:.3},\"load_p99_ms\":{:.3},\"load_max_ms\":{:.3}}}",
        others + loaded as u64,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}
