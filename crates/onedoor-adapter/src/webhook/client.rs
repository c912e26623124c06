//! [`Receiver`]: the agency's webhook endpoint, reached with one HTTP client (rustls on ring,
//! no redirects, a deadline per POST, a capped read of the answer).

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Url, header};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use super::config::WebhookConfig;
use super::secret::WebhookSecrets;
use super::signature::{self, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};
use crate::error::AdapterError;

/// Most of an answer's body that is read: enough for an error message to log, and a receiver
/// that streams without end cannot hold the adapter's memory or time.
pub const RESPONSE_BODY_CAP: usize = 16 * 1024;

/// How much of a failing answer's body goes into the log and the stuck record.
const SHOWN_BODY_CHARS: usize = 200;

/// Why a POST did not count as delivered; the text goes into logs and the stuck record, so it
/// never holds the secret or the URL's query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Answered, but not 2xx.
    Status {
        status: u16,
        body: String,
    },
    /// 3xx: redirects are not followed (`docs/webhooks.md`).
    Redirect {
        status: u16,
        location: String,
    },
    TimedOut(Duration),
    Unreachable(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status { status, body } => {
                write!(f, "the receiver answered HTTP {status} {body:?}")
            }
            Failure::Redirect { status, location } => write!(
                f,
                "the receiver answered HTTP {status} to {location:?}; redirects are not followed, configure the final URL"
            ),
            Failure::TimedOut(after) => write!(f, "the receiver did not answer within {after:?}"),
            Failure::Unreachable(why) => write!(f, "the receiver could not be reached: {why}"),
        }
    }
}

/// One signed POST as it goes out: the adapter makes them with [`Receiver::signed`];
/// `onedoor conformance` also sends ones signed wrongly or with an old timestamp.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The event id (`webhook-id`), the same on every attempt.
    pub id: String,
    /// Seconds since 1970 (`webhook-timestamp`).
    pub timestamp: i64,
    /// The `webhook-signature` header.
    pub signature: String,
    pub body: Vec<u8>,
    pub traceparent: Option<String>,
}

/// The receiver's answer, whatever its status, with at most [`RESPONSE_BODY_CAP`] bytes of body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// The `Location` header, shortened, for a 3xx.
    pub location: String,
}

impl Answer {
    /// `Ok(status)` when the answer acknowledges the item (2xx), else why not.
    pub fn delivered(self) -> Result<u16, Failure> {
        match self.status {
            200..=299 => Ok(self.status),
            300..=399 => Err(Failure::Redirect {
                status: self.status,
                location: self.location,
            }),
            status => Err(Failure::Status {
                status,
                body: String::from_utf8_lossy(&self.body)
                    .chars()
                    .take(SHOWN_BODY_CHARS)
                    .collect(),
            }),
        }
    }
}

/// The endpoint and how to reach it.
#[derive(Debug, Clone)]
pub struct Receiver {
    client: reqwest::Client,
    url: Url,
    secrets: WebhookSecrets,
    timeout: Duration,
}

impl Receiver {
    pub fn new(config: &WebhookConfig, url: Url) -> Result<Self, AdapterError> {
        let tls = tls_config(config.ca_pem.as_deref())?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            // Following a redirect would send a signed item, with its citizen reference, to
            // wherever the answer points (another host, plain http), and a 303 would turn the
            // POST into a GET that looks delivered. A 3xx is a failure that names the target.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .user_agent(concat!("onedoor-adapter/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AdapterError::Config(format!("webhook: building the HTTP client: {e}")))?;
        Ok(Receiver {
            client,
            url,
            secrets: config.secrets.clone(),
            timeout: config.timeout,
        })
    }

    /// The URL without its query, as logs show it (a query may carry the receiver's own token).
    pub fn shown_url(&self) -> String {
        let mut shown = self.url.clone();
        shown.set_query(None);
        shown.to_string()
    }

    /// The longest one POST may take, connection and answer included.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `body` for event `id`, signed now with every secret in force.
    pub fn signed(&self, id: &str, body: Vec<u8>, traceparent: Option<String>) -> Delivery {
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        Delivery {
            id: id.to_owned(),
            timestamp,
            signature: signature::signature_header(&self.secrets, id, timestamp, &body),
            body,
            traceparent,
        }
    }

    /// POSTs `body` signed for event `id` now; `Ok(status)` when the answer is 2xx.
    pub(crate) async fn post(
        &self,
        id: &str,
        body: Vec<u8>,
        traceparent: Option<String>,
    ) -> Result<u16, Failure> {
        self.send(self.signed(id, body, traceparent))
            .await?
            .delivered()
    }

    /// POSTs `delivery` as it is; any answer is `Ok`, only no answer is a [`Failure`].
    pub async fn send(&self, delivery: Delivery) -> Result<Answer, Failure> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(WEBHOOK_ID, delivery.id)
            .header(WEBHOOK_TIMESTAMP, delivery.timestamp.to_string())
            .header(WEBHOOK_SIGNATURE, delivery.signature);
        if let Some(traceparent) = delivery.traceparent {
            request = request.header("traceparent", traceparent);
        }
        let response = request
            .body(delivery.body)
            .send()
            .await
            .map_err(|e| self.failure(&e))?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(SHOWN_BODY_CHARS)
            .collect();
        // Also drains a short answer so the connection can be reused.
        let body = read_capped(response).await.unwrap_or_default();
        Ok(Answer {
            status,
            body,
            location,
        })
    }

    fn failure(&self, err: &reqwest::Error) -> Failure {
        if err.is_timeout() {
            return Failure::TimedOut(self.timeout);
        }
        // `without_url`: reqwest's message would otherwise repeat the URL, query and all.
        let mut why = String::new();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(cause) = source {
            let text = match cause.downcast_ref::<reqwest::Error>() {
                Some(e) => e_without_url(e),
                None => cause.to_string(),
            };
            if !why.contains(&text) {
                if !why.is_empty() {
                    why.push_str(": ");
                }
                why.push_str(&text);
            }
            source = cause.source();
        }
        Failure::Unreachable(why)
    }
}

fn e_without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "<url>");
    }
    text
}

/// At most [`RESPONSE_BODY_CAP`] bytes of the answer; the rest is never read.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = RESPONSE_BODY_CAP.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= RESPONSE_BODY_CAP {
            break;
        }
    }
    Ok(body)
}

/// rustls on ring (the one provider in the build), trusting `ca_pem` only when given, else the
/// system's roots.
fn tls_config(ca_pem: Option<&str>) -> Result<rustls::ClientConfig, AdapterError> {
    let invalid = |why: String| AdapterError::Config(format!("webhook ca: {why}"));
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| invalid(format!("not PEM certificates ({e})")))?;
                roots
                    .add(cert)
                    .map_err(|e| invalid(format!("a certificate is not usable as a CA ({e})")))?;
            }
            if roots.is_empty() {
                return Err(invalid("holds no certificate".to_owned()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for err in &found.errors {
                tracing::warn!(error = %err, "webhook: a system CA certificate could not be read");
            }
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(
                added,
                ignored,
                "webhook: trusting the system's CA certificates"
            );
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
