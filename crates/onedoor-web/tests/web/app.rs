//! A running tracker with its web page, on a bus of its own, and a small HTTP client that
//! speaks to it like a browser would (cookies and `Accept-Language` set by hand).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use onedoor_case::{Action, CaseId};
use onedoor_tracker::{ManualClock, Store, TlsIdentity, Tracker};
use onedoor_web::{HashGauge, StaffAccounts, WebConfig, WebPage};
use time::macros::datetime;
use time::{Duration as Span, OffsetDateTime};

use onedoor_testkit::{DEADLINE, FRONT, MONDAY, ServerTask, TestBus, TestDb, wait_until_projected};

/// The moment the tests look at the cases: Monday 30 November 2026, late morning in Vientiane,
/// a week after [`MONDAY`].
pub const NOW: OffsetDateTime = datetime!(2026-11-30 11:00 +07:00);

pub struct WebApp {
    pub bus: TestBus,
    pub store: Store,
    pub web: SocketAddr,
    /// `https` when started with a TLS identity.
    scheme: &'static str,
    client: Client<HttpConnector, Full<Bytes>>,
    server: ServerTask<anyhow::Error>,
    /// Password checks running now and at most so far.
    pub password_checks: Arc<HashGauge>,
    _db: TestDb,
}

/// A response, read whole.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl WebApp {
    /// A bus, a SQLite tracker with its web page (no sign-in), and the clock at [`NOW`].
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_accounts(None).await
    }

    /// The same, with staff accounts (an accounts file's text) and so a sign-in.
    pub async fn start_with_accounts(accounts: Option<&str>) -> anyhow::Result<Self> {
        Self::start_with(accounts, None).await
    }

    /// The same, served over HTTPS with `tls` when given (then [`WebApp::request`], which
    /// speaks plain HTTP, is refused: use a TLS client).
    pub async fn start_with(
        accounts: Option<&str>,
        tls: Option<TlsIdentity>,
    ) -> anyhow::Result<Self> {
        Self::start_configured(accounts, tls, |_| {}).await
    }

    /// [`WebApp::start_with`], changing the page's configuration (limits, proxies) first.
    pub async fn start_configured(
        accounts: Option<&str>,
        tls: Option<TlsIdentity>,
        configure: impl FnOnce(&mut WebConfig),
    ) -> anyhow::Result<Self> {
        let bus = TestBus::start().await?;
        let db = TestDb::sqlite();
        let clock = Arc::new(ManualClock::new(NOW));
        let mut config = bus.tracker_config(&db, clock);
        let scheme = if tls.is_some() { "https" } else { "http" };
        config.tls = tls.clone();
        let mut web_config = WebConfig {
            tls,
            ..WebConfig::default()
        };
        if let Some(text) = accounts {
            web_config.staff_accounts = Some(Arc::new(StaffAccounts::from_toml(
                text,
                "test accounts",
                &bus.registry,
            )?));
        }
        configure(&mut web_config);
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let web_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let web = web_listener.local_addr()?;
        let page = WebPage::new(web_listener, web_config)?;
        let password_checks = page.password_checks();
        // As `onedoor tracker` runs them.
        let server = ServerTask::<anyhow::Error>::spawn(|stopped| async move {
            let tracker = Tracker::start(config, grpc, async move {
                let _ = stopped.await;
            })
            .await?;
            Ok(page.serve_beside(tracker).await?)
        });
        let store = Store::connect(&db.url()).await?;
        Ok(WebApp {
            bus,
            store,
            web,
            scheme,
            client: Client::builder(TokioExecutor::new()).build_http(),
            server,
            password_checks,
            _db: db,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.web)
    }

    /// Waits until the tracker shows every case at its latest version.
    pub async fn projected(&self, cases: &[CaseId]) -> anyhow::Result<()> {
        wait_until_projected(&self.bus, &self.store, cases).await
    }

    pub async fn trace_id(&self, case_id: CaseId) -> anyhow::Result<String> {
        Ok(self
            .store
            .case(&case_id.to_string())
            .await?
            .context("case projected")?
            .trace_id)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<Page> {
        self.send(&self.client, method, path, headers, body).await
    }

    /// [`WebApp::request`] from another loopback address (`127.0.0.2`…), as another computer
    /// would connect (the sign-in limit counts per address).
    pub async fn request_from(
        &self,
        from: IpAddr,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<Page> {
        let mut connector = HttpConnector::new();
        connector.set_local_address(Some(from));
        let client = Client::builder(TokioExecutor::new()).build(connector);
        self.send(&client, method, path, headers, body).await
    }

    /// A CSRF token as a browser gets it with any page: the `Cookie` header pair and the value
    /// its forms carry.
    pub async fn form_token(&self) -> anyhow::Result<(String, String)> {
        let page = self.get("/healthz", &[]).await?;
        let pair = page
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("onedoor_csrf="))
            .and_then(|v| v.split(';').next())
            .context("a CSRF cookie with the first page")?
            .to_owned();
        let token = pair.trim_start_matches("onedoor_csrf=").to_owned();
        Ok((pair, token))
    }

    /// Posts a form as the page's own form would: with the browser's CSRF cookie (added to any
    /// `cookie` header given) and the same token in the body.
    pub async fn post_form(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<Page> {
        let (pair, token) = self.form_token().await?;
        let mut cookie = pair;
        let mut sent: Vec<(&str, &str)> =
            vec![("content-type", "application/x-www-form-urlencoded")];
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("cookie") {
                cookie = format!("{value}; {cookie}");
            } else if !name.eq_ignore_ascii_case("content-type") {
                sent.push((name, value));
            }
        }
        sent.push(("cookie", &cookie));
        let body = if body.is_empty() {
            format!("csrf={token}")
        } else {
            format!("{body}&csrf={token}")
        };
        self.request(Method::POST, path, &sent, &body).await
    }

    async fn send(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<Page> {
        let mut request = Request::builder().method(method).uri(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body.to_owned())))?;
        let response = tokio::time::timeout(DEADLINE, client.request(request))
            .await
            .context("no answer in time")??;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Page {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(body.to_vec())?,
        })
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<Page> {
        self.request(Method::GET, path, headers, "").await
    }

    /// Opens a response and hands back its body as it streams (server-sent events).
    pub async fn open_stream(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, HeaderMap, hyper::body::Incoming)> {
        let mut request = Request::builder().method(Method::GET).uri(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::new()))?;
        let response = tokio::time::timeout(DEADLINE, self.client.request(request))
            .await
            .context("no answer in time")??;
        let (parts, body) = response.into_parts();
        Ok((parts.status, parts.headers, body))
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.stop("tracker").await
    }
}

/// Reads server-sent events from a streaming body until one named `case` arrives (or the
/// deadline passes): returns its `id` and its `data` (data lines joined with newlines), after
/// checking every line of the frame is a field the SSE format knows.
pub async fn next_case_event(
    body: &mut hyper::body::Incoming,
    buffer: &mut String,
    within: Duration,
) -> anyhow::Result<(String, String)> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut event = None;
            let mut id = None;
            let mut data: Vec<&str> = Vec::new();
            for line in frame.lines() {
                if line.is_empty() || line.starts_with(':') {
                    continue; // blank or keep-alive comment
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => event = Some(value.to_owned()),
                    "id" => id = Some(value.to_owned()),
                    "data" => data.push(value),
                    "retry" => {}
                    other => anyhow::bail!("not an SSE field: {other:?} in {frame:?}"),
                }
            }
            if event.as_deref() == Some("case") {
                return Ok((id.context("a case event has an id")?, data.join("\n")));
            }
        }
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .context("no case event in time")?
            .context("the stream ended")??;
        if let Ok(chunk) = frame.into_data() {
            buffer.push_str(std::str::from_utf8(&chunk)?);
        }
    }
}

/// The cases the tests look at, all opened at SAYSETTHA:
/// - `permit`: a construction permit; MPWT held it on time, MOF is 3 working days late, MOIC
///   is within its 10 days;
/// - `shop`: an enterprise registration just handed to MOIC;
/// - `land`: a land title transfer, one working day late at MAE.
pub struct Cases {
    pub permit: CaseId,
    pub shop: CaseId,
    pub land: CaseId,
}

pub async fn the_cases(bus: &TestBus) -> anyhow::Result<Cases> {
    let t = |hours| MONDAY + Span::hours(hours);
    let permit = bus
        .open(
            FRONT,
            "construction-permit",
            "VTE-2026-00042",
            "ເຮືອນຢູ່ອາໄສ 2 ຊັ້ນ, ບ້ານໂພນສະອາດ (two-storey house)",
            t(0),
        )
        .await?;
    bus.hand_off(permit, FRONT, "MPWT", Some(1), t(1)).await?;
    bus.accept(permit, "MPWT", t(2)).await?;
    bus.complete(permit, "MPWT", t(29)).await?;
    // Tuesday 16:00: MOF due end of Wednesday; MOIC has ten working days.
    bus.hand_off(permit, FRONT, "MOF", Some(1), t(31)).await?;
    bus.hand_off(permit, FRONT, "MOIC", Some(10), t(31)).await?;
    bus.accept(permit, "MOF", t(32)).await?;
    bus.accept(permit, "MOIC", t(33)).await?;
    bus.act(
        permit,
        "MOIC",
        Action::RequestInfo {
            question: "Copy of the land title, please".into(),
        },
        t(50),
    )
    .await?;
    let shop = bus
        .open(
            FRONT,
            "enterprise-registration",
            "VTE-2026-00077",
            "Noodle shop",
            t(52),
        )
        .await?;
    bus.hand_off(shop, FRONT, "MOIC", Some(10), t(53)).await?;
    // Thursday 09:00 to MAE, one working day: due end of Friday, one working day late (Monday).
    let land = bus
        .open(
            FRONT,
            "land-title-transfer",
            "VTE-2026-00093",
            "ໂອນສິດນຳໃຊ້ທີ່ດິນ, ບ້ານສີສັງວອນ",
            t(71),
        )
        .await?;
    bus.hand_off(land, FRONT, "MAE", Some(1), t(72)).await?;
    Ok(Cases { permit, shop, land })
}
