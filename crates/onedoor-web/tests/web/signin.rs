//! Sign-in under attack: concurrent guesses stay under the delays and the cap on password
//! checks (memory stated and measured), loopback is one client, and a stranger's wrong
//! passwords slow the clerk at most for seconds, never stop them.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::http::{Method, StatusCode};
use onedoor_web::auth::{HashCost, hash_password};
use onedoor_web::{Cidr, TrustedProxies};

use crate::app::{Page, WebApp};
use crate::hardening::{ENGLISH, FORM, set_cookies};
use onedoor_testkit::{DEADLINE, eventually};

/// The process's peak resident memory (`VmHWM`), in KiB.
fn peak_rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("VmHWM in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("a number")?
        .parse()?)
}

/// How many delays (1 s, 2 s, 4 s …) can have run out within `elapsed`.
fn delays_passed(elapsed: Duration) -> usize {
    (elapsed.as_secs_f64() + 1.0).log2().floor() as usize
}

/// An accounts file with real (standard-cost) hashes: a clerk and a supervisor.
fn real_accounts() -> anyhow::Result<String> {
    Ok(format!(
        "[[account]]\nname = \"somchai\"\nrole = \"front-office\"\noffice = \"ODSC-VTE-SAYSETTHA\"\npassword_hash = \"{}\"\n\n\
         [[account]]\nname = \"boss\"\nrole = \"supervisor\"\npassword_hash = \"{}\"\n",
        hash_password("counter one", HashCost::Standard)?,
        hash_password("the boss", HashCost::TestOnly)?,
    ))
}

/// A sign-in with the browser's CSRF token, from `address`, with extra headers.
async fn sign_in(
    app: &WebApp,
    address: IpAddr,
    name: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<Page> {
    let (pair, token) = app.form_token().await?;
    let mut cookie = pair;
    let mut headers = vec![FORM, ENGLISH];
    for (header, value) in extra {
        if header.eq_ignore_ascii_case("cookie") {
            cookie = format!("{value}; {cookie}");
        } else {
            headers.push((header, value));
        }
    }
    headers.push(("cookie", &cookie));
    let body = format!(
        "name={name}&password={}&csrf={token}",
        password.replace(' ', "+")
    );
    app.request_from(address, Method::POST, "/login", &headers, &body)
        .await
}

fn cookie_pair(page: &Page, name: &str) -> Option<String> {
    set_cookies(&page.headers)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_wrong_sign_ins_stay_under_the_delays_and_the_hash_cap()
-> anyhow::Result<()> {
    let app = WebApp::start_configured(Some(&real_accounts()?), None, |config| {
        config.limits.password_checks = 2;
    })
    .await?;
    let before = peak_rss_kib()?;
    // From 50 loopback addresses (one client): half on the clerk's account, half guessing
    // names.
    let attempts = (0..50u8).map(|i| {
        let app = &app;
        async move {
            let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i));
            let name = if i % 2 == 0 {
                "somchai".to_owned()
            } else {
                format!("guess{i}")
            };
            sign_in(app, from, &name, "wrong", &[])
                .await
                .map(|page| (name, page))
        }
    });
    let started = Instant::now();
    let answers = tokio::time::timeout(DEADLINE, futures::future::try_join_all(attempts))
        .await
        .context("every sign-in answered")??;
    let grown_mib = peak_rss_kib()?.saturating_sub(before) / 1024;

    let checked: Vec<&String> = answers
        .iter()
        .filter(|(_, page)| page.status == StatusCode::UNAUTHORIZED)
        .map(|(name, _)| name)
        .collect();
    for (name, page) in &answers {
        assert!(
            matches!(
                page.status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ),
            "{name}: {}",
            page.status
        );
        if page.status == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = page.header("retry-after").parse()?;
            assert!((1..=300).contains(&retry), "Retry-After {retry}");
        }
    }
    // The loopback client gets its 10 free attempts, the account one at a time; on a slow
    // machine a delay or two may pass during the burst.
    let allowed = 10 + delays_passed(started.elapsed());
    assert!(
        !checked.is_empty() && checked.len() <= allowed,
        "{} checked, {allowed} allowed: {checked:?}",
        checked.len()
    );
    assert!(checked.iter().filter(|n| n.as_str() == "somchai").count() <= 1);
    println!(
        "50 concurrent wrong sign-ins: {} checked, peak RSS grew {grown_mib} MiB",
        checked.len()
    );
    let peak = app.password_checks.peak();
    assert!((1..=2).contains(&peak), "password checks at once: {peak}");
    assert_eq!(app.password_checks.in_flight(), 0);
    // Stated cap: 2 checks × 19 MiB, plus the server's own; ten at once would take 190 MiB.
    assert!(grown_mib < 100, "peak RSS grew {grown_mib} MiB");
    app.stop().await
}

/// A sign-in through the proxy on loopback, which names the client in `extra`.
async fn proxied(
    app: &WebApp,
    name: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<Page> {
    sign_in(app, IpAddr::V4(Ipv4Addr::LOCALHOST), name, password, extra).await
}

/// Signs in until the delay has passed (a refusal is 429 with its wait), within the deadline.
async fn sign_in_when_allowed(
    app: &WebApp,
    name: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<(Page, Duration)> {
    let start = Instant::now();
    let what = format!("{name} to be let in");
    let page = eventually(&what, DEADLINE, || async {
        let page = proxied(app, name, password, extra).await?;
        Ok(if page.status == StatusCode::TOO_MANY_REQUESTS {
            Err(format!("429, retry after {}", page.header("retry-after")))
        } else {
            Ok(page)
        })
    })
    .await?;
    Ok((page, start.elapsed()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_wrong_passwords_do_not_stop_the_clerk() -> anyhow::Result<()> {
    let accounts = crate::hardening::accounts()?
        + &format!(
            "\n[[account]]\nname = \"boss\"\nrole = \"supervisor\"\npassword_hash = \"{}\"\n",
            hash_password("the boss", HashCost::TestOnly)?
        );
    // Behind a proxy on this machine, which names each client in X-Forwarded-For.
    let app = WebApp::start_configured(Some(&accounts), None, |config| {
        let loopback: Cidr = "127.0.0.0/8".parse().expect("a block");
        config.trusted_proxies = TrustedProxies(vec![loopback]);
    })
    .await?;
    let clerk_desk = ("x-forwarded-for", "198.51.100.7");
    let stranger = ("x-forwarded-for", "203.0.113.9");
    let clerk_phone = ("x-forwarded-for", "192.0.2.44");

    let (first, _) = sign_in_when_allowed(&app, "somchai", "counter one", &[clerk_desk]).await?;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let device = cookie_pair(&first, "onedoor_device").context("a device cookie")?;

    // The stranger guesses as fast as they can: one check, then delays.
    let (mut checked, mut refused) = (0, 0);
    let started = Instant::now();
    for _ in 0..8 {
        let page = proxied(&app, "somchai", "guess", &[stranger]).await?;
        match page.status {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => anyhow::bail!("stranger got {other}"),
        }
    }
    let allowed = 1 + delays_passed(started.elapsed());
    assert!(
        checked <= allowed && refused > 0,
        "the stranger was delayed: {checked} checked ({allowed} allowed), {refused} refused"
    );

    // The clerk's own computer is let through at once, from anywhere.
    let desk = proxied(
        &app,
        "somchai",
        "counter one",
        &[stranger, ("cookie", &device)],
    )
    .await?;
    assert_eq!(desk.status, StatusCode::SEE_OTHER, "{}", desk.body);

    // A new computer is slowed by seconds, not stopped.
    let (phone, waited) =
        sign_in_when_allowed(&app, "somchai", "counter one", &[clerk_phone]).await?;
    assert_eq!(phone.status, StatusCode::SEE_OTHER);
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");

    // The stranger again; the supervisor sees the account and clears the wait.
    for _ in 0..2 {
        sign_in_when_allowed(&app, "somchai", "guess", &[stranger]).await?;
    }
    let refused = proxied(&app, "somchai", "counter one", &[clerk_phone]).await?;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let (boss, _) = sign_in_when_allowed(&app, "boss", "the boss", &[clerk_desk]).await?;
    let session = cookie_pair(&boss, "onedoor_session").context("a session")?;
    let list = app
        .get("/sign-ins", &[ENGLISH, ("cookie", &session)])
        .await?;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("somchai"), "{}", list.body);
    let clerk_session = cookie_pair(&desk, "onedoor_session").context("a session")?;
    let not_boss = app
        .get("/sign-ins", &[ENGLISH, ("cookie", &clerk_session)])
        .await?;
    assert_eq!(not_boss.status, StatusCode::FORBIDDEN);
    let cleared = app
        .post_form(
            "/sign-ins/unlock",
            &[ENGLISH, ("cookie", &session)],
            "name=somchai",
        )
        .await?;
    assert_eq!(cleared.status, StatusCode::SEE_OTHER);
    let after = proxied(&app, "somchai", "counter one", &[clerk_phone]).await?;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "unlocked at once");
    app.stop().await
}
