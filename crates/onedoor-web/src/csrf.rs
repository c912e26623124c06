//! CSRF tokens on every form that changes something (sign-in, sign-out, language switch).
//!
//! Double-submit: each browser gets a random token in an `HttpOnly; SameSite=Strict` cookie, and
//! every form carries the same token in a hidden field; a POST whose field does not match its
//! cookie is refused with 403 before any handler runs, so nothing changes. Another site can
//! make a browser send the cookie (SameSite permitting) but cannot read it to fill the field.
//! The token exists before sign-in, so the sign-in form is covered too.
//!
//! Forms are rendered deep inside the handlers (the shared frame holds the language switch and
//! the sign-out button), so the token of the request being served is a task-local set by
//! [`protect`] around the whole request rather than a parameter threaded through every page.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use maud::{Markup, html};

use super::WebState;
use super::error::{WebError, render};
use super::i18n;

/// The cookie holding the browser's token.
pub const CSRF_COOKIE: &str = "onedoor_csrf";
/// The form field that must repeat it.
pub const CSRF_FIELD: &str = "csrf";
/// Largest form body read for the check; the page's forms are a few hundred bytes.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// A form body not sent whole by then is refused: a client trickling its body byte by byte
/// must not hold the request (the header timeout has stopped counting by then).
const BODY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

tokio::task_local! {
    static TOKEN: String;
}

/// The hidden field every POST form must include.
pub fn field() -> Markup {
    // Outside a request (never, in practice) the field is empty and the POST is refused.
    let token = TOKEN.try_with(Clone::clone).unwrap_or_default();
    html! { input type="hidden" name=(CSRF_FIELD) value=(token); }
}

fn is_token(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal in constant time for equal lengths: how long the check takes says nothing about how
/// much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Adds a cookie only this site's pages send back (`HttpOnly; SameSite=Strict`, and `Secure`
/// when the page is served over HTTPS); `max_age` in seconds, `None` for the browser session.
pub fn set_cookie(
    response: &mut Response,
    name: &str,
    value: &str,
    max_age: Option<u64>,
    secure: bool,
) {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    // Names and values are ours (hex tokens), so always valid header text.
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// Middleware: gives the browser a token when it has none, refuses a state-changing request
/// without the matching field, and makes the token available to [`field`].
pub async fn protect(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let lang = super::request_lang(request.headers());
    let cookie = request
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|cookies| i18n::cookie(cookies, CSRF_COOKIE))
        .filter(|token| is_token(token))
        .map(str::to_owned);
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let (token, fresh) = match cookie {
        Some(token) => (token, false),
        None => (new_token(), true),
    };
    let request = if safe {
        request
    } else {
        let (parts, body) = request.into_parts();
        let read = tokio::time::timeout(BODY_WAIT, axum::body::to_bytes(body, MAX_FORM_BYTES));
        let bytes = match read.await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) | Err(_) => return TOKEN.scope(token, refuse(lang)).await,
        };
        let sent = form_urlencoded::parse(&bytes)
            .find(|(name, _)| name == CSRF_FIELD)
            .map(|(_, value)| value.into_owned());
        // A browser without the cookie cannot have a matching field: refused too.
        let matches = !fresh && sent.is_some_and(|sent| same(&sent, &token));
        if !matches {
            tracing::info!(path = %parts.uri.path(), "form refused: missing or wrong CSRF token");
            return TOKEN.scope(token, refuse(lang)).await;
        }
        Request::from_parts(parts, Body::from(bytes))
    };
    let mut response = TOKEN.scope(token.clone(), next.run(request)).await;
    if fresh {
        set_cookie(&mut response, CSRF_COOKIE, &token, None, state.inner.secure);
    }
    response
}

async fn refuse(lang: i18n::Lang) -> Response {
    render(lang, &WebError::FormExpired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_compared_whole() {
        let token = new_token();
        assert!(is_token(&token));
        assert!(same(&token, &token.clone()));
        assert!(!same(&token, &new_token()));
        assert!(!same(&token, &token[..63]));
        assert!(!is_token("not a token"));
    }
}
