//! The page's defences: HTTPS with the development CA and CSRF tokens on every form that
//! changes something (sign-in delays are in `signin`, timeouts and headers in `slow`).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use onedoor_grpc::devpki::DevPki;
use onedoor_tracker::TlsIdentity;
use onedoor_web::auth::{HashCost, hash_password};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::app::WebApp;
use onedoor_testkit::DEADLINE;

pub const ENGLISH: (&str, &str) = ("accept-language", "en");
pub const LAO: (&str, &str) = ("accept-language", "lo");
pub const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

pub fn accounts() -> anyhow::Result<String> {
    Ok(format!(
        "[[account]]\nname = \"somchai\"\nrole = \"front-office\"\noffice = \"ODSC-VTE-SAYSETTHA\"\npassword_hash = \"{}\"\n",
        hash_password("counter one", HashCost::TestOnly)?
    ))
}

pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// One GET over TLS, trusting only `ca_pem`, for server name `localhost`.
pub async fn https_get(
    address: SocketAddr,
    ca_pem: &str,
    path: &str,
) -> anyhow::Result<(StatusCode, HeaderMap, String)> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(address).await?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(connection);
    let request = Request::builder()
        .uri(path)
        .header("host", "localhost")
        .header("accept-language", "en")
        .body(Full::new(Bytes::new()))?;
    let response = tokio::time::timeout(DEADLINE, sender.send_request(request))
        .await
        .context("no answer in time")??;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok((
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec())?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_over_https_with_the_dev_ca_and_secure_cookies() -> anyhow::Result<()> {
    let pki = DevPki::generate(["MOF"])?;
    let tls = TlsIdentity {
        cert_pem: pki.server.cert_pem.clone(),
        key_pem: pki.server.key_pem.clone(),
        client_ca_pem: None,
    };
    let app = WebApp::start_with(Some(&accounts()?), Some(tls)).await?;

    let (status, headers, body) = https_get(app.web, &pki.ca_cert_pem, "/login").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"autocomplete="current-password""#));
    let cookies = set_cookies(&headers);
    let csrf = cookies
        .iter()
        .find(|c| c.starts_with("onedoor_csrf="))
        .context("a CSRF cookie")?;
    assert!(
        csrf.contains("; Secure") && csrf.contains("HttpOnly") && csrf.contains("SameSite=Strict"),
        "{csrf}"
    );

    // A client that does not trust the CA refuses the page; plain HTTP gets no page at all.
    let other = DevPki::generate(["MOF"])?;
    assert!(
        https_get(app.web, &other.ca_cert_pem, "/login")
            .await
            .is_err()
    );
    let plain = app.get("/login", &[ENGLISH]).await;
    assert!(
        plain
            .as_ref()
            .map_or(true, |page| page.status != StatusCode::OK),
        "plain HTTP on the HTTPS port must not be served"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_its_csrf_token_changes_nothing() -> anyhow::Result<()> {
    let app = WebApp::start_with_accounts(Some(&accounts()?)).await?;
    let (pair, token) = app.form_token().await?;

    // The sign-in form carries the browser's token.
    let form = app
        .get("/login", &[ENGLISH, ("cookie", pair.as_str())])
        .await?;
    assert!(
        form.body
            .contains(&format!(r#"name="csrf" value="{token}""#)),
        "{}",
        form.body
    );

    let other_token = "ab".repeat(32);
    let forged = [
        // No cookie, no field.
        (String::new(), "lang=en".to_owned()),
        // The cookie but another token.
        (pair.clone(), format!("lang=en&csrf={other_token}")),
        // A field but no cookie.
        (String::new(), format!("lang=en&csrf={token}")),
        // The cookie and no field.
        (pair.clone(), "lang=en".to_owned()),
    ];
    for (cookie, body) in &forged {
        let mut headers = vec![FORM, ENGLISH];
        if !cookie.is_empty() {
            headers.push(("cookie", cookie.as_str()));
        }
        let page = app.request(Method::POST, "/lang", &headers, body).await?;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{cookie:?} {body:?}");
        assert!(page.body.contains("This form has expired"), "{}", page.body);
        assert!(
            !set_cookies(&page.headers)
                .iter()
                .any(|c| c.starts_with("onedoor_lang=")),
            "the language did not change"
        );
    }
    // In the reader's language.
    let lao = app
        .request(Method::POST, "/lang", &[FORM, LAO], "lang=en")
        .await?;
    assert_eq!(lao.status, StatusCode::FORBIDDEN);
    assert!(lao.body.contains("ແບບຟອມນີ້ໝົດອາຍຸ"));

    // The right password without the token starts no session.
    let sign_in = app
        .request(
            Method::POST,
            "/login",
            &[FORM, ENGLISH],
            "name=somchai&password=counter+one",
        )
        .await?;
    assert_eq!(sign_in.status, StatusCode::FORBIDDEN);
    assert!(
        !set_cookies(&sign_in.headers)
            .iter()
            .any(|c| c.starts_with("onedoor_session="))
    );

    // Signed in properly, a sign-out without the token leaves the session open.
    let page = app
        .post_form(
            "/login",
            &[ENGLISH],
            "name=somchai&password=counter+one&next=%2Foverdue",
        )
        .await?;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let session = set_cookies(&page.headers)
        .into_iter()
        .find(|c| c.starts_with("onedoor_session="))
        .and_then(|c| c.split(';').next().map(str::to_owned))
        .context("a session cookie")?;
    let out = app
        .request(
            Method::POST,
            "/logout",
            &[FORM, ("cookie", &format!("{session}; {pair}"))],
            "",
        )
        .await?;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    let still = app
        .get("/overdue", &[ENGLISH, ("cookie", session.as_str())])
        .await?;
    assert_eq!(still.status, StatusCode::OK, "the session is still open");
    app.stop().await
}
