//! Connections that say too little too slowly are closed by the timeouts, and every response
//! carries the security headers.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::http::{HeaderMap, Method, StatusCode};
use onedoor_grpc::devpki::DevPki;
use onedoor_tracker::TlsIdentity;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::app::WebApp;
use crate::hardening::{ENGLISH, FORM, accounts, https_get};
use onedoor_testkit::{DEADLINE, FRONT, MONDAY};

/// The timeouts the tests set, short so that waiting for them is quick.
const SHORT: Duration = Duration::from_secs(1);

/// Reads until the server closes the connection; how long that took.
async fn closed_after(mut stream: TcpStream, started: Instant) -> anyhow::Result<Duration> {
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .context("the server never closed the connection")?;
    Ok(started.elapsed())
}

async fn short_timeouts(tls: Option<TlsIdentity>) -> anyhow::Result<WebApp> {
    WebApp::start_configured(None, tls, |config| {
        config.limits.header_read = SHORT;
        config.limits.tls_handshake = SHORT;
    })
    .await
}

fn assert_closed_in_time(what: &str, took: Duration) {
    assert!(
        took >= SHORT.mul_f32(0.9) && took < SHORT * 4,
        "{what}: closed after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_idle_connections_are_closed_by_the_header_timeout() -> anyhow::Result<()> {
    let app = short_timeouts(None).await?;
    // Part of a header, then nothing.
    let mut partial = TcpStream::connect(app.web).await?;
    let started = Instant::now();
    partial
        .write_all(b"GET /login HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await?;
    assert_closed_in_time("a partial header", closed_after(partial, started).await?);
    // Nothing at all.
    let silent = TcpStream::connect(app.web).await?;
    assert_closed_in_time(
        "a silent connection",
        closed_after(silent, Instant::now()).await?,
    );
    // A whole request, then kept alive and idle.
    let mut idle = TcpStream::connect(app.web).await?;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let started = Instant::now();
    let took = closed_after(idle, started).await?;
    assert!(took < SHORT * 4, "an idle kept-alive connection: {took:?}");
    // The page still serves.
    assert_eq!(app.get("/healthz", &[]).await?.status, StatusCode::OK);
    app.stop().await
}

fn dev_tls() -> anyhow::Result<(DevPki, TlsIdentity)> {
    let pki = DevPki::generate(["MOF"])?;
    let tls = TlsIdentity {
        cert_pem: pki.server.cert_pem.clone(),
        key_pem: pki.server.key_pem.clone(),
        client_ca_pem: None,
    };
    Ok((pki, tls))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_that_never_finishes_its_handshake_is_closed() -> anyhow::Result<()> {
    let (pki, tls) = dev_tls()?;
    let app = short_timeouts(Some(tls)).await?;
    let silent = TcpStream::connect(app.web).await?;
    assert_closed_in_time(
        "no ClientHello",
        closed_after(silent, Instant::now()).await?,
    );
    // The first bytes of a TLS record header, then nothing.
    let mut partial = TcpStream::connect(app.web).await?;
    let started = Instant::now();
    partial.write_all(&[0x16, 0x03, 0x01, 0x02]).await?;
    assert_closed_in_time(
        "a partial ClientHello",
        closed_after(partial, started).await?,
    );
    let (status, _, _) = https_get(app.web, &pki.ca_cert_pem, "/healthz").await?;
    assert_eq!(status, StatusCode::OK);
    app.stop().await
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The headers every response must carry; `tls`: HSTS too.
fn assert_secure(what: &str, headers: &HeaderMap, tls: bool) {
    let csp = header(headers, "content-security-policy");
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{what}: CSP {csp:?} lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(header(headers, "x-frame-options"), "DENY", "{what}");
    assert_eq!(
        header(headers, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    assert_eq!(header(headers, "referrer-policy"), "same-origin", "{what}");
    let hsts = header(headers, "strict-transport-security");
    assert_eq!(hsts.starts_with("max-age="), tls, "{what}: HSTS {hsts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() -> anyhow::Result<()> {
    let (pki, tls) = dev_tls()?;
    let app = WebApp::start_with(Some(&accounts()?), Some(tls)).await?;
    for (path, status, cache) in [
        ("/login", StatusCode::OK, "no-store"),
        ("/", StatusCode::SEE_OTHER, "no-store"),
        ("/no-such-page", StatusCode::SEE_OTHER, "no-store"),
        (
            "/assets/app.css",
            StatusCode::OK,
            "public, max-age=31536000, immutable",
        ),
        ("/assets/nope.css", StatusCode::NOT_FOUND, "no-store"),
        ("/healthz", StatusCode::OK, "no-store"),
    ] {
        let (got, headers, _) = https_get(app.web, &pki.ca_cert_pem, path).await?;
        assert_eq!(got, status, "{path}");
        assert_secure(path, &headers, true);
        assert_eq!(header(&headers, "cache-control"), cache, "{path}");
    }
    app.stop().await?;

    // Plain HTTP (loopback development): the same, without HSTS; case data pages and errors
    // are never stored; a forged form's refusal carries them too.
    let app = WebApp::start().await?;
    let case = app
        .bus
        .open(FRONT, "construction-permit", "REF-1", "a permit", MONDAY)
        .await?;
    app.projected(&[case]).await?;
    for path in [
        format!("/cases/{case}"),
        "/overdue".into(),
        "/cases/nope".into(),
    ] {
        let page = app.get(&path, &[ENGLISH]).await?;
        assert_secure(&path, &page.headers, false);
        assert_eq!(page.header("cache-control"), "no-store", "{path}");
    }
    let forged = app
        .request(Method::POST, "/lang", &[FORM, ENGLISH], "lang=lo")
        .await?;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_secure("a refused form", &forged.headers, false);
    assert_eq!(forged.header("cache-control"), "no-store");
    app.stop().await
}

/// One request on a fresh connection; `None` if the server closed it without an answer.
async fn raw_get(address: std::net::SocketAddr) -> anyhow::Result<Option<String>> {
    let mut stream = TcpStream::connect(address).await?;
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    Ok(match read {
        Ok(_) if !answer.is_empty() => Some(answer),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_holds_at_most_its_share_of_connections() -> anyhow::Result<()> {
    let app = WebApp::start_configured(None, None, |config| {
        config.limits.connections_per_client = 2;
    })
    .await?;
    // Two silent connections from loopback addresses (one client) take its share.
    let first = TcpStream::connect(app.web).await?;
    let second = TcpStream::connect(app.web).await?;
    let started = Instant::now();
    assert_eq!(
        raw_get(app.web).await?,
        None,
        "a third connection is closed"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "closed at once");
    drop((first, second));
    let served =
        onedoor_testkit::eventually("a slot comes back", DEADLINE, || raw_get(app.web)).await?;
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    app.stop().await
}
