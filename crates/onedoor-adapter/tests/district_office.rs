//! A district office's adapter on a weak link: with the link up it writes to the national
//! stream as any adapter; with the link cut it keeps taking opens and hand-offs into the
//! office's outbox (receipts say `awaiting_link`), refuses a step another agency may have
//! raced (UNAVAILABLE), and everything reaches the national stream once the link is back.

use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use onedoor_bus::CaseLog;
use onedoor_case::CaseId;
use onedoor_natsauth::Identity;
use onedoor_testkit::{DEADLINE, District, FRONT, NationalTracker, eventually};
use onedoor_tracker::OfficeLink;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_keeps_serving_while_cut_and_delivers_when_back() -> anyhow::Result<()> {
    let district = District::start().await?;
    // Link up: written nationally, as any adapter does.
    let (adapter, mut front, online) = district.office_adapter().await?;
    assert!(!online.awaiting_link);
    assert!(online.stream_sequence > 0);
    let raced = front.open_case("enterprise-registration").await?;
    front.hand_off(&raced.case_id, "MOIC").await?;

    district.link.cut();
    let opened = front.open_case("enterprise-registration").await?;
    assert!(opened.awaiting_link, "{opened:?}");
    assert_eq!(opened.stream_sequence, 0);
    let handed = front.hand_off(&opened.case_id, "MOIC").await?;
    assert!(handed.awaiting_link);
    assert_eq!(handed.case_version, 2);
    // The office's own view of the case marks both steps as waiting for the link.
    let waiting = front.get_case(&opened.case_id).await?;
    assert_eq!(waiting.events.len(), 2, "{waiting:?}");
    assert_eq!(
        waiting.awaiting_link_event_ids,
        [opened.event_id.clone(), handed.event_id.clone()]
    );
    // A case opened while the link was up is known to the office: it may hand it off.
    let later = front.hand_off(&online.case_id, "MOF").await?;
    assert!(later.awaiting_link);
    // MOIC holds a task on this one and may have acted: not without the link.
    let refused = front
        .hand_off(&raced.case_id, "MOF")
        .await
        .expect_err("refused while cut");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("needs the link"), "{refused:?}");

    district.link.restore();
    let auditor = district.hub.connect(&Identity::Auditor).await?;
    let national = CaseLog::open(auditor.js.clone()).await?;
    for (case, events) in [
        (&opened.case_id, 2),
        (&online.case_id, 2),
        (&raced.case_id, 2),
    ] {
        let case_id = CaseId::parse(case)?;
        eventually(
            "the office's events reached the capital",
            DEADLINE,
            || async {
                let found = national.load(case_id).await?.len();
                Ok((found == events)
                    .then_some(())
                    .ok_or(format!("{found} of {events} events")))
            },
        )
        .await?;
    }
    let history = national.load(CaseId::parse(&opened.case_id)?).await?;
    assert_eq!(history[1].event.event_id.to_string(), handed.event_id);
    let delivered = front.get_case(&opened.case_id).await?;
    assert_eq!(delivered.events.len(), 2, "{delivered:?}");
    assert!(
        delivered.awaiting_link_event_ids.is_empty(),
        "{delivered:?}"
    );
    adapter.stop().await;
    Ok(())
}

/// The office as the national tracker shows it, once `wanted` holds.
async fn office_seen(
    tracker: &NationalTracker,
    what: &str,
    wanted: impl Fn(&OfficeLink) -> bool,
) -> anyhow::Result<OfficeLink> {
    eventually(what, DEADLINE, || async {
        let offices = tracker.handle.offices();
        Ok(offices
            .iter()
            .find(|o| o.office == FRONT && wanted(o))
            .cloned()
            .ok_or(format!("{offices:?}")))
    })
    .await
}

/// Waits until the metrics, as Prometheus would scrape them, show `line`.
async fn metric_shows(prometheus: &PrometheusHandle, line: &str) -> anyhow::Result<()> {
    eventually(line, DEADLINE, || async {
        let text = prometheus.render();
        Ok(text
            .lines()
            .any(|l| l == line)
            .then_some(())
            .ok_or_else(|| {
                text.lines()
                    .filter(|l| l.starts_with("onedoor_office"))
                    .collect::<Vec<_>>()
                    .join("; ")
            }))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_capital_shows_a_cut_office_disconnected_then_its_cases() -> anyhow::Result<()> {
    // The only test here that reads metrics; the other's adapter metrics are harmless.
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    let district = District::start().await?;
    // Above the office's 5 s status interval, short enough for a test.
    let tracker = district.national_tracker(Duration::from_secs(11)).await?;
    let (adapter, mut front, _) = district.office_adapter().await?;
    let up = office_seen(&tracker, "the capital hears the office", |o| o.connected).await?;
    assert_eq!(up.status.pending, 0, "{up:?}");

    district.link.cut();
    let cut_at = time::OffsetDateTime::now_utc();
    let opened = front.open_case("enterprise-registration").await?;
    assert!(opened.awaiting_link, "{opened:?}");
    let down = office_seen(&tracker, "the office shows disconnected", |o| !o.connected).await?;
    // Disconnected since it was last heard: at the cut (a status in flight may land a moment
    // after it), not when the 11 s bound ran out.
    assert!(
        down.last_heard <= cut_at + time::Duration::seconds(1),
        "{down:?} cut at {cut_at}"
    );
    assert_eq!(tracker.handle.offices().len(), 1);
    metric_shows(&prometheus, "onedoor_offices_disconnected 1").await?;

    district.link.restore();
    office_seen(&tracker, "the office shows connected again", |o| {
        o.connected && o.last_heard > cut_at
    })
    .await?;
    eventually(
        "the office's case reaches the tracker",
        DEADLINE,
        || async { Ok(tracker.handle.case(&opened.case_id).await?) },
    )
    .await?;
    office_seen(&tracker, "the office says nothing waits", |o| {
        o.connected && o.status.pending == 0 && o.status.oldest_pending.is_none()
    })
    .await?;
    metric_shows(&prometheus, "onedoor_offices_disconnected 0").await?;
    metric_shows(
        &prometheus,
        &format!("onedoor_office_outbox_pending{{office=\"{FRONT}\"}} 0"),
    )
    .await?;
    adapter.stop().await;
    tracker.stop().await
}
