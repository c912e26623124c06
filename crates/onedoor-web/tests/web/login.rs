//! Staff sign-in: per-front-office accounts see only their office's cases; supervisors see
//! everything; without a session every page leads to the sign-in page.

use axum::http::StatusCode;
use onedoor_web::auth::{HashCost, hash_password};
use time::Duration as Span;

use crate::app::{Page, WebApp, the_cases};
use onedoor_testkit::{MONDAY, OTHER_FRONT};

const ENGLISH: (&str, &str) = ("accept-language", "en-US,en;q=0.9");

fn accounts() -> anyhow::Result<String> {
    Ok(format!(
        r#"
[[account]]
name = "somchai"
role = "front-office"
office = "ODSC-VTE-SAYSETTHA"
password_hash = "{}"

[[account]]
name = "boss"
role = "supervisor"
password_hash = "{}"
"#,
        hash_password("counter one", HashCost::TestOnly)?,
        hash_password("sees it all", HashCost::TestOnly)?,
    ))
}

/// Signs in; returns the `Cookie` header value for the session.
async fn sign_in(app: &WebApp, name: &str, password: &str) -> anyhow::Result<String> {
    let page = app
        .post_form(
            "/login",
            &[ENGLISH],
            &format!(
                "name={name}&password={}&next=%2Foverdue",
                password.replace(' ', "+")
            ),
        )
        .await?;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.header("location"), "/overdue");
    let cookie = page.header("set-cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    Ok(cookie.split(';').next().unwrap_or_default().to_owned())
}

async fn get_as(app: &WebApp, cookie: &str, path: &str) -> anyhow::Result<Page> {
    app.get(path, &[ENGLISH, ("cookie", cookie)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_every_page_leads_to_the_sign_in_page() -> anyhow::Result<()> {
    let app = WebApp::start_with_accounts(Some(&accounts()?)).await?;
    let page = app.get("/overdue?sort=due", &[ENGLISH]).await?;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.header("location"),
        "/login?next=%2Foverdue%3Fsort%3Ddue"
    );

    let form = app.get("/login?next=%2Foverdue", &[ENGLISH]).await?;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(r#"autocomplete="current-password""#));
    assert!(
        form.body
            .contains(r#"<label for="password">Password</label>"#)
    );
    let lao = app.get("/login", &[("accept-language", "lo")]).await?;
    assert!(lao.body.contains("ເຂົ້າສູ່ລະບົບ"));

    // What the sign-in page itself needs stays open.
    assert_eq!(app.get("/healthz", &[]).await?.status, StatusCode::OK);
    assert_eq!(app.get("/readyz", &[]).await?.status, StatusCode::OK);
    assert_eq!(
        app.get("/assets/OFL.txt", &[]).await?.status,
        StatusCode::OK
    );
    // A live stream cannot follow a redirect: it is told plainly.
    let live = app
        .get("/cases/01JD8X3Q6V9K2M4N5P7R8S9T0V/live", &[ENGLISH])
        .await?;
    assert_eq!(live.status, StatusCode::UNAUTHORIZED);

    // A wrong password, or a name nobody has, gets the same answer.
    for (name, password) in [("somchai", "wrong"), ("nobody", "counter+one")] {
        let refused = app
            .post_form(
                "/login",
                &[ENGLISH],
                &format!("name={name}&password={password}"),
            )
            .await?;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(refused.body.contains("Wrong name or password."));
        assert!(!refused.header("set-cookie").contains("onedoor_session"));
    }
    // A made-up session is no session.
    let forged = get_as(&app, "onedoor_session=00ff", "/overdue").await?;
    assert_eq!(forged.status, StatusCode::SEE_OTHER);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_office_clerk_sees_only_their_offices_cases_and_a_supervisor_sees_all()
-> anyhow::Result<()> {
    let app = WebApp::start_with_accounts(Some(&accounts()?)).await?;
    let cases = the_cases(&app.bus).await?;
    // A late case of another front office.
    let pakse = app
        .bus
        .open(
            OTHER_FRONT,
            "construction-permit",
            "CPS-9",
            "Pakse warehouse",
            MONDAY,
        )
        .await?;
    app.bus
        .hand_off(pakse, OTHER_FRONT, "MPWT", Some(1), MONDAY + Span::hours(1))
        .await?;
    app.projected(&[cases.permit, cases.shop, cases.land, pakse])
        .await?;

    let clerk = sign_in(&app, "somchai", "counter one").await?;
    let own = get_as(&app, &clerk, &format!("/cases/{}", cases.permit)).await?;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.body.contains("somchai"), "who is signed in is shown");
    let other = get_as(&app, &clerk, &format!("/cases/{pakse}")).await?;
    assert_eq!(
        other.status,
        StatusCode::NOT_FOUND,
        "not even confirmed to exist"
    );
    let searched = get_as(&app, &clerk, &format!("/search?q={pakse}")).await?;
    assert_eq!(searched.status, StatusCode::NOT_FOUND);
    let by_text = get_as(&app, &clerk, "/search?q=CPS-9").await?;
    assert_eq!(by_text.status, StatusCode::NOT_FOUND);
    let live = get_as(&app, &clerk, &format!("/cases/{pakse}/live")).await?;
    assert_eq!(live.status, StatusCode::NOT_FOUND);
    let home = get_as(&app, &clerk, "/?office=ODSC-CPS-PAKSE").await?;
    assert!(home.body.contains(&cases.permit.to_string()));
    assert!(
        !home.body.contains(&pakse.to_string()),
        "own office only, whatever the link"
    );
    let overdue = get_as(&app, &clerk, "/overdue").await?;
    assert!(overdue.body.contains(&cases.permit.to_string()));
    assert!(!overdue.body.contains(&pakse.to_string()));
    let workload = get_as(&app, &clerk, "/workload").await?;
    assert_eq!(workload.status, StatusCode::FORBIDDEN);
    assert!(workload.body.contains("This page is for supervisors."));

    let boss = sign_in(&app, "boss", "sees it all").await?;
    assert_eq!(
        get_as(&app, &boss, &format!("/cases/{pakse}"))
            .await?
            .status,
        StatusCode::OK
    );
    let overdue = get_as(&app, &boss, "/overdue").await?;
    assert!(overdue.body.contains(&pakse.to_string()));
    assert!(overdue.body.contains(&cases.permit.to_string()));
    assert_eq!(
        get_as(&app, &boss, "/workload").await?.status,
        StatusCode::OK
    );

    // Signing out ends the session on the server, not only in the browser.
    let out = app.post_form("/logout", &[("cookie", &clerk)], "").await?;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    let after = get_as(&app, &clerk, "/overdue").await?;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    app.stop().await
}
