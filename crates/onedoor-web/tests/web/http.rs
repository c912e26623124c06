//! What the page sends, over plain HTTP: escaping, language choice, friendly error pages,
//! search, lists, assets and the server-sent event framing.

use std::time::Duration;

use async_nats::jetstream::kv;
use axum::http::StatusCode;
use onedoor_case::CaseId;
use onedoor_tracker::stuck::STUCK_BUCKET;
use time::Duration as Span;

use crate::app::{WebApp, next_case_event, the_cases};
use onedoor_testkit::{FRONT, MONDAY};

const ENGLISH: (&str, &str) = ("accept-language", "en-US,en;q=0.9");
const LAO: (&str, &str) = ("accept-language", "lo-LA,lo;q=0.9,en;q=0.5");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_typed_by_people_is_shown_as_text_never_as_markup() -> anyhow::Result<()> {
    let app = WebApp::start().await?;
    let summary = r#"<script>alert("pwned")</script> & <b>bold</b>"#;
    let reference = r#""><img src=x onerror=alert(1)>"#;
    let opened = app
        .bus
        .open(FRONT, "construction-permit", reference, summary, MONDAY)
        .await?;
    app.projected(&[opened]).await?;

    let page = app.get(&format!("/cases/{opened}"), &[ENGLISH]).await?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(!page.body.contains("<img src=x"));
    assert!(page.body.contains(
        "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
    ));
    assert!(
        page.body
            .contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;")
    );
    // Isolated too: a right-to-left override stored before the input rules (or written past
    // them) cannot reorder the page around the text.
    assert!(
        page.body.contains("<bdi>&lt;script&gt;alert"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<bdi>&quot;&gt;&lt;img"),
        "{}",
        page.body
    );

    // The same text in the search results list and in the live stream's fragment.
    let listed = app.get("/", &[ENGLISH]).await?;
    assert!(!listed.body.contains("<img src=x"));
    let (_, _, mut body) = app
        .open_stream(&format!("/cases/{opened}/live?v=0"), &[ENGLISH])
        .await?;
    let (_, fragment) =
        next_case_event(&mut body, &mut String::new(), Duration::from_secs(20)).await?;
    assert!(!fragment.contains("<script>alert"));
    assert!(fragment.contains("&lt;script&gt;"));
    drop(body);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_follows_the_switch_then_the_browser() -> anyhow::Result<()> {
    let app = WebApp::start().await?;

    let lao = app.get("/", &[LAO]).await?;
    assert!(lao.body.contains(r#"<html lang="lo">"#));
    assert!(lao.body.contains("ຊອກຫາຄຳຮ້ອງ"), "Lao label");
    assert!(lao.header("vary").contains("Accept-Language"));

    let english = app.get("/", &[ENGLISH]).await?;
    assert!(english.body.contains(r#"<html lang="en">"#));
    assert!(english.body.contains("Find a case"));
    // The switch offers the other language, named in that language.
    assert!(
        english
            .body
            .contains(r#"id="lang-switch" type="submit" lang="lo""#)
    );
    assert!(english.body.contains(">ພາສາລາວ</button>"));

    // Neither language asked for: Lao, the clerks' language.
    let other = app.get("/", &[("accept-language", "fr-FR")]).await?;
    assert!(other.body.contains(r#"<html lang="lo">"#));

    // The switch sets a cookie and returns to the page it was pressed on…
    let switched = app
        .post_form("/lang", &[ENGLISH], "lang=lo&back=%2Foverdue%3Fsort%3Ddue")
        .await?;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    assert_eq!(switched.header("location"), "/overdue?sort=due");
    let cookie = switched.header("set-cookie").to_owned();
    assert!(cookie.starts_with("onedoor_lang=lo;"), "{cookie}");
    assert!(cookie.contains("Max-Age="), "remembered: {cookie}");

    // …and the cookie beats the browser's preference from then on.
    let remembered = app
        .get("/overdue", &[ENGLISH, ("cookie", "onedoor_lang=lo")])
        .await?;
    assert!(remembered.body.contains(r#"<html lang="lo">"#));
    assert!(remembered.body.contains("ວຽກທີ່ເກີນກຳນົດ"));

    // Never back to another site.
    let away = app
        .post_form("/lang", &[], "lang=en&back=%2F%2Fevil.example%2F")
        .await?;
    assert_eq!(away.header("location"), "/");
    let unknown = app.post_form("/lang", &[LAO], "lang=fr").await?;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_input_gets_a_friendly_page_in_the_clerks_language()
-> anyhow::Result<()> {
    let app = WebApp::start().await?;
    let unknown = CaseId::generate();
    // (path, language, status, words the page must say)
    let cases = [
        (
            format!("/cases/{unknown}"),
            LAO,
            StatusCode::NOT_FOUND,
            "ບໍ່ພົບຄຳຮ້ອງທີ່ມີລະຫັດນີ້",
        ),
        (
            format!("/cases/{unknown}"),
            ENGLISH,
            StatusCode::NOT_FOUND,
            "No case with this ID is known",
        ),
        (
            "/cases/not-a-case-id".to_owned(),
            ENGLISH,
            StatusCode::BAD_REQUEST,
            "This is not a case ID",
        ),
        (
            "/cases/%FF%FE".to_owned(),
            ENGLISH,
            StatusCode::BAD_REQUEST,
            "This is not a case ID",
        ),
        (
            "/search?q=".to_owned(),
            LAO,
            StatusCode::BAD_REQUEST,
            "ກະລຸນາພິມລະຫັດຄຳຮ້ອງ",
        ),
        (
            format!("/search?q={}", "x".repeat(300)),
            ENGLISH,
            StatusCode::BAD_REQUEST,
            "The search is too long",
        ),
        (
            format!("/search?q={unknown}"),
            ENGLISH,
            StatusCode::NOT_FOUND,
            "No case with this ID is known",
        ),
        (
            "/search?q=nobody-has-this-reference".to_owned(),
            ENGLISH,
            StatusCode::NOT_FOUND,
            "No case matches your search",
        ),
        (
            "/overdue?agency=NOT-AN-AGENCY".to_owned(),
            ENGLISH,
            StatusCode::BAD_REQUEST,
            "This filter is not one the page offers",
        ),
        (
            "/overdue?sort=%3Cscript%3E".to_owned(),
            ENGLISH,
            StatusCode::BAD_REQUEST,
            "This filter is not one the page offers",
        ),
        (
            "/no/such/page".to_owned(),
            LAO,
            StatusCode::NOT_FOUND,
            "ບໍ່ມີໜ້ານີ້",
        ),
        (
            format!("/cases/{unknown}/live"),
            ENGLISH,
            StatusCode::NOT_FOUND,
            "No case with this ID is known",
        ),
    ];
    for (path, lang, status, words) in cases {
        let page = app.get(&path, &[lang]).await?;
        assert_eq!(page.status, status, "{path}");
        assert!(
            page.header("content-type").starts_with("text/html"),
            "{path}: {}",
            page.header("content-type")
        );
        assert!(page.body.contains(words), "{path}: {}", page.body);
        assert!(page.body.contains(r#"href="/""#), "{path}: a way back");
        assert!(!page.body.contains("panicked"), "{path}");
        assert_eq!(page.header("cache-control"), "no-store", "{path}");
    }
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_goes_to_the_case_by_id_trace_id_or_citizen_reference() -> anyhow::Result<()> {
    let app = WebApp::start().await?;
    let cases = the_cases(&app.bus).await?;
    app.projected(&[cases.permit, cases.shop, cases.land])
        .await?;
    let trace_id = app.trace_id(cases.permit).await?;
    let permit = format!("/cases/{}", cases.permit);

    for query in [
        cases.permit.to_string(),
        cases.permit.to_string().to_lowercase(),
        trace_id.clone(),
        trace_id.to_uppercase(),
        "VTE-2026-00042".to_owned(),
        "  vte-2026-00042 ".to_owned(),
    ] {
        let found = app
            .get(
                &format!("/search?q={}", query.replace(' ', "+")),
                &[ENGLISH],
            )
            .await?;
        assert_eq!(found.status, StatusCode::SEE_OTHER, "{query}");
        assert_eq!(found.header("location"), permit, "{query}");
    }
    // Two cases match: a list to choose from.
    let both = app.get("/search?q=VTE-2026", &[ENGLISH]).await?;
    assert_eq!(both.status, StatusCode::OK);
    assert!(both.body.contains(&cases.permit.to_string()));
    assert!(both.body.contains(&cases.shop.to_string()));

    let page = app.get(&permit, &[ENGLISH]).await?;
    assert!(page.body.contains(&trace_id), "the trace id is on the page");
    assert!(page.body.contains("Construction permit"), "service name");
    assert!(page.body.contains("3 working days late"), "MOF is late");
    let lao = app.get(&permit, &[LAO]).await?;
    assert!(lao.body.contains("ໃບອະນຸຍາດປຸກສ້າງ"), "service name in Lao");
    assert!(lao.body.contains("ຊ້າ 3 ວັນລັດຖະການ"));
    assert!(lao.body.contains("ພະຈິກ 2026"), "Lao month name");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_frames_each_new_version_as_a_server_sent_event() -> anyhow::Result<()> {
    let app = WebApp::start().await?;
    let cases = the_cases(&app.bus).await?;
    app.projected(&[cases.shop]).await?;
    let path = format!("/cases/{}/live?v=1", cases.shop);
    let (status, headers, mut body) = app.open_stream(&path, &[ENGLISH]).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let mut buffer = String::new();
    // The page showed version 1; the case is at 2: sent at once.
    let (id, data) = next_case_event(&mut body, &mut buffer, Duration::from_secs(20)).await?;
    assert_eq!(id, "2");
    assert!(
        data.contains(r#"data-version="2""#),
        "the swimlanes of version 2"
    );
    assert!(data.contains(r#"data-agency="MOIC""#));

    // A new event through the real write path arrives as the next frame.
    app.bus
        .accept(cases.shop, "MOIC", MONDAY + Span::hours(60))
        .await?;
    let (id, data) = next_case_event(&mut body, &mut buffer, Duration::from_secs(20)).await?;
    assert_eq!(id, "3");
    assert!(
        data.contains(r#"<tr data-version="3">"#),
        "the new event's row"
    );
    drop(body);

    // A browser reconnecting with Last-Event-ID gets only what it missed: nothing yet.
    let (_, _, mut resumed) = app
        .open_stream(
            &format!("/cases/{}/live?v=1", cases.shop),
            &[ENGLISH, ("last-event-id", "3")],
        )
        .await?;
    let nothing = next_case_event(&mut resumed, &mut String::new(), Duration::from_secs(1)).await;
    assert!(nothing.is_err(), "nothing new since version 3");
    drop(resumed);
    // Open streams do not hold up the tracker's shutdown.
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_and_sort_overdue_stuck_and_workload() -> anyhow::Result<()> {
    let app = WebApp::start().await?;
    let cases = the_cases(&app.bus).await?;
    app.projected(&[cases.permit, cases.shop, cases.land])
        .await?;

    let overdue = app.get("/overdue", &[ENGLISH]).await?;
    assert_eq!(overdue.status, StatusCode::OK);
    assert!(overdue.body.contains(&cases.permit.to_string()));
    assert!(overdue.body.contains(r#"data-working-days-late="3""#));
    assert!(!overdue.body.contains(&cases.shop.to_string()), "not late");
    assert!(overdue.body.contains(&cases.land.to_string()));
    // Most late first by default: the permit (3 days) before the land title (1 day).
    let permit_at = overdue.body.find(&cases.permit.to_string());
    let land_at = overdue.body.find(&cases.land.to_string());
    assert!(permit_at < land_at, "sorted by lateness");
    let reversed = app.get("/overdue?sort=late&dir=asc", &[ENGLISH]).await?;
    assert!(
        reversed.body.find(&cases.land.to_string()) < reversed.body.find(&cases.permit.to_string())
    );
    let by_other_agency = app.get("/overdue?agency=MOIC", &[ENGLISH]).await?;
    assert!(by_other_agency.body.contains(r#"id="nothing""#));
    let by_service = app
        .get("/overdue?service=enterprise-registration", &[ENGLISH])
        .await?;
    assert!(by_service.body.contains(r#"id="nothing""#));
    let sorted = app
        .get(
            "/overdue?agency=MOF&service=construction-permit&sort=due&dir=asc",
            &[ENGLISH],
        )
        .await?;
    assert!(sorted.body.contains(&cases.permit.to_string()));
    assert!(sorted.body.contains(r#"aria-sort="ascending""#));

    let workload = app.get("/workload", &[ENGLISH]).await?;
    assert_eq!(workload.status, StatusCode::OK);
    assert!(workload.body.contains(r#"data-agency="MOF""#));
    assert!(
        workload.body.contains(r#"data-agency="MPWT""#),
        "finished tasks count"
    );
    assert!(
        workload
            .body
            .contains("Ministry of Public Works and Transport")
    );

    // A stuck delivery, recorded as the inbox records it.
    let js = app.bus.nats.jetstream().await?;
    let bucket = js
        .create_key_value(kv::Config {
            bucket: STUCK_BUCKET.into(),
            ..Default::default()
        })
        .await?;
    let record = serde_json::json!({
        "agency": "MOIC", "case_id": cases.shop.to_string(), "event_id": "01JD8X3Q6V9K2M4N5P7R8S9T0W",
        "stream_sequence": 12, "deliveries": 5, "recorded_at": "2026-11-27T03:00:00Z",
        "reason": "max deliveries reached <b>"
    });
    bucket
        .put("MOIC.12", serde_json::to_vec(&record)?.into())
        .await?;
    let stuck = app.get("/stuck", &[ENGLISH]).await?;
    assert_eq!(stuck.status, StatusCode::OK, "{}", stuck.body);
    assert!(stuck.body.contains(&cases.shop.to_string()));
    assert!(stuck.body.contains("max deliveries reached &lt;b&gt;"));
    assert!(stuck.body.contains("27/11/2026 10:00"), "Vientiane time");
    let other = app.get("/stuck?agency=MOF", &[ENGLISH]).await?;
    assert!(other.body.contains(r#"id="nothing""#));
    let by_service = app
        .get(
            "/stuck?service=enterprise-registration&sort=attempts",
            &[ENGLISH],
        )
        .await?;
    assert!(by_service.body.contains(&cases.shop.to_string()));
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_asset_ships_with_the_tracker_and_is_cached_long() -> anyhow::Result<()> {
    let app = WebApp::start().await?;
    let home = app.get("/", &[ENGLISH]).await?;
    // Nothing from another host: no CDN, no font service.
    for needle in ["http://", "https://", "//fonts.", "cdn"] {
        assert!(!home.body.contains(needle), "{needle} in the page");
    }
    let css_link = home
        .body
        .split('"')
        .find(|s| s.starts_with("/assets/app.css?v="))
        .map(str::to_owned)
        .expect("stylesheet link");
    let css = app.get(&css_link, &[]).await?;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));
    assert!(
        !css.body.contains("http"),
        "the stylesheet loads nothing from elsewhere"
    );
    assert!(css.body.contains("/assets/noto-sans-lao-lao-400.woff2"));

    // The font is binary: look at the response's head only.
    let (status, headers, _) = app
        .open_stream("/assets/noto-sans-lao-lao-400.woff2", &[])
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("font/woff2")
    );
    assert!(
        headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("max-age=31536000")),
        "a year"
    );
    let license = app.get("/assets/OFL.txt", &[]).await?;
    assert!(license.body.contains("SIL Open Font License"));
    assert_eq!(
        app.get("/assets/nope.css", &[ENGLISH]).await?.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stuck_list_says_so_when_nats_cannot_be_reached() -> anyhow::Result<()> {
    let mut app = WebApp::start().await?;
    app.bus.nats.kill()?;
    let page = app.get("/stuck", &[LAO]).await?;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.body.contains("ຕອນນີ້ໃຊ້ບໍ່ໄດ້"), "{}", page.body);
    assert!(!page.body.contains("nats"), "no internals on the page");
    // Pages served from the database still work.
    assert_eq!(app.get("/overdue", &[LAO]).await?.status, StatusCode::OK);
    app.stop().await
}

/// A long list is shown a page at a time; the pages together hold every row once, and the
/// links keep the filter and the sort.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_overdue_list_is_paged_and_every_task_is_on_exactly_one_page() -> anyhow::Result<()>
{
    const LATE_CASES: usize = 130;
    let app = WebApp::start().await?;
    let cases: Vec<CaseId> = late_cases(&app, LATE_CASES, |_| 1)
        .await?
        .into_iter()
        .map(|(case, _)| case)
        .collect();

    let first = app
        .get("/overdue?agency=MOIC&sort=case&dir=asc", &[ENGLISH])
        .await?;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.body.contains("Rows 1–100 of 130"), "{}", first.body);
    assert!(
        first.body.contains(
            r#"href="/overdue?agency=MOIC&amp;service=&amp;sort=case&amp;dir=asc&amp;page=2""#
        ),
        "the next page keeps the filter and the sort"
    );
    let second = app
        .get("/overdue?agency=MOIC&sort=case&dir=asc&page=2", &[ENGLISH])
        .await?;
    assert!(second.body.contains("Rows 101–130 of 130"));
    assert!(!second.body.contains(r#"rel="next""#), "the last page");
    let beyond = app
        .get("/overdue?agency=MOIC&sort=case&dir=asc&page=99", &[ENGLISH])
        .await?;
    assert!(
        beyond.body.contains("Rows 101–130 of 130"),
        "past the end: the last page"
    );
    for case in &cases {
        let id = format!(r#"href="/cases/{case}""#);
        let on_pages = [&first, &second]
            .iter()
            .filter(|page| page.body.contains(&id))
            .count();
        assert_eq!(on_pages, 1, "case {case} on {on_pages} pages");
    }
    let zero = app.get("/overdue?page=0", &[ENGLISH]).await?;
    assert_eq!(zero.status, StatusCode::BAD_REQUEST);
    let words = app.get("/overdue?page=two", &[LAO]).await?;
    assert_eq!(words.status, StatusCode::BAD_REQUEST);
    app.stop().await
}

/// The overdue list is paged by the database in its default order (most working days late
/// first) and its reverse: each page holds the rows of exactly its place in that order, ties
/// between equally late tasks broken by case id (reversed with the order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_page_of_the_overdue_list_holds_its_own_rows_in_order() -> anyhow::Result<()> {
    const LATE_CASES: usize = 130;
    let app = WebApp::start().await?;
    // Due after 1 to 4 working days from Monday: four due days, all past by the clock's Monday.
    let cases: Vec<(u32, String)> = late_cases(&app, LATE_CASES, |n| 1 + (n % 4) as u32)
        .await?
        .into_iter()
        .map(|(case, due_days)| (due_days, case.to_string()))
        .collect();

    // Most late first: earliest due first, then case id.
    let mut most_late = cases.clone();
    most_late.sort();
    // Least late first: the exact reverse.
    let mut least_late = most_late.clone();
    least_late.reverse();
    for (query, expected) in [("", &most_late), ("&sort=late&dir=asc", &least_late)] {
        for (page, rows) in [(1, 0..100), (2, 100..LATE_CASES)] {
            let shown = app
                .get(
                    &format!("/overdue?agency=MOIC{query}&page={page}"),
                    &[ENGLISH],
                )
                .await?;
            assert_eq!(shown.status, StatusCode::OK);
            let at = |case: &str| shown.body.find(&format!(r#"href="/cases/{case}""#));
            let positions: Vec<usize> = expected[rows.clone()]
                .iter()
                .map(|(_, case)| at(case).ok_or_else(|| anyhow::anyhow!("{case} missing")))
                .collect::<anyhow::Result<_>>()
                .map_err(|e| e.context(format!("page {page} of {query:?}")))?;
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "page {page} of {query:?} out of order"
            );
            for (_, other) in expected[..rows.start].iter().chain(&expected[rows.end..]) {
                assert_eq!(
                    at(other),
                    None,
                    "{other} is not on page {page} of {query:?}"
                );
            }
        }
    }
    app.stop().await
}

/// Opens `count` cases a minute apart from Monday, hands each to MOIC due `due_days(n)` working
/// days later, and waits until they are projected; returns each case with its due days.
async fn late_cases(
    app: &WebApp,
    count: usize,
    due_days: impl Fn(usize) -> u32,
) -> anyhow::Result<Vec<(CaseId, u32)>> {
    let mut cases = Vec::with_capacity(count);
    for n in 0..count {
        let at = MONDAY + Span::minutes(n as i64);
        let case = app
            .bus
            .open(
                FRONT,
                "enterprise-registration",
                &format!("VTE-2026-{n:05}"),
                "paging",
                at,
            )
            .await?;
        let days = due_days(n);
        app.bus
            .hand_off(case, FRONT, "MOIC", Some(days), at + Span::minutes(1))
            .await?;
        cases.push((case, days));
    }
    let ids: Vec<CaseId> = cases.iter().map(|(case, _)| *case).collect();
    app.projected(&ids).await?;
    Ok(cases)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_taken_back_shows_on_the_timeline_in_both_languages() -> anyhow::Result<()> {
    let app = WebApp::start().await?;
    let case = app
        .bus
        .open(
            FRONT,
            "enterprise-registration",
            "VTE-2026-7",
            "recall",
            MONDAY,
        )
        .await?;
    app.bus
        .hand_off(case, FRONT, "MOIC", None, MONDAY + Span::hours(1))
        .await?;
    app.bus
        .accept(case, "MOIC", MONDAY + Span::hours(2))
        .await?;
    let take_back = onedoor_case::Action::TakeBack {
        holder: onedoor_testkit::code("MOIC"),
        reason: "sent to the wrong ministry".into(),
    };
    app.bus
        .act(case, FRONT, take_back, MONDAY + Span::hours(3))
        .await?;
    app.projected(&[case]).await?;

    let english = app.get(&format!("/cases/{case}"), &[ENGLISH]).await?;
    assert_eq!(english.status, StatusCode::OK);
    for shown in [
        "Task taken back by its sender",
        "<bdi>sent to the wrong ministry</bdi>",
        "taken back by the sender",
    ] {
        assert!(
            english.body.contains(shown),
            "{shown:?} in {}",
            english.body
        );
    }
    let lao = app.get(&format!("/cases/{case}"), &[LAO]).await?;
    for shown in ["ຜູ້ສົ່ງເອົາວຽກຄືນ", "ຜູ້ສົ່ງເອົາຄືນແລ້ວ"]
    {
        assert!(lao.body.contains(shown), "{shown:?} in {}", lao.body);
    }
    app.stop().await
}
