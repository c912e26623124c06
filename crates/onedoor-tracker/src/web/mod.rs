//! The staff web page: what an ODSC clerk uses to answer "where is my application?", in Lao and
//! English, served by the tracker from its own database.
//!
//! Server-rendered HTML (maud, which escapes every value) with a little vanilla JavaScript for
//! the live case page; every asset, the Lao font included, is embedded in the binary, because
//! government networks may be cut off from the internet.
//!
//! It listens on its own port, not on the gRPC one: browsers speak HTTP/1.1 and the page will
//! be opened to an office network (later behind a login), while CaseTracker gRPC stays for
//! systems; separate listeners let an operator expose one without the other.
//!
//! # Layout
//!
//! - [`serve`]: runs the page on a bound listener until the tracker stops.
//! - `pages`: the handlers (search, case, overdue, stuck, workload, language switch).
//! - `live`: the case page's server-sent events, woken by the projection.
//! - `timeline`: the swimlanes (inline SVG).
//! - `auth`: staff accounts (front office or supervisor), sessions, [`auth::Viewer`]; `login`:
//!   sign-in pages and the middleware that finds the viewer of every request; `throttle`: the
//!   limit on failed sign-ins; `csrf`: the token every state-changing form carries.
//! - `layout`: the shared frame and the error page; `error`: [`WebError`] and its one mapping
//!   to HTTP statuses; `i18n`: the message catalogue, language choice, dates.
//! - `assets`: CSS, JavaScript and fonts, embedded; `queries`: two reads the store lacks.

mod assets;
pub mod auth;
mod csrf;
mod error;
pub mod i18n;
mod layout;
mod live;
mod login;
mod pages;
mod queries;
mod throttle;
mod timeline;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use onedoor_case::{AgencyCode, Registry, ServiceCode};
use tokio::sync::{OnceCell, broadcast, watch};

pub use auth::StaffAccounts;
pub use error::WebError;
pub use i18n::Lang;

use self::auth::Sessions;
use crate::clock::Clock;
use crate::config::TrackerConfig;
use crate::error::TrackerError;
use crate::projection::stopped;
use crate::store::Store;
use crate::tls::{ClientAddr, WebListener};

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct WebState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    registry: Arc<Registry>,
    /// Case ids whose view moved (from the projection); wakes the live case pages.
    moved: broadcast::Sender<String>,
    /// How often a live page re-reads its case without a notification (events projected by
    /// another tracker process on the same database send none here).
    poll: Duration,
    /// Becomes `true` when the tracker stops: ends live streams so shutdown does not wait on
    /// them.
    stop: watch::Receiver<bool>,
    nats_url: String,
    /// The tracker's configuration, for its NATS identity (seed file) when it connects.
    nats_options: TrackerConfig,
    /// Connected on first use by the stuck-deliveries page, so the page works (minus that
    /// list) while NATS is down, and a NATS that comes back is picked up.
    nats: OnceCell<async_nats::jetstream::Context>,
    /// Staff accounts; `None`: no sign-in, everyone sees everything (development).
    accounts: Option<Arc<StaffAccounts>>,
    sessions: Sessions,
    signin_limiter: throttle::SignInLimiter,
    /// Served over HTTPS: cookies get `Secure`.
    secure: bool,
}

impl WebState {
    /// The page's state, from the tracker's: its store, its configuration (clock, registry,
    /// NATS URL, live-page poll interval, staff accounts), its "case moved" notifications and
    /// its stop signal; `secure` when served over HTTPS.
    pub fn new(
        store: Store,
        config: &TrackerConfig,
        moved: broadcast::Sender<String>,
        stop: watch::Receiver<bool>,
        secure: bool,
    ) -> Self {
        WebState {
            inner: Arc::new(Inner {
                store,
                clock: config.clock.clone(),
                registry: config.registry.clone(),
                moved,
                poll: config.watch_poll,
                stop,
                nats_url: config.nats_url.clone(),
                nats_options: config.clone(),
                nats: OnceCell::new(),
                accounts: config.staff_accounts.clone(),
                sessions: Sessions::default(),
                signin_limiter: throttle::SignInLimiter::default(),
                secure,
            }),
        }
    }

    async fn jetstream(&self) -> Result<async_nats::jetstream::Context, TrackerError> {
        let url = self.inner.nats_url.clone();
        self.inner
            .nats
            .get_or_try_init(|| async move {
                let connect = self
                    .inner
                    .nats_options
                    .nats_options()?
                    .name("onedoor-tracker-web")
                    .connection_timeout(Duration::from_secs(3))
                    .connect(url.as_str());
                // A page must answer, not hang: a NATS that does not answer in time is
                // reported as unavailable and tried again on the next request.
                match tokio::time::timeout(Duration::from_secs(5), connect).await {
                    Ok(Ok(client)) => Ok(async_nats::jetstream::new(client)),
                    Ok(Err(error)) => Err(TrackerError::Nats {
                        action: "connecting for the stuck-deliveries page",
                        message: error.to_string(),
                    }),
                    Err(_) => Err(TrackerError::Nats {
                        action: "connecting for the stuck-deliveries page",
                        message: "timed out".into(),
                    }),
                }
            })
            .await
            .cloned()
    }
}

/// The page's routes (axum 0.8 path syntax).
pub fn router(state: WebState) -> Router {
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
        .route("/assets/{name}", get(assets::serve))
        .route("/healthz", get(|| async { "ok" }))
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
        .with_state(state)
}

/// Serves the page on `listener` until the tracker's stop signal.
pub async fn serve(listener: WebListener, state: WebState) -> Result<(), TrackerError> {
    let mut stop = state.inner.stop.clone();
    let address = axum::serve::Listener::local_addr(&listener).ok();
    tracing::info!(?address, tls = listener.is_tls(), "web page serving");
    let app = router(state).into_make_service_with_connect_info::<ClientAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stopped(&mut stop).await })
        .await
        .map_err(|e| TrackerError::Serve(format!("web page: {e}")))
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
pub(crate) struct Names<'a> {
    pub registry: &'a Registry,
    pub lang: Lang,
}

impl Names<'_> {
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
