//! A district office on a weak link: its own node in its own JetStream domain, linked to the
//! capital through a proxy the test cuts. Writes made while the link is down are stored in the
//! office's outbox and reach the national stream when it is back: in per-case order, exactly
//! once, every hand-off in the ministry's inbox, every case passing the audit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use onedoor_bus::outbox::{Forwarder, ForwarderStats, Outbox};
use onedoor_bus::{CaseLog, STREAM_NAME, Signer, verify_case};
use onedoor_case::{Action, CaseId, Registry, ServiceCode};
use onedoor_natsauth::Identity;
use onedoor_testkit::bus::write_request;
use onedoor_testkit::{
    DEADLINE, District, FRONT, code, eventually, inbox_pending, registry_with_keys,
};
use time::OffsetDateTime;
use tokio::sync::watch;

/// The office's side: its outbox and a running forwarder.
struct Office {
    outbox: Outbox,
    registry: Arc<Registry>,
    stats: Arc<ForwarderStats>,
    stop: watch::Sender<bool>,
    forwarder: tokio::task::JoinHandle<Result<(), onedoor_bus::BusError>>,
}

impl Office {
    async fn start(district: &District) -> anyhow::Result<(Office, HashMap<String, Signer>)> {
        let (registry, mut signers) = registry_with_keys();
        let local = District::js(&district.office_client().await?);
        let signer = signers
            .remove(FRONT)
            .ok_or_else(|| anyhow::anyhow!("no signer for the office"))?;
        let outbox = Outbox::open(local.clone(), code(FRONT))
            .await?
            .with_signer(signer);
        let national = District::js(&district.national_client().await?);
        let forwarder = Forwarder::new(local, national, code(FRONT)).await?;
        let stats = forwarder.stats();
        let (stop, stopped) = watch::channel(false);
        let forwarder = tokio::spawn(forwarder.run(stopped));
        Ok((
            Office {
                outbox,
                registry,
                stats,
                stop,
                forwarder,
            },
            signers,
        ))
    }

    /// Opens a case and, when `to` is given, hands it off: both written to the outbox.
    async fn open(&self, to: Option<&str>) -> anyhow::Result<(CaseId, usize)> {
        let case_id = CaseId::generate();
        let open = Action::Open {
            service: ServiceCode::parse("enterprise-registration")?,
            citizen_ref: "R-1".into(),
            summary: "ຮ້ານຄ້າ".into(),
            documents: vec![],
        };
        let now = OffsetDateTime::now_utc();
        let written = self
            .outbox
            .execute(
                &write_request(case_id, FRONT, open, now),
                &self.registry,
                &[],
            )
            .await?;
        anyhow::ensure!(!written.duplicate);
        let Some(to) = to else {
            return Ok((case_id, 1));
        };
        let hand_off = Action::HandOff {
            to: code(to),
            instructions: "please".into(),
            documents: vec![],
            due_working_days: None,
        };
        let request = write_request(case_id, FRONT, hand_off, OffsetDateTime::now_utc());
        self.outbox.execute(&request, &self.registry, &[]).await?;
        Ok((case_id, 2))
    }

    /// Waits until every event of the outbox reached the national stream.
    async fn drained(&self, deadline: Duration) -> anyhow::Result<()> {
        eventually("the outbox drained", deadline, || async {
            let pending = self.outbox.pending_count().await?;
            Ok((pending == 0)
                .then_some(())
                .ok_or(format!("{pending} pending")))
        })
        .await
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.stop.send(true)?;
        self.forwarder.await??;
        Ok(())
    }
}

async fn national_messages(js: &jetstream::Context) -> anyhow::Result<u64> {
    Ok(js
        .get_stream(STREAM_NAME)
        .await?
        .info()
        .await?
        .state
        .messages)
}

/// Every case holds exactly its events, in order, verified and signed; no event id twice on
/// the stream.
async fn check_national(
    district: &District,
    registry: &Registry,
    cases: &[(CaseId, usize)],
) -> anyhow::Result<()> {
    let auditor = district.hub.connect(&Identity::Auditor).await?;
    let log = CaseLog::open(auditor.js.clone()).await?;
    let expected: usize = cases.iter().map(|(_, n)| n).sum();
    let mut missing = Vec::new();
    for (case_id, events) in cases {
        let found = log.load(*case_id).await?.len();
        if found != *events {
            missing.push(format!("{case_id}: {found} of {events}"));
        }
    }
    assert!(missing.is_empty(), "cases short of events: {missing:?}");
    assert_eq!(
        national_messages(&auditor.js).await?,
        expected as u64,
        "every event exactly once"
    );
    let mut ids = HashSet::new();
    for (case_id, events) in cases {
        let verified = log.load_verified(*case_id).await?;
        assert!(
            verified.quarantined.is_empty(),
            "{:?}",
            verified.quarantined
        );
        assert_eq!(verified.accepted.len(), *events, "case {case_id}");
        for (version, stored) in verified.accepted.iter().enumerate() {
            assert_eq!(stored.event.version, version as u64 + 1, "per-case order");
            assert!(ids.insert(stored.event.event_id), "event stored twice");
        }
        verify_case(&verified.accepted, registry)
            .map_err(|f| anyhow::anyhow!("audit of {case_id}: {f:?}"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_office_keeps_writing_and_everything_arrives_once_in_order() -> anyhow::Result<()> {
    let district = District::start().await?;
    let (office, _) = Office::start(&district).await?;
    let operator = district.hub.operator_js().await?;
    let before = inbox_pending(&operator, "MOIC").await?;

    district.link.cut();
    let mut cases = Vec::new();
    for i in 0..200 {
        cases.push(office.open((i % 2 == 0).then_some("MOIC")).await?);
    }
    let written: usize = cases.iter().map(|(_, n)| n).sum();
    assert_eq!(office.outbox.pending_count().await?, written as u64);
    assert_eq!(
        national_messages(&operator).await?,
        0,
        "nothing crossed a cut link"
    );
    let (up_while_cut, _) = district.link.bytes();

    let restored = Instant::now();
    district.link.restore();
    office.drained(DEADLINE).await?;
    let catch_up = restored.elapsed();
    let (up, down) = district.link.bytes();
    println!(
        "catch-up: {written} events in {catch_up:?} after the link came back; \
         link bytes up {} down {} ({} per event up)",
        up - up_while_cut,
        down,
        (up - up_while_cut) / written as u64
    );

    check_national(&district, &office.registry, &cases).await?;
    assert_eq!(
        inbox_pending(&operator, "MOIC").await? - before,
        100,
        "MOIC's inbox holds every hand-off"
    );
    assert_eq!(office.stats.conflicts.load(Ordering::Relaxed), 0);
    office.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_link_under_load_loses_and_doubles_nothing() -> anyhow::Result<()> {
    let district = District::start().await?;
    let (office, _) = Office::start(&district).await?;
    let operator = district.hub.operator_js().await?;

    // Bounded: five cuts while the office opens a case every 25 ms and hands every other one
    // off. Each cut lasts until the forwarder has failed a try and counted a retry (a cut the
    // client's reconnect buffer absorbs tests nothing), and the link then stays up until the
    // forwarder has delivered again: the flaps follow the forwarder, not a clock.
    let flapping = AtomicBool::new(true);
    let stats = office.stats.clone();
    let flaps = async {
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        for flap in 0..5 {
            let delivered = count(&stats.delivered);
            eventually(
                &format!("flap {flap}: a delivery with the link up"),
                DEADLINE,
                || async {
                    let now = count(&stats.delivered);
                    Ok((now > delivered)
                        .then_some(())
                        .ok_or(format!("{now} delivered")))
                },
            )
            .await?;
            district.link.cut();
            let retries = count(&stats.retries);
            eventually(
                &format!("flap {flap}: a retry while cut"),
                DEADLINE,
                || async {
                    let now = count(&stats.retries);
                    Ok((now > retries)
                        .then_some(())
                        .ok_or(format!("{now} retries")))
                },
            )
            .await?;
            district.link.restore();
        }
        flapping.store(false, Ordering::SeqCst);
        anyhow::Ok(())
    };
    let writes = async {
        let mut cases = Vec::new();
        let mut pace = tokio::time::interval(Duration::from_millis(25));
        while flapping.load(Ordering::SeqCst) {
            pace.tick().await;
            cases.push(
                office
                    .open((cases.len() % 2 == 0).then_some("MOIC"))
                    .await?,
            );
        }
        anyhow::Ok(cases)
    };
    let (flapped, cases) = tokio::join!(flaps, writes);
    flapped?;
    let cases = cases?;
    office.drained(DEADLINE).await?;
    check_national(&district, &office.registry, &cases).await?;
    let handed = cases.iter().filter(|(_, n)| *n == 2).count() as u64;
    assert_eq!(inbox_pending(&operator, "MOIC").await?, handed);
    let retries = office.stats.retries.load(Ordering::Relaxed);
    println!(
        "flapping: {} cases, delivered {} (replays the stream de-duplicated: {}), retries {retries}",
        cases.len(),
        office.stats.delivered.load(Ordering::Relaxed),
        office.stats.duplicates.load(Ordering::Relaxed),
    );
    assert!(
        retries > 0,
        "the flaps never reached the forwarder: the test tested nothing"
    );
    assert_eq!(office.stats.conflicts.load(Ordering::Relaxed), 0);
    office.stop().await
}

/// The catch-up rate after a long outage, simulated by a few thousand events written while
/// the link was cut (`DISTRICT_CATCH_UP_EVENTS`, default 3,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_after_a_long_outage() -> anyhow::Result<()> {
    let events: usize = std::env::var("DISTRICT_CATCH_UP_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let district = District::start().await?;
    let (office, _) = Office::start(&district).await?;
    district.link.cut();
    let mut cases = Vec::new();
    let mut written = 0;
    while written < events {
        let case = office.open(Some("MOIC")).await?;
        written += case.1;
        cases.push(case);
    }
    let (up_before, down_before) = district.link.bytes();
    district.link.restore();
    let back = Instant::now();
    eventually("the first delivery", DEADLINE, || async {
        let delivered = office.stats.delivered.load(Ordering::Relaxed);
        Ok((delivered > 0).then_some(()))
    })
    .await?;
    let reconnected = back.elapsed();
    office.drained(Duration::from_secs(300)).await?;
    let took = back.elapsed();
    let delivering = took - reconnected;
    let conflicts = office.outbox.conflicts().await?;
    assert!(
        conflicts.is_empty(),
        "{:?}",
        conflicts
            .iter()
            .map(|(s, r)| (s.event.event_id, r))
            .collect::<Vec<_>>()
    );
    let (up, down) = district.link.bytes();
    println!(
        "catch-up: {written} events ({} hand-offs) in {took:?}, {:.0} events/s; first delivery \
         after {reconnected:?}, then {:.0} events/s; link bytes up {} down {}, {} bytes per event up",
        cases.len(),
        written as f64 / took.as_secs_f64(),
        written as f64 / delivering.as_secs_f64(),
        up - up_before,
        down - down_before,
        (up - up_before) / written as u64,
    );
    check_national(&district, &office.registry, &cases).await?;
    office.stop().await
}
