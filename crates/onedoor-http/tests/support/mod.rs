//! A plain HTTP/1.1 client for the JSON face (hyper over a TCP or TLS socket), as a ministry's
//! web application would call it, and a reader of Server-Sent Events.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// What a test waits at most for the next inbox event.
pub const EVENT_DEADLINE: Duration = Duration::from_secs(20);

/// One answer, its body read as JSON (`Value::Null` when it is not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn field(&self) -> Option<&str> {
        self.body["field"].as_str()
    }

    pub fn traceparent(&self) -> &str {
        self.headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// How to reach an adapter's JSON face: `http://127.0.0.1:PORT` (or over TLS with `tls`).
#[derive(Clone)]
pub struct JsonClient {
    pub address: String,
    pub token: Option<String>,
    pub tls: Option<(
        tokio_rustls::TlsConnector,
        rustls_pki_types::ServerName<'static>,
    )>,
}

impl JsonClient {
    pub fn new(address: &str, token: Option<String>) -> Self {
        let address = address
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_owned();
        JsonClient {
            address,
            token,
            tls: None,
        }
    }

    /// `POST /v1/{method}` with a JSON value.
    pub async fn call(&self, method: &str, body: &Value) -> anyhow::Result<Answer> {
        self.send(
            Method::POST,
            &format!("/v1/{method}"),
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
    }

    /// Any request, with the client's token unless `headers` names an authorization.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<Answer> {
        let response = self.request(method, path, headers, body).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await?.to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// The response as it arrives (for an event stream).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<http::Response<Incoming>> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.address);
        if let Some(token) = &self.token
            && !headers.iter().any(|(name, _)| *name == "authorization")
        {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body)))?;
        let tcp = TcpStream::connect(&self.address).await?;
        match &self.tls {
            None => send_on(tcp, request).await,
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), tcp).await?;
                send_on(tls, request).await
            }
        }
    }
}

async fn send_on<S>(
    stream: S,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<http::Response<Incoming>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(connection);
    Ok(sender.send_request(request).await?)
}

/// Server-Sent Events off a response body: `(event, data)` pairs, comments skipped.
pub struct Events {
    body: Incoming,
    buffer: String,
}

impl Events {
    pub fn new(response: http::Response<Incoming>) -> Self {
        Events {
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    /// The next event, or `None` when the stream ended; fails after [`EVENT_DEADLINE`].
    pub async fn next(&mut self) -> anyhow::Result<Option<(String, Value)>> {
        tokio::time::timeout(EVENT_DEADLINE, self.read())
            .await
            .context("no event within the deadline")?
    }

    async fn read(&mut self) -> anyhow::Result<Option<(String, Value)>> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = name.trim().to_owned();
                    } else if let Some(more) = line.strip_prefix("data:") {
                        data.push_str(more.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Ok(Some((event, serde_json::from_str(&data)?)));
            }
            let Some(frame) = self.body.frame().await else {
                return Ok(None);
            };
            if let Ok(data) = frame?.into_data() {
                self.buffer.push_str(std::str::from_utf8(&data)?);
            }
        }
    }
}

/// A tool `scripts/setup.sh` installs into `.tools/venv/bin` (the workspace's, found from this
/// crate's directory).
pub fn tool(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join(".tools/venv/bin").join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run `bash scripts/setup.sh`",
        path.display()
    );
    Ok(path)
}
