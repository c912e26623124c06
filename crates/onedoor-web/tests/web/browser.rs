//! The page in a real browser: Debian's headless Chromium driven through chromedriver (started
//! here on a free port, with a fresh profile), against a running tracker fed by the real write
//! path. Screenshots go to `target/screenshots/` for people to look at.
//!
//! Without `chromium` and `chromedriver` these tests are skipped with a loud note, except in CI
//! (`CI` set), where they fail and say how to install them.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use onedoor_case::CaseId;
use onedoor_web::auth::{HashCost, hash_password};
use serde_json::{Value, json};
use time::Duration as Span;

use crate::app::{NOW, WebApp, the_cases};
use onedoor_testkit::{DEADLINE, FRONT, Hostile, eventually};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the page may take to show a change (the live stream, a navigation).
const UI_DEADLINE: Duration = Duration::from_secs(20);

/// A headless Chromium session. Call [`Browser::quit`]; `Drop` only cleans up after a failure.
pub(crate) struct Browser {
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// `None` when the browser is not installed and this is not CI (the test is skipped).
    pub(crate) async fn start() -> anyhow::Result<Option<Browser>> {
        let chromium = std::env::var("ONEDOOR_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
        let chromedriver =
            std::env::var("ONEDOOR_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into());
        if !Path::new(&chromium).exists() || !Path::new(&chromedriver).exists() {
            let why = format!(
                "{chromium} or {chromedriver} is missing; install Debian's browser with \
                 `apt-get install -y chromium chromium-driver` (bash scripts/setup.sh does it)"
            );
            if std::env::var_os("CI").is_some() {
                anyhow::bail!("browser tests need a browser in CI: {why}");
            }
            eprintln!("\n*** SKIPPED browser test: {why} ***\n");
            return Ok(None);
        }
        let mut last_error = None;
        // chromedriver binds its port itself: pick a free one, and pick again should another
        // process take it in between.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            // Its own process group, so a failed test can end chromedriver and the browser it
            // started together, by that group's id.
            let mut driver = Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .with_context(|| format!("starting {chromedriver}"))?;
            match connect(&mut driver, port, &chromium).await {
                Ok((client, profile)) => {
                    return Ok(Some(Browser {
                        client: Some(client),
                        driver,
                        _profile: profile,
                    }));
                }
                Err(error) => {
                    kill_group(&mut driver);
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("chromedriver did not start")))
    }

    pub(crate) fn client(&self) -> &Client {
        self.client.as_ref().expect("session open until quit")
    }

    /// Ends the session (closing Chromium) and chromedriver.
    pub(crate) async fn quit(mut self) {
        if let Some(client) = self.client.take()
            && let Err(error) = client.close().await
        {
            eprintln!("closing the browser session: {error}");
        }
        kill_group(&mut self.driver);
    }

    pub(crate) async fn goto(&self, url: &str) -> anyhow::Result<()> {
        Ok(self.client().goto(url).await?)
    }

    pub(crate) async fn text(&self, css: &str) -> anyhow::Result<String> {
        Ok(self.client().find(Locator::Css(css)).await?.text().await?)
    }

    pub(crate) async fn js(&self, script: &str) -> anyhow::Result<Value> {
        Ok(self.client().execute(script, vec![]).await?)
    }

    /// Presses the language switch, as a person would, and waits until the page is in `lang`
    /// (`lo` or `en`).
    pub(crate) async fn switch_language(&self, lang: &str) -> anyhow::Result<()> {
        self.client()
            .find(Locator::Css("#lang-switch"))
            .await?
            .click()
            .await?;
        let script = format!("return document.documentElement.lang === '{lang}';");
        self.until(&format!("the page in {lang}"), &script).await
    }

    /// Polls `script` (a JS expression body that `return`s) until it returns `true`.
    pub(crate) async fn until(&self, what: &str, script: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let last = self.js(script).await?;
            if last == Value::Bool(true) {
                return Ok(());
            }
            if started.elapsed() > UI_DEADLINE {
                anyhow::bail!("{what}: not seen within {UI_DEADLINE:?} (last: {last})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves the viewport as `name.png`, the swimlanes in view as `name-timeline.png` (on a
    /// case page), and the whole page as `name-full.png`.
    pub(crate) async fn screenshots(
        &self,
        name: &str,
        width: u32,
        height: u32,
    ) -> anyhow::Result<()> {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir)?;
        let client = self.client();
        client.set_window_size(width, height).await?;
        std::fs::write(dir.join(format!("{name}.png")), client.screenshot().await?)?;
        let scrolled = self
            .js("const h = document.getElementById('timeline-heading'); \
                 if (!h) return false; h.scrollIntoView(); return true;")
            .await?;
        if scrolled == Value::Bool(true) {
            std::fs::write(
                dir.join(format!("{name}-timeline.png")),
                client.screenshot().await?,
            )?;
            self.js("window.scrollTo(0, 0); return true;").await?;
        }
        let full = self
            .js("return Math.ceil(document.documentElement.scrollHeight);")
            .await?
            .as_u64()
            .unwrap_or(u64::from(height))
            .clamp(u64::from(height), 4000);
        client
            .set_window_size(width, u32::try_from(full).unwrap_or(height))
            .await?;
        std::fs::write(
            dir.join(format!("{name}-full.png")),
            client.screenshot().await?,
        )?;
        client.set_window_size(width, height).await?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// Ends chromedriver and everything it started (its process group, by id), then reaps it.
fn kill_group(driver: &mut Child) {
    if let Ok(None) = driver.try_wait() {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = driver.kill();
    }
    let _ = driver.wait();
}

async fn connect(
    driver: &mut Child,
    port: u16,
    chromium: &str,
) -> anyhow::Result<(Client, tempfile::TempDir)> {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if let Some(status) = driver.try_wait()? {
            anyhow::bail!("chromedriver exited: {status}");
        }
        if started.elapsed() > UI_DEADLINE {
            anyhow::bail!("chromedriver did not listen on port {port}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = tempfile::tempdir()?;
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--lang=en-US",
                // One test signs in over HTTPS with the development CA, which this throwaway
                // profile does not trust.
                "--ignore-certificate-errors",
                "--window-size=1366,768",
                format!("--user-data-dir={}", profile.path().display()),
            ],
            // The browser asks for English, like a clerk's machine set up in English.
            "prefs": { "intl.accept_languages": "en-US,en" },
        },
    });
    let Value::Object(capabilities) = capabilities else {
        anyhow::bail!("capabilities are an object");
    };
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .context("starting a Chromium session")?;
    Ok((client, profile))
}

/// `target/screenshots/`: `CARGO_TARGET_DIR` when set, else the `target/` this test binary was
/// built into (the nearest ancestor holding cargo's `CACHEDIR.TAG`).
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").exists())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_finds_a_case_by_trace_id_and_watches_it_move_without_reloading()
-> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let outcome = find_and_watch(&browser).await;
    browser.quit().await;
    outcome
}

async fn find_and_watch(browser: &Browser) -> anyhow::Result<()> {
    let app = WebApp::start().await?;
    let cases = the_cases(&app.bus).await?;
    app.projected(&[cases.permit, cases.shop, cases.land])
        .await?;
    let trace_id = app.trace_id(cases.permit).await?;

    browser.goto(&app.url("/")).await?;
    let client = browser.client();
    client
        .find(Locator::Css("#q"))
        .await?
        .send_keys(&trace_id)
        .await?;
    client
        .find(Locator::Css("#search-button"))
        .await?
        .click()
        .await?;
    let wanted = format!("/cases/{}", cases.permit);
    browser
        .until(
            "the case page after searching by trace id",
            &format!("return location.pathname === '{wanted}';"),
        )
        .await?;
    assert_eq!(browser.text("#case-id").await?, cases.permit.to_string());
    assert_eq!(browser.text("#trace-id").await?, trace_id);
    assert_eq!(browser.text("h1").await?, "Construction permit");
    let lanes = browser
        .js("return document.querySelectorAll('#timeline g.lane').length;")
        .await?;
    assert_eq!(lanes, json!(4), "front office, MPWT, MOF, MOIC");

    // A marker that a reload would wipe out.
    browser
        .js("window.__stillTheSamePage = true; return true;")
        .await?;
    // Wait for the live stream to be up, so the test sees the push rather than a first read.
    browser
        .until(
            "the live stream connected",
            "return document.getElementById('live-status').textContent.length > 0;",
        )
        .await?;
    app.bus
        .hand_off(
            cases.permit,
            FRONT,
            "MOPS",
            Some(5),
            NOW - Span::minutes(30),
        )
        .await?;
    browser
        .until(
            "a new lane for MOPS, pushed to the open page",
            "return document.querySelector('#timeline g.lane[data-agency=\"MOPS\"]') !== null;",
        )
        .await?;
    assert_eq!(
        browser
            .js("return window.__stillTheSamePage === true;")
            .await?,
        json!(true),
        "the page was not reloaded"
    );
    assert_eq!(
        browser
            .js("return document.querySelector('#case-live').getAttribute('data-version');")
            .await?,
        json!("10")
    );
    let last_row = browser
        .text("table.events tbody tr:last-child td.kind")
        .await?;
    assert_eq!(last_row, "Handed over");
    assert!(
        browser.text("#live-status").await?.starts_with("Updated"),
        "the clerk is told the page moved"
    );
    browser.screenshots("case-en", 1366, 768).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_to_lao_shows_lao_labels_in_the_shipped_lao_font() -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let outcome = switch_to_lao(&browser).await;
    browser.quit().await;
    outcome
}

async fn switch_to_lao(browser: &Browser) -> anyhow::Result<()> {
    let app = WebApp::start().await?;
    let cases = the_cases(&app.bus).await?;
    app.projected(&[cases.permit, cases.shop, cases.land])
        .await?;

    browser
        .goto(&app.url(&format!("/cases/{}", cases.permit)))
        .await?;
    assert_eq!(
        browser.js("return document.documentElement.lang;").await?,
        json!("en")
    );
    // Keyboard: the switch is a button, reached and pressed like any other.
    browser.switch_language("lo").await?;
    assert_eq!(browser.text("h1").await?, "ໃບອະນຸຍາດປຸກສ້າງ");
    assert!(browser.text("nav").await?.contains("ເກີນກຳນົດ"));
    assert!(browser.text("#events-title").await?.contains("ເຫດການ"));
    assert!(browser.text(".case-header").await?.contains("ພະຈິກ 2026"));
    // The shipped Noto Sans Lao is what draws the Lao text (not a fallback, not boxes).
    let font = browser
        .js("return document.fonts.ready.then(() => \
               document.fonts.check('16px \"Noto Sans Lao\"', 'ສະບາຍດີ') && \
               Array.from(document.fonts).some(f => f.family.includes('Noto Sans Lao') \
                 && f.status === 'loaded'));")
        .await?;
    assert_eq!(font, json!(true), "Noto Sans Lao loaded");
    browser.screenshots("case-lo", 1366, 768).await?;

    // Remembered: the next page is in Lao too.
    browser.goto(&app.url("/overdue")).await?;
    assert_eq!(
        browser.js("return document.documentElement.lang;").await?,
        json!("lo")
    );
    assert!(browser.text("h1").await?.contains("ເກີນກຳນົດ"));
    assert!(browser.text("#overdue").await?.contains("ຊ້າ 3 ວັນລັດຖະການ"));
    browser.screenshots("overdue-lo", 1366, 768).await?;

    // A phone: nothing wider than the screen but the swimlanes' own scroll box.
    browser.client().set_window_size(390, 844).await?;
    browser
        .goto(&app.url(&format!("/cases/{}", cases.permit)))
        .await?;
    let overflow = browser
        .js("return document.documentElement.scrollWidth <= window.innerWidth + 1;")
        .await?;
    assert_eq!(overflow, json!(true), "no sideways scrolling of the page");
    browser.screenshots("case-lo-phone", 390, 844).await?;

    // And back to English, for the English overdue list.
    browser.client().set_window_size(1366, 768).await?;
    browser.goto(&app.url("/overdue")).await?;
    browser.switch_language("en").await?;
    assert_eq!(browser.text("h1").await?, "Overdue tasks");
    browser.screenshots("overdue-en", 1366, 768).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_case_id_shows_the_friendly_page() -> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let outcome = unknown_case(&browser).await;
    browser.quit().await;
    outcome
}

async fn unknown_case(browser: &Browser) -> anyhow::Result<()> {
    let app = WebApp::start().await?;
    let unknown = CaseId::generate();
    browser.goto(&app.url(&format!("/cases/{unknown}"))).await?;
    assert_eq!(browser.text("h1").await?, "Not found");
    assert!(
        browser
            .text("#error-message")
            .await?
            .starts_with("No case with this ID is known")
    );
    // The way back is a real link to the search.
    browser
        .client()
        .find(Locator::LinkText("Back to the search"))
        .await?
        .click()
        .await?;
    browser
        .until("the search page", "return location.pathname === '/';")
        .await?;
    // Typing an id that is not there from the search box gives the same friendly page.
    let client = browser.client();
    client
        .find(Locator::Css("#q"))
        .await?
        .send_keys(&unknown.to_string())
        .await?;
    client
        .find(Locator::Css("#search-button"))
        .await?
        .click()
        .await?;
    browser
        .until(
            "the friendly page",
            "return document.getElementById('error-message') !== null;",
        )
        .await?;
    assert!(
        browser
            .text("#error-message")
            .await?
            .starts_with("No case with this ID is known")
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_signs_in_over_https_with_the_keyboard_and_sees_their_offices_cases()
-> anyhow::Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let outcome = sign_in_with_keyboard(&browser).await;
    browser.quit().await;
    outcome
}

async fn sign_in_with_keyboard(browser: &Browser) -> anyhow::Result<()> {
    let accounts = format!(
        "[[account]]\nname = \"somchai\"\nrole = \"front-office\"\noffice = \"{FRONT}\"\n\
         password_hash = \"{}\"\n",
        hash_password("counter one", HashCost::TestOnly)?
    );
    // Over HTTPS, as `onedoor up` serves it: the session and CSRF cookies are `Secure`, which
    // a browser keeps only for HTTPS pages.
    let pki = onedoor_grpc::devpki::DevPki::generate([FRONT])?;
    let tls = onedoor_tracker::TlsIdentity {
        cert_pem: pki.server.cert_pem.clone(),
        key_pem: pki.server.key_pem.clone(),
        client_ca_pem: None,
    };
    let app = WebApp::start_with(Some(&accounts), Some(tls)).await?;
    assert!(app.url("/").starts_with("https://"));
    let cases = the_cases(&app.bus).await?;
    app.projected(&[cases.permit, cases.shop, cases.land])
        .await?;

    // Asking for a case first: the sign-in page, then straight back to the case.
    browser
        .goto(&app.url(&format!("/cases/{}", cases.permit)))
        .await?;
    browser
        .until("the sign-in page", "return location.pathname === '/login';")
        .await?;
    browser.screenshots("login-en", 1366, 768).await?;
    let name = browser.client().find(Locator::Css("#name")).await?;
    name.click().await?;
    // Name, Tab to the password, Enter to send: no mouse needed.
    name.send_keys(&format!(
        "somchai{}counter one{}",
        char::from(Key::Tab),
        char::from(Key::Enter)
    ))
    .await?;
    let wanted = format!("/cases/{}", cases.permit);
    browser
        .until(
            "the case page after signing in",
            &format!("return location.pathname === '{wanted}';"),
        )
        .await?;
    assert!(browser.text("#signed-in").await?.starts_with("somchai"));
    // The live stream works for a signed-in clerk too.
    browser
        .until(
            "the live stream connected",
            "return document.getElementById('live-status').textContent.length > 0 \
             && !document.getElementById('live-status').classList.contains('lost');",
        )
        .await?;
    browser
        .client()
        .find(Locator::Css("#sign-out"))
        .await?
        .click()
        .await?;
    browser
        .until("signed out", "return location.pathname === '/login';")
        .await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_sees_the_messages_not_accepted_on_a_case_in_both_languages() -> anyhow::Result<()>
{
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let outcome = messages_not_accepted(&browser).await;
    browser.quit().await;
    outcome
}

/// Hostile messages on a case held by MOIC, published on MOIC's subjects: one the rules
/// refuse, one that is no event, and one whose subject names a made-up sender with markup in
/// it. The page lists them with sequence, sender, reason and time, and runs none of the markup.
async fn messages_not_accepted(browser: &Browser) -> anyhow::Result<()> {
    let app = WebApp::start().await?;
    let bus = &app.bus;
    let case_id = bus.case_held_by("MOIC", NOW).await?;
    let mut hostile: Vec<Hostile> = bus
        .hostile_from(case_id, "MOIC")
        .await?
        .into_iter()
        .filter(|h| h.reason != "bad_signature")
        .collect();
    let mut marked = hostile[0].clone();
    marked.subject = format!("onedoor.v1.case.{case_id}.<i>X</i>._");
    marked.reason = "subject_mismatch";
    hostile.push(marked);
    let sequences = bus.publish_hostile(&hostile).await?;
    let listed = eventually("the messages recorded", DEADLINE, || async {
        let listed = app.store.rejected_for_case(&case_id.to_string()).await?;
        Ok((listed.len() == hostile.len())
            .then_some(())
            .ok_or(format!("{} so far", listed.len())))
    })
    .await;
    listed?;

    browser.goto(&app.url(&format!("/cases/{case_id}"))).await?;
    assert_eq!(
        browser.text("#quarantined-title").await?,
        "Messages not accepted"
    );
    let rows = browser
        .js(
            "return Array.from(document.querySelectorAll('#quarantined tbody tr')).map(r => \
               [Number(r.dataset.sequence), r.dataset.reason]);",
        )
        .await?;
    let expected: Vec<Value> = sequences
        .iter()
        .zip(&hostile)
        .map(|(sequence, h)| json!([sequence, h.reason]))
        .collect();
    assert_eq!(rows, json!(expected));
    let table = browser.text("#quarantined").await?;
    for words in [
        "Sequence",
        "Sender",
        "Reason",
        "not allowed by the case rules",
        "unreadable",
    ] {
        assert!(table.contains(words), "{words} in {table}");
    }
    assert!(
        table.contains("<i>X</i>"),
        "the made-up sender as text: {table}"
    );
    let markup = browser
        .js("return document.querySelectorAll('#quarantined i, #quarantined script').length;")
        .await?;
    assert_eq!(markup, json!(0), "no markup from a subject or payload");
    browser.screenshots("quarantined-en", 1366, 768).await?;

    browser.switch_language("lo").await?;
    assert_eq!(browser.text("#quarantined-title").await?, "ຂໍ້ຄວາມທີ່ບໍ່ຖືກຮັບເອົາ");
    let table = browser.text("#quarantined").await?;
    for words in ["ລຳດັບ", "ຜູ້ສົ່ງ", "ເຫດຜົນ", "ລະບຽບຂອງຄຳຮ້ອງບໍ່ອະນຸຍາດ", "ອ່ານບໍ່ໄດ້"]
    {
        assert!(table.contains(words), "{words} in {table}");
    }
    browser.screenshots("quarantined-lo", 1366, 768).await?;
    app.stop().await
}
