//! The supervisor's page of delayed sign-ins (`/sign-ins`): which accounts have failures
//! counted against them, and a button that clears one (a clerk on the phone who is being
//! delayed by someone else's guesses).
//!
//! It is a page and not a command because the delays live in the tracker's memory; the form
//! carries the CSRF token like every other.

use std::time::Instant;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::Uri;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::WebState;
use super::auth::Viewer;
use super::csrf;
use super::error::WebError;
use super::i18n::{Lang, Msg};
use super::layout::{self, Section};
use super::pages::{Page, chrome, supervisors_only};

/// Supervisors only; without accounts there is no sign-in to delay.
fn supervisor(state: &WebState, viewer: &Viewer) -> Result<(), WebError> {
    supervisors_only(viewer)?;
    match viewer {
        Viewer::Staff { .. } if state.inner.accounts.is_some() => Ok(()),
        _ => Err(WebError::not_found(Msg::ErrorPageNotFound)),
    }
}

/// `GET /sign-ins`.
pub async fn page(
    State(state): State<WebState>,
    lang: Lang,
    viewer: Viewer,
    uri: Uri,
) -> Result<Page, WebError> {
    supervisor(&state, &viewer)?;
    let delayed = state.inner.signin_limiter.delayed(Instant::now());
    let seconds = match lang {
        Lang::En => "s",
        Lang::Lo => "ວິນາທີ",
    };
    let body = html! {
        h1 { (lang.t(Msg::SignInsTitle)) }
        p.hint { (lang.t(Msg::SignInsIntro)) }
        @if delayed.is_empty() {
            p.empty #no-delayed { (lang.t(Msg::SignInsNone)) }
        } @else {
            table #delayed {
                thead { tr {
                    th { (lang.t(Msg::UserName)) }
                    th { (lang.t(Msg::SignInsFailures)) }
                    th { (lang.t(Msg::SignInsWait)) }
                    th {}
                } }
                tbody {
                    @for account in &delayed {
                        tr {
                            td { (account.name) }
                            td { (account.failures) }
                            td { (account.wait.as_secs()) " " (seconds) }
                            td {
                                form method="post" action="/sign-ins/unlock" {
                                    (csrf::field())
                                    input type="hidden" name="name" value=(account.name);
                                    button type="submit" { (lang.t(Msg::SignInsUnlock)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Page(layout::page(
        &chrome(&state, lang, &viewer, &uri),
        lang.t(Msg::SignInsTitle),
        Section::SignIns,
        body,
    )))
}

#[derive(Debug, Deserialize)]
pub struct UnlockForm {
    name: String,
}

/// `POST /sign-ins/unlock`: clears the account's delay, then back to the list.
pub async fn unlock(
    State(state): State<WebState>,
    viewer: Viewer,
    form: Result<Form<UnlockForm>, FormRejection>,
) -> Result<Response, WebError> {
    supervisor(&state, &viewer)?;
    let Form(form) = form.map_err(|_| WebError::bad_request(Msg::ErrorBadFilter))?;
    let cleared = state
        .inner
        .signin_limiter
        .unlock(&form.name, Instant::now());
    if let Viewer::Staff { name, .. } = &viewer {
        tracing::info!(account = ?form.name, supervisor = %name, cleared, "web sign-in delay cleared");
    }
    Ok(Redirect::to("/sign-ins").into_response())
}
