//! The staff web page: what an ODSC clerk uses to answer "where is my application?", in Lao and
//! English, served beside a running tracker and read from its database.
//!
//! Server-rendered HTML (maud, which escapes every value) with a little vanilla JavaScript for
//! the live case page; every asset, the Lao font included, is embedded in the binary, because
//! government networks may be cut off from the internet.
//!
//! It listens on its own port, not on the gRPC one: browsers speak HTTP/1.1 and the page is
//! opened to an office network behind a sign-in, while CaseTracker gRPC stays for systems;
//! separate listeners let an operator expose one without the other. It reads the tracker only
//! through [`onedoor_tracker::TrackerHandle`] (case views, lists, statistics, stuck deliveries,
//! "case moved", the clock), never its store.
//!
//! # Layout
//!
//! - [`WebPage`]: the page on a bound listener ([`WebPage::new`] checks the TLS identity), then
//!   [`WebPage::serve`] until the tracker stops, or [`WebPage::serve_beside`] a started
//!   [`onedoor_tracker::Tracker`] until it has stopped; [`WebConfig`]: staff accounts and TLS.
//! - `/healthz` answers while the process lives; `/readyz` is 503 while the tracker cannot
//!   store events (its views fall behind).
//! - `pages`: the handlers (search, case, workload, language switch); `pages::lists`: the
//!   overdue and stuck lists, their filters, sorting and pager.
//! - `live`: the case page's server-sent events, woken by the projection.
//! - `timeline`: the swimlanes (inline SVG).
//! - [`auth`]: staff accounts (front office or supervisor), sessions, [`auth::Viewer`]; `login`:
//!   sign-in pages and the middleware that finds the viewer of every request; `throttle`: the
//!   delays on failed sign-ins; `hashing`: the cap on password checks at once; `unlock`: the
//!   supervisor's page that clears an account's delay; `csrf`: the token every
//!   state-changing form carries; `headers`: the security headers on every response.
//! - `client`: who a request comes from (loopback as one, IPv6 by /64, trusted proxies).
//! - `layout`: the shared frame and the error page; `error`: [`WebError`], the crate's one
//!   error type, and its one mapping to HTTP statuses; [`i18n`]: the message catalogue,
//!   language choice, dates.
//! - `listener`: the page's listener, plain TCP or TLS (rustls, ring), with the TLS handshake
//!   deadline and the cap on connections per client; `serve`: HTTP/1.1 on each connection,
//!   with the header-read (and idle) timeout.
//! - `assets`: CSS, JavaScript and fonts (under `assets/`), embedded.

mod assets;
pub mod auth;
mod client;
mod csrf;
mod error;
mod hashing;
mod headers;
pub mod i18n;
mod layout;
mod listener;
mod live;
mod login;
mod names_then;
mod pages;
mod serve;
mod throttle;
mod timeline;
mod unlock;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use onedoor_case::{AgencyCode, Registry, ServiceCode};
use onedoor_tracker::{TlsIdentity, Tracker, TrackerHandle};
use tokio::net::TcpListener;

pub use auth::StaffAccounts;
pub use client::{BadCidr, Cidr, TrustedProxies};
pub use error::WebError;
pub use hashing::HashGauge;
pub use i18n::Lang;

use self::auth::Sessions;
use self::hashing::HashGate;
use self::listener::{ConnectionCap, WebListener};

/// What the page needs besides the tracker.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// Staff accounts for sign-in; `None`: the page has no sign-in (development on loopback).
    pub staff_accounts: Option<Arc<StaffAccounts>>,
    /// Serve over HTTPS with this identity (the tracker's own); `None`: plain HTTP.
    pub tls: Option<TlsIdentity>,
    /// Proxies whose `X-Forwarded-For` names the client; empty: the header is ignored.
    pub trusted_proxies: TrustedProxies,
    pub limits: Limits,
}

/// How long and how much one client may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request's whole head must arrive within this, and an idle connection closes after it.
    pub header_read: Duration,
    pub tls_handshake: Duration,
    /// Password checks at once (each Argon2 check takes 19 MiB and a core).
    pub password_checks: usize,
    /// Connections open at once per client (loopback is one client).
    pub connections_per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read: Duration::from_secs(10),
            tls_handshake: Duration::from_secs(10),
            password_checks: hashing::default_concurrency(),
            // An office behind one address: a few dozen clerks, a few connections each.
            connections_per_client: 256,
        }
    }
}

/// The page on its own listener, ready to serve beside a running tracker.
pub struct WebPage {
    listener: WebListener,
    config: WebConfig,
    hashing: HashGate,
}

impl WebPage {
    /// Checks the TLS identity and takes the listener, so a page that cannot serve is refused
    /// before the tracker starts.
    pub fn new(listener: TcpListener, config: WebConfig) -> Result<Self, WebError> {
        let limits = config.limits;
        let cap = ConnectionCap::new(
            limits.connections_per_client,
            config.trusted_proxies.clone(),
        );
        let listener = match &config.tls {
            None => WebListener::plain(listener, cap)?,
            Some(identity) => {
                let tls = listener::server_config(identity)?;
                WebListener::tls(listener, tls, cap, limits.tls_handshake)?
            }
        };
        let hashing = HashGate::new(limits.password_checks);
        Ok(WebPage {
            listener,
            config,
            hashing,
        })
    }

    /// Password checks running now and at most so far.
    pub fn password_checks(&self) -> Arc<HashGauge> {
        self.hashing.gauge()
    }

    /// Serves the page beside a started tracker until it stops, then waits for the tracker to
    /// finish, so its database closes after the page's last request. The tracker's failure is
    /// reported first.
    pub async fn serve_beside(self, tracker: Tracker) -> Result<(), WebError> {
        let page = self.serve(tracker.handle()).await;
        tracker.wait().await?;
        page
    }

    /// Serves the page until the tracker behind `tracker` stops.
    pub async fn serve(self, tracker: TrackerHandle) -> Result<(), WebError> {
        let stopped = tracker.stopped();
        let secure = self.listener.is_tls();
        let header_read = self.config.limits.header_read;
        let state = WebState {
            inner: Arc::new(Inner {
                tracker,
                accounts: self.config.staff_accounts,
                sessions: Sessions::default(),
                signin_limiter: throttle::SignInLimiter::default(),
                hashing: self.hashing,
                proxies: self.config.trusted_proxies,
                secure,
            }),
        };
        let address = self.listener.local_addr();
        tracing::info!(%address, tls = secure, "web page serving");
        serve::run(self.listener, router(state), header_read, stopped).await;
        Ok(())
    }
}

/// What every handler shares; cheap to clone.
#[derive(Clone)]
struct WebState {
    inner: Arc<Inner>,
}

struct Inner {
    /// The tracker's reads, clock, registry and "case moved" notifications (which wake the
    /// live case pages).
    tracker: TrackerHandle,
    /// Staff accounts; `None`: no sign-in, everyone sees everything (development).
    accounts: Option<Arc<StaffAccounts>>,
    sessions: Sessions,
    signin_limiter: throttle::SignInLimiter,
    hashing: HashGate,
    proxies: TrustedProxies,
    /// Served over HTTPS: cookies get `Secure`, responses HSTS.
    secure: bool,
}

/// Readiness for a load balancer: `/healthz` says the process lives (a restart would not
/// help a full disk), this says whether its views keep up. While the tracker's writes fail
/// they fall further behind the stream every minute (nothing is lost: the stream keeps it).
async fn ready(State(state): State<WebState>) -> (StatusCode, &'static str) {
    if state.inner.tracker.store_health().is_healthy() {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the tracker cannot store events",
        )
    }
}

/// The page's routes (axum 0.8 path syntax).
fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/search", get(pages::search))
        .route("/cases/{case_id}", get(pages::case_page))
        .route("/cases/{case_id}/live", get(live::stream))
        .route("/overdue", get(pages::overdue))
        .route("/stuck", get(pages::stuck))
        .route("/workload", get(pages::workload))
        .route("/lang", post(pages::set_lang))
        .route("/login", get(login::form).post(login::sign_in))
        .route("/logout", post(login::sign_out))
        .route("/sign-ins", get(unlock::page))
        .route("/sign-ins/unlock", post(unlock::unlock))
        .route("/assets/{name}", get(assets::serve))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(pages::not_found)
        // Outermost last: errors from the sign-in check are rendered too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            login::require_login,
        ))
        .layer(axum::middleware::from_fn(error::render_errors))
        // Outermost: a forged form is refused before anything else runs, and every page,
        // error pages included, is rendered with the browser's token.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::protect,
        ))
        // Around everything: every response, the CSRF refusal included, carries them.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::secure,
        ))
        .with_state(state)
}

/// The language of a request (cookie, then `Accept-Language`).
pub(crate) fn request_lang(headers: &HeaderMap) -> Lang {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    i18n::negotiate(text(header::COOKIE), text(header::ACCEPT_LANGUAGE))
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(request_lang(&parts.headers))
    }
}

/// Agency and service names from the registry, in the page's language; the code itself when
/// the registry does not know it (a case from an older registry stays readable).
pub(crate) struct Names {
    /// Taken once per page: a registry published meanwhile shows from the next one.
    pub registry: std::sync::Arc<Registry>,
    pub lang: Lang,
}

impl Names {
    pub fn agency(&self, code: &str) -> String {
        let Some(agency) = AgencyCode::parse(code)
            .ok()
            .and_then(|c| self.registry.agency(&c))
        else {
            return code.to_owned();
        };
        match self.lang {
            Lang::En => agency.name_en.clone(),
            Lang::Lo => agency.name_lo.clone(),
        }
    }

    pub fn service(&self, code: &str) -> String {
        let Some(service) = ServiceCode::parse(code)
            .ok()
            .and_then(|c| self.registry.service(&c))
        else {
            return code.to_owned();
        };
        match self.lang {
            Lang::En => service.name_en.clone(),
            Lang::Lo => service.name_lo.clone(),
        }
    }
}
