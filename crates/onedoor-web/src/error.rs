//! What can go wrong on the web page, and the one place it becomes an HTTP status and a friendly
//! page.
//!
//! Handlers return `Err(WebError)`; its `IntoResponse` only sets the status and parks the error
//! in the response's extensions. The [`render_errors`] middleware, which knows the request's
//! language, turns every such response into the page the clerk sees. Our own failures are
//! logged there once, with their cause; the page never shows internals or a stack trace.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use onedoor_tracker::TrackerError;

use super::i18n::{Lang, Msg};
use super::layout;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The caller sent something we cannot read (a malformed case id, an empty search, an
    /// unknown filter). `what` says which, in the clerk's words.
    #[error("bad request: {what:?}")]
    BadRequest { what: Msg },

    /// No such case, no search match, or no such page.
    #[error("not found: {what:?}")]
    NotFound { what: Msg },

    /// Not signed in (only for requests that cannot be sent to the sign-in page).
    #[error("not signed in")]
    Unauthorized,

    /// Signed in, but this account may not see this page.
    #[error("forbidden: {what:?}")]
    Forbidden { what: Msg },

    /// Too many failed sign-ins for the account or the address; try again after this long.
    #[error("too many failed sign-ins; retry after {} s", retry_after.as_secs())]
    TooManySignIns { retry_after: std::time::Duration },

    /// Too many sign-ins being checked at once (the cap on password hashing).
    #[error("too many sign-ins at once; retry after {} s", retry_after.as_secs())]
    SignInBusy { retry_after: std::time::Duration },

    /// A state-changing form without the browser's CSRF token (or with another one).
    #[error("form without a valid CSRF token")]
    FormExpired,

    /// The tracker's own failure (database, NATS, a bug).
    #[error(transparent)]
    Tracker(#[from] TrackerError),

    /// A configuration the page cannot start with (the staff accounts file, the TLS identity).
    #[error("configuration {key}: {why}")]
    Config { key: &'static str, why: String },

    /// The page's own failure outside the tracker (its listener, a password check).
    #[error("serving the web page: {0}")]
    Serve(String),
}

impl WebError {
    pub fn bad_request(what: Msg) -> Self {
        WebError::BadRequest { what }
    }

    pub fn not_found(what: Msg) -> Self {
        WebError::NotFound { what }
    }

    /// The one table from web errors to HTTP statuses.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            WebError::NotFound { .. } => StatusCode::NOT_FOUND,
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Forbidden { .. } | WebError::FormExpired => StatusCode::FORBIDDEN,
            WebError::TooManySignIns { .. } | WebError::SignInBusy { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            WebError::Config { .. } | WebError::Serve(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::Tracker(error) => match error {
                // Checked before it reaches the store, but the store checks again.
                TrackerError::InvalidArgument { .. } => StatusCode::BAD_REQUEST,
                TrackerError::CaseNotFound { .. } => StatusCode::NOT_FOUND,
                other if other.code() == tonic::Code::Unavailable => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// Title and message of the page, in the clerk's words.
    fn words(&self) -> (Msg, Msg) {
        match self {
            WebError::BadRequest { what } => (Msg::ErrorBadRequestTitle, *what),
            WebError::NotFound { what } => (Msg::ErrorNotFoundTitle, *what),
            WebError::Unauthorized => (Msg::LoginTitle, Msg::ErrorSignInAgain),
            WebError::Forbidden { what } => (Msg::ErrorForbiddenTitle, *what),
            WebError::TooManySignIns { .. } => (Msg::ErrorTooManyTitle, Msg::ErrorTooManySignIns),
            WebError::SignInBusy { .. } => (Msg::ErrorTooManyTitle, Msg::ErrorSignInBusy),
            WebError::FormExpired => (Msg::ErrorForbiddenTitle, Msg::ErrorFormExpired),
            WebError::Tracker(TrackerError::InvalidArgument { .. }) => {
                (Msg::ErrorBadRequestTitle, Msg::ErrorBadFilter)
            }
            WebError::Tracker(TrackerError::CaseNotFound { .. }) => {
                (Msg::ErrorNotFoundTitle, Msg::ErrorCaseNotFound)
            }
            WebError::Tracker(_) if self.status() == StatusCode::SERVICE_UNAVAILABLE => {
                (Msg::ErrorUnavailableTitle, Msg::ErrorUnavailable)
            }
            WebError::Tracker(_) | WebError::Config { .. } | WebError::Serve(_) => {
                (Msg::ErrorInternalTitle, Msg::ErrorInternal)
            }
        }
    }
}

/// The error parked in a response for [`render_errors`].
#[derive(Clone)]
struct Parked(Arc<WebError>);

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        response.extensions_mut().insert(Parked(Arc::new(self)));
        response
    }
}

/// Middleware: renders every parked [`WebError`] (including the router's fallback 404) as a
/// page in the request's language.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let lang = super::request_lang(request.headers());
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let parked = response.extensions().get::<Parked>().cloned();
    let Some(Parked(error)) = parked else {
        return response;
    };
    let status = error.status();
    if status.is_server_error() {
        // Logged once, here, with the cause chain; the page says only what the clerk can do.
        tracing::error!(%path, error = %error, source = ?std::error::Error::source(&*error), "web request failed");
    } else {
        tracing::debug!(%path, error = %error, "web request refused");
    }
    render(lang, &error)
}

/// The page for `error` in `lang`, with its status (and `Retry-After` when it has one).
pub fn render(lang: Lang, error: &WebError) -> Response {
    let (title, message) = error.words();
    let body = layout::error_page(lang, title, message);
    let mut response = (error.status(), body).into_response();
    // An error page is about this moment; never cache it.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let WebError::TooManySignIns { retry_after } | WebError::SignInBusy { retry_after } = error {
        // Whole seconds, rounded up, never 0 (that would invite an immediate retry).
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_one_table() {
        assert_eq!(
            WebError::bad_request(Msg::ErrorEmptySearch).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            WebError::not_found(Msg::ErrorCaseNotFound).status(),
            StatusCode::NOT_FOUND
        );
        let unreachable = TrackerError::Nats {
            action: "x",
            kind: onedoor_bus::NatsErrorKind::TimedOut,
            message: "down".into(),
        };
        assert_eq!(
            WebError::from(unreachable).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let bug = TrackerError::Corrupt {
            what: "x".into(),
            why: "y".into(),
        };
        assert_eq!(
            WebError::from(bug).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
