//! Signing in and out, and the middleware that tells every page who is looking (see `auth` for
//! the accounts and sessions themselves).

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use std::time::Instant;

use super::WebState;
use super::auth::{DEVICE_COOKIE, DEVICE_TTL, SESSION_COOKIE, SESSION_TTL, Viewer};
use super::csrf::{self, set_cookie};
use super::error::WebError;
use super::hashing;
use super::i18n::{self, Lang, Msg};
use super::layout::{self, Chrome, Section};
use super::listener::ClientAddr;
use super::pages::safe_back;

/// Paths anyone may open: the sign-in page itself, the language switch (the sign-in page has
/// one), the assets it needs, and the health check.
fn is_public(path: &str) -> bool {
    matches!(path, "/login" | "/lang" | "/healthz" | "/readyz") || path.starts_with("/assets/")
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|cookies| i18n::cookie(cookies, name))
}

fn session_token(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// Middleware: finds the viewer (everyone is [`Viewer::Open`] when the tracker has no
/// accounts), and sends anyone else to the sign-in page, coming back afterwards.
pub async fn require_login(
    State(state): State<WebState>,
    mut request: Request,
    next: Next,
) -> Response {
    let viewer = match &state.inner.accounts {
        None => Some(Viewer::Open),
        Some(_) => session_token(request.headers())
            .and_then(|token| state.inner.sessions.get(token))
            .map(|session| Viewer::Staff {
                name: session.name,
                role: session.role,
            }),
    };
    let path = request.uri().path().to_owned();
    match viewer {
        Some(viewer) => {
            request.extensions_mut().insert(viewer);
            next.run(request).await
        }
        None if is_public(&path) => next.run(request).await,
        // A live stream cannot follow a redirect to a form; the page's next load will.
        None if path.ends_with("/live") => WebError::Unauthorized.into_response(),
        None => {
            let here = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
            let next = utf8_percent_encode(here, NON_ALPHANUMERIC);
            Redirect::to(&format!("/login?next={next}")).into_response()
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, WebError> {
        // Set by `require_login` on every non-public route; missing means a route was mounted
        // outside it, which must fail closed rather than show everything.
        parts.extensions.get::<Viewer>().cloned().ok_or_else(|| {
            WebError::Serve("a page was served without the sign-in middleware".into())
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    next: Option<String>,
}

fn login_page(lang: Lang, next: &str, failed: bool) -> maud::Markup {
    let back = format!(
        "/login?next={}",
        utf8_percent_encode(next, NON_ALPHANUMERIC)
    );
    let body = html! {
        section.login {
            h1 { (lang.t(Msg::LoginTitle)) }
            p.hint { (lang.t(Msg::LoginIntro)) }
            @if failed {
                p.problem #login-failed role="alert" { (lang.t(Msg::LoginFailed)) }
            }
            form method="post" action="/login" {
                (csrf::field())
                input type="hidden" name="next" value=(next);
                div.field {
                    label for="name" { (lang.t(Msg::UserName)) }
                    input #name type="text" name="name" required autocomplete="username"
                        autocapitalize="none" spellcheck="false";
                }
                div.field {
                    label for="password" { (lang.t(Msg::Password)) }
                    input #password type="password" name="password" required
                        autocomplete="current-password";
                }
                button #sign-in type="submit" { (lang.t(Msg::SignIn)) }
            }
        }
    };
    let chrome = Chrome {
        lang,
        back,
        user: None,
        supervisor_pages: false,
        nav: false,
    };
    layout::page(&chrome, lang.t(Msg::LoginTitle), Section::None, body)
}

/// `GET /login?next=`.
pub async fn form(
    State(state): State<WebState>,
    lang: Lang,
    params: Result<Query<LoginQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let Query(params) = params.map_err(|_| WebError::bad_request(Msg::ErrorBadFilter))?;
    let next = safe_back(params.next.as_deref()).to_owned();
    if state.inner.accounts.is_none() {
        return Ok(Redirect::to(&next).into_response());
    }
    Ok(login_page(lang, &next, false).into_response())
}

/// `POST /login`: reserves the attempt (see `throttle`: while the account, the address or
/// the device is delayed the password is not even checked), checks the password under the cap
/// on password checks, starts a session and returns to the page the clerk wanted. A computer
/// that signs in gets a device cookie, so strangers' failures do not delay it next time.
pub async fn sign_in(
    State(state): State<WebState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    lang: Lang,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form.map_err(|_| WebError::bad_request(Msg::ErrorBadFilter))?;
    let next = safe_back(form.next.as_deref()).to_owned();
    let Some(accounts) = state.inner.accounts.clone() else {
        return Ok(Redirect::to(&next).into_response());
    };
    let name = form.name.trim().to_owned();
    let client = state.inner.proxies.client(peer.ip(), &headers);
    let limiter = &state.inner.signin_limiter;
    let device = cookie(&headers, DEVICE_COOKIE);
    let known = accounts.knows(&name);
    // Names are logged with Debug (`?`): whatever a stranger types stays on one log line.
    let attempt = limiter
        .reserve(&name, known, client, device, Instant::now())
        .map_err(|retry_after| {
            tracing::info!(account = ?name, %client, "web sign-in refused: delayed");
            metrics::counter!(hashing::METRIC_REFUSED, "reason" => "delayed").increment(1);
            WebError::TooManySignIns { retry_after }
        })?;
    let checked_name = name.clone();
    // Refused by the cap, the attempt is dropped unsettled: it counts as never made.
    let role = state
        .inner
        .hashing
        .run(move || accounts.verify(&checked_name, &form.password))
        .await?;
    let Some(role) = role else {
        attempt.failed(Instant::now());
        tracing::info!(account = ?name, %client, "web sign-in refused");
        return Ok((StatusCode::UNAUTHORIZED, login_page(lang, &next, true)).into_response());
    };
    let known_device = attempt.known_device();
    attempt.succeeded(Instant::now());
    tracing::info!(account = ?name, ?role, "web sign-in");
    let token = state.inner.sessions.start(&name, role);
    let mut response = Redirect::to(&next).into_response();
    let secure = state.inner.secure;
    set_cookie(
        &mut response,
        SESSION_COOKIE,
        &token,
        Some(SESSION_TTL.as_secs()),
        secure,
    );
    if !known_device {
        let device = limiter.new_device(&name, Instant::now());
        set_cookie(
            &mut response,
            DEVICE_COOKIE,
            &device,
            Some(DEVICE_TTL.as_secs()),
            secure,
        );
    }
    Ok(response)
}

/// `POST /logout`: ends the session here and in the browser.
pub async fn sign_out(State(state): State<WebState>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers) {
        state.inner.sessions.end(token);
    }
    let mut response = Redirect::to("/login").into_response();
    set_cookie(
        &mut response,
        SESSION_COOKIE,
        "",
        Some(0),
        state.inner.secure,
    );
    response
}
