//! The workload page's district offices: a status heard on the bus shows the office connected
//! with what waits there; silence past the tracker's bound shows it disconnected since then.

use onedoor_bus::office_status::{OfficeStatus, office_status_subject};
use onedoor_testkit::{DEADLINE, FRONT, eventually};
use time::OffsetDateTime;

use crate::app::WebApp;
use crate::hardening::ENGLISH;

/// The workload page's district offices section, in English.
async fn offices_section(app: &WebApp) -> anyhow::Result<String> {
    let page = app.get("/workload", &[ENGLISH]).await?;
    Ok(page
        .body
        .split_once(r#"<section id="offices">"#)
        .map_or("", |(_, offices)| offices)
        .to_owned())
}

/// Waits until the offices section holds every one of `wanted`.
async fn workload_shows(app: &WebApp, wanted: &[&str]) -> anyhow::Result<()> {
    eventually(&wanted.join(" and "), DEADLINE, || async {
        let offices = offices_section(app).await?;
        Ok(wanted
            .iter()
            .all(|w| offices.contains(w))
            .then_some(())
            .ok_or(offices))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workload_page_shows_an_office_connected_then_disconnected() -> anyhow::Result<()> {
    let app = WebApp::start().await?;
    workload_shows(&app, &["No district office has reported yet."]).await?;

    // What the office's adapter sends every 5 s while connected (the test bus has no users),
    // sent again on each look: the tracker subscribes in the background after it starts.
    let client = app.bus.nats.client().await?;
    let connected = format!(r#"data-office="{FRONT}" data-connected="true""#);
    let wanted = [
        connected.as_str(),
        r#"data-count="0""#,
        "Connected",
        "4 (oldest from",
    ];
    eventually("the page shows the office connected", DEADLINE, || async {
        let status = OfficeStatus {
            pending: 4,
            oldest_pending: Some(OffsetDateTime::now_utc()),
            conflicts: 0,
            sent_at: OffsetDateTime::now_utc(),
        };
        client
            .publish(
                office_status_subject(FRONT),
                serde_json::to_vec(&status)?.into(),
            )
            .await?;
        client.flush().await?;
        let offices = offices_section(&app).await?;
        Ok(wanted
            .iter()
            .all(|w| offices.contains(w))
            .then_some(())
            .ok_or(offices))
    })
    .await?;

    // Nothing more: past the tracker's silence bound (15 s) it is disconnected since then.
    let disconnected = format!(r#"data-office="{FRONT}" data-connected="false""#);
    workload_shows(
        &app,
        &[&disconnected, r#"data-count="1""#, "Disconnected since"],
    )
    .await?;
    app.stop().await
}
