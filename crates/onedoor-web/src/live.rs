//! The case page's live updates: `GET /cases/{id}/live` is a server-sent event stream. Each
//! event (`event: case`, `id: <case version>`) carries the re-rendered inner HTML of the page's
//! `#case-live` region, which the page's script swaps in: the server stays the only renderer,
//! and the script stays a few lines.
//!
//! The stream is woken by the projection's "case moved" notifications (the same ones
//! `WatchCase` uses), re-reads the database now and then for events projected by another
//! process, and re-renders every minute even when nothing happened, because overdue stretches
//! grow with time alone. A reconnecting browser sends `Last-Event-ID`, so it gets only what it
//! missed. The stream ends when the tracker stops, so shutdown never waits on open pages.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::WebState;
use super::auth::Viewer;
use super::error::WebError;
use super::i18n::{Lang, Msg};
use super::pages::{case_live, load_case, parse_case_id};

/// How often an unchanged case is re-rendered anyway (lateness and "now" move with time).
const REFRESH: Duration = Duration::from_secs(60);
/// Comment lines that keep proxies and the browser from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Default, Deserialize)]
pub struct LiveParams {
    /// The case version the page already shows.
    v: Option<u64>,
}

struct Live {
    state: WebState,
    case_id: String,
    lang: Lang,
    /// The last version sent (or shown by the page).
    last: u64,
    moved: broadcast::Receiver<String>,
    refresh_at: Instant,
}

/// `GET /cases/{case_id}/live?v=N`.
pub async fn stream(
    State(state): State<WebState>,
    lang: Lang,
    viewer: Viewer,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<LiveParams>, QueryRejection>,
) -> Result<Response, WebError> {
    let case_id = parse_case_id(path)?;
    let Query(params) = params.map_err(|_| WebError::bad_request(Msg::ErrorBadFilter))?;
    // Subscribe before the first read, so an event projected in between is not missed.
    let moved = state.inner.tracker.moved();
    match state.inner.tracker.case(&case_id).await? {
        Some(case) if viewer.may_see(&case.origin_agency) => {}
        // Another office's case is "not found", as on the case page.
        _ => return Err(WebError::not_found(Msg::ErrorCaseNotFound)),
    }
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let live = Live {
        state,
        case_id,
        lang,
        last: params.v.unwrap_or(0).max(resumed.unwrap_or(0)),
        moved,
        refresh_at: Instant::now() + REFRESH,
    };
    let sse = Sse::new(events(live)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    let mut response = sse.into_response();
    // Tell buffering reverse proxies (nginx) to pass events through as they come.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

fn events(live: Live) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(live, |mut live| async move {
        loop {
            if let Some(event) = live.next_event().await {
                return Some((Ok(event), live));
            }
            let poll = live.state.inner.tracker.watch_poll();
            let stopped = live.state.inner.tracker.stopped();
            tokio::select! {
                () = stopped => return None,
                _ = wait_for_case(&mut live.moved, &live.case_id) => {}
                _ = tokio::time::sleep(poll) => {}
                _ = tokio::time::sleep_until(live.refresh_at) => {}
            }
        }
    })
}

impl Live {
    /// The next event to send, if the case moved past `last` or a refresh is due.
    async fn next_event(&mut self) -> Option<Event> {
        let version = match self.state.inner.tracker.case(&self.case_id).await {
            Ok(Some(case)) => case.version,
            Ok(None) => return None,
            Err(error) => {
                // Try again at the next wake-up; the page keeps what it shows meanwhile.
                tracing::warn!(%error, case_id = %self.case_id, "live page cannot read its case");
                return None;
            }
        };
        if version <= self.last && Instant::now() < self.refresh_at {
            return None;
        }
        let data = match load_case(&self.state, &self.case_id).await {
            Ok(data) => data,
            Err(error) => {
                tracing::warn!(%error, case_id = %self.case_id, "live page cannot read its case");
                return None;
            }
        };
        self.last = data.case.version;
        self.refresh_at = Instant::now() + REFRESH;
        let now = self.state.inner.tracker.now();
        let html = case_live(&self.state, self.lang, &data, now).into_string();
        Some(
            Event::default()
                .event("case")
                .id(self.last.to_string())
                .data(html),
        )
    }
}

/// Returns when `case_id` moved, or when notifications were lost (lagged): either way the
/// caller re-reads the database.
async fn wait_for_case(moved: &mut broadcast::Receiver<String>, case_id: &str) {
    loop {
        match moved.recv().await {
            Ok(id) if id == case_id => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            // The projection is gone; only the poll can still find events.
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}
