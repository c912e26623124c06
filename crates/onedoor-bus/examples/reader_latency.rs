//! What read confinement costs a step: a ministry acts on a case it has just been sent and has
//! not read before (its log holds no snapshot of it), reading the case either directly from the
//! stream or through the case reader (`docs/jetstream.md` §15). Steps on a case the ministry
//! already holds read nothing, either way. Not a test (numbers are not asserted).
//!
//! cargo run --release -p onedoor-bus --example reader_latency -- [CASES]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use onedoor_bus::read::{CaseReader, READER_CACHED_CASES};
use onedoor_bus::{CaseLog, StreamSettings, WriteRequest, ensure_stream};
use onedoor_case::{Action, AgencyCode, CaseId, Command, EventId, Registry, ServiceCode};
use onedoor_testkit::TestNats;

fn request(case_id: CaseId, agency: &AgencyCode, action: Action) -> WriteRequest {
    WriteRequest {
        case_id,
        event_id: EventId::generate(),
        command: Command {
            agency: agency.clone(),
            actor: String::new(),
            at: time::OffsetDateTime::now_utc(),
            action,
        },
        idempotency_key: String::new(),
        caller_trace: None,
    }
}

/// Opens a case at the front office and hands it to `to`: what a ministry is sent.
async fn sent_case(
    front: &CaseLog,
    front_code: &AgencyCode,
    to: &AgencyCode,
    registry: &Registry,
) -> anyhow::Result<CaseId> {
    let case_id = CaseId::generate();
    let open = Action::Open {
        service: ServiceCode::parse("enterprise-registration")?,
        citizen_ref: "R".into(),
        summary: String::new(),
        documents: vec![],
    };
    front
        .execute(&request(case_id, front_code, open), registry)
        .await?;
    let hand_off = Action::HandOff {
        to: to.clone(),
        instructions: String::new(),
        documents: vec![],
        due_working_days: None,
    };
    let written = front
        .execute(&request(case_id, front_code, hand_off), registry)
        .await?;
    Ok(written.event.case_id)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(at).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cases: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(500);
    let nats = TestNats::start().await?;
    let js = nats.jetstream().await?;
    ensure_stream(&js, &StreamSettings::development()).await?;
    let registry = Registry::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2025.toml"),
    )?;
    let reader_js = nats.jetstream().await?;
    let reader = Arc::new(CaseReader::new(
        CaseLog::open(reader_js.clone()).await?,
        None,
        READER_CACHED_CASES,
    ));
    let _answering = reader.listen(reader_js.client()).await?;

    let front_code = AgencyCode::parse("ODSC-VTE-SAYSETTHA")?;
    let mof = AgencyCode::parse("MOF")?;
    let front = CaseLog::open(js.clone()).await?;
    for (name, through_reader) in [("stream", false), ("reader", true), ("stream", false)] {
        let mut took = Vec::with_capacity(cases);
        for _ in 0..cases {
            let case_id = sent_case(&front, &front_code, &mof, &registry).await?;
            // A fresh log each time: the ministry has not read this case before.
            let ministry = if through_reader {
                CaseLog::through_reader(js.clone(), mof.clone(), Duration::from_secs(5))
            } else {
                CaseLog::open(js.clone()).await?
            };
            let accept = request(case_id, &mof, Action::Accept);
            let started = Instant::now();
            ministry.execute(&accept, &registry).await?;
            took.push(started.elapsed());
        }
        took.sort();
        println!(
            "{{\"reads\":\"{name}\",\"cases\":{cases},\"first_step_p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3}}}",
            percentile(&took, 0.5),
            percentile(&took, 0.9),
            percentile(&took, 0.99),
        );
    }
    Ok(())
}
