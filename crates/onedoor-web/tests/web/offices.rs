//! District offices on the staff page: a status heard on the bus shows the office connected
//! with what waits there; silence past the tracker's bound shows it disconnected since then;
//! the steps an office lists as waiting for its link are marked on their case pages (in a
//! real browser, in both languages), and a case only an office has gets a page saying so.

use onedoor_bus::office_status::{OfficeStatus, WaitingStep, office_status_subject};
use onedoor_case::{CaseId, EventId};
use onedoor_testkit::{DEADLINE, FRONT, eventually};
use serde_json::json;
use time::OffsetDateTime;

use crate::app::{WebApp, the_cases};
use crate::browser::Browser;
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
            waiting: Vec::new(),
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

/// The office's status listing steps that wait there: a hand-off on a case the capital has,
/// and the opening and hand-off of a case it does not have yet.
fn status_waiting(on_known: CaseId, unknown: CaseId, ids: &[String; 3]) -> OfficeStatus {
    let now = OffsetDateTime::now_utc();
    let step = |case: CaseId, id: &str, kind: &str, to: Option<&str>| WaitingStep {
        case_id: case.to_string(),
        event_id: id.to_owned(),
        kind: kind.to_owned(),
        to: to.map(str::to_owned),
        stored_at: now,
    };
    OfficeStatus {
        pending: 3,
        oldest_pending: Some(now),
        conflicts: 0,
        sent_at: now,
        waiting: vec![
            step(on_known, &ids[0], "handed_off", Some("MOIC")),
            step(unknown, &ids[1], "opened", None),
            step(unknown, &ids[2], "handed_off", Some("MOF")),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_page_marks_the_steps_waiting_at_an_office_in_both_languages() -> anyhow::Result<()>
{
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let outcome = waiting_steps(&browser).await;
    browser.quit().await;
    outcome
}

async fn waiting_steps(browser: &Browser) -> anyhow::Result<()> {
    let app = WebApp::start().await?;
    let cases = the_cases(&app.bus).await?;
    app.projected(&[cases.permit]).await?;
    let unknown = CaseId::generate();
    let ids = [(); 3].map(|()| EventId::generate().to_string());
    let client = app.bus.nats.client().await?;
    // Sent again on each look: the tracker subscribes in the background after it starts.
    eventually("the tracker hears the office", DEADLINE, || async {
        let status = status_waiting(cases.permit, unknown, &ids);
        client
            .publish(
                office_status_subject(FRONT),
                serde_json::to_vec(&status)?.into(),
            )
            .await?;
        client.flush().await?;
        let page = app.get(&format!("/cases/{unknown}"), &[ENGLISH]).await?;
        Ok((page.status == 200)
            .then_some(())
            .ok_or(page.status.to_string()))
    })
    .await?;

    browser
        .goto(&app.url(&format!("/cases/{}", cases.permit)))
        .await?;
    assert_eq!(
        browser.text("#waiting-title").await?,
        "Waiting at a district office for the link"
    );
    let rows = browser
        .js(
            "return Array.from(document.querySelectorAll('#waiting-at-office tbody tr')) \
               .map(r => r.dataset.waitingEvent);",
        )
        .await?;
    assert_eq!(rows, json!([ids[0]]), "only this case's step");
    let table = browser.text("#waiting-at-office").await?;
    assert!(table.contains("Handed over"), "{table}");
    browser.screenshots("case-waiting-en", 1366, 768).await?;

    browser.switch_language("lo").await?;
    assert_eq!(
        browser.text("#waiting-title").await?,
        "ລໍຖ້າການເຊື່ອມຕໍ່ຢູ່ສູນບໍລິການຂັ້ນເມືອງ"
    );
    assert!(browser.text("#waiting-at-office").await?.contains("ສົ່ງຕໍ່"));

    // A case only the office has: its page says so and lists its two steps, in order.
    browser.goto(&app.url(&format!("/cases/{unknown}"))).await?;
    assert!(
        browser
            .text("#not-yet-at-capital")
            .await?
            .starts_with("ຄຳຮ້ອງນີ້ຍັງບໍ່ມາຮອດສູນກາງ"),
    );
    let rows = browser
        .js(
            "return Array.from(document.querySelectorAll('#waiting-at-office tbody tr')) \
               .map(r => r.dataset.waitingEvent);",
        )
        .await?;
    assert_eq!(rows, json!([ids[1], ids[2]]));
    let table = browser.text("#waiting-at-office").await?;
    assert!(
        table.contains("ຍື່ນຄຳຮ້ອງ") && table.contains("ສົ່ງຕໍ່"),
        "{table}"
    );
    browser.screenshots("case-waiting-lo", 1366, 768).await?;

    // An id no office lists is still not found.
    let other = CaseId::generate();
    let page = app.get(&format!("/cases/{other}"), &[ENGLISH]).await?;
    assert_eq!(page.status, 404);
    app.stop().await
}
