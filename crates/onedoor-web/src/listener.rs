//! The web page's listener: plain TCP, or TLS (rustls, ring) when given a server
//! certificate. TLS handshakes run in their own tasks, so a client that opens a connection and
//! never finishes its handshake holds up nobody else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use onedoor_tracker::TlsIdentity;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

use crate::error::WebError;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const READY_BACKLOG: usize = 64;

fn tls_error(why: impl std::fmt::Display) -> WebError {
    WebError::Config {
        key: "tls",
        why: why.to_string(),
    }
}

/// A rustls server configuration (HTTP/1.1 by ALPN) from a PEM certificate chain and key.
pub fn server_config(identity: &TlsIdentity) -> Result<Arc<ServerConfig>, WebError> {
    let certs = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("server certificate: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error("no certificate in the server certificate PEM"));
    }
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .map_err(|e| tls_error(format!("server key: {e}")))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(tls_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Any connection the web server reads and writes.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// The web page's listener (an [`axum::serve`] listener).
pub struct WebListener {
    local: SocketAddr,
    inner: Inner,
}

enum Inner {
    Plain(TcpListener),
    Tls {
        ready: mpsc::Receiver<(Box<dyn Io>, SocketAddr)>,
        acceptor: tokio::task::JoinHandle<()>,
    },
}

impl Drop for WebListener {
    fn drop(&mut self) {
        if let Inner::Tls { acceptor, .. } = &self.inner {
            acceptor.abort();
        }
    }
}

impl WebListener {
    pub fn plain(listener: TcpListener) -> Result<Self, WebError> {
        let local = listener
            .local_addr()
            .map_err(|e| WebError::Serve(format!("web listener: {e}")))?;
        Ok(WebListener {
            local,
            inner: Inner::Plain(listener),
        })
    }

    /// Accepts TCP connections on `listener` and serves those whose TLS handshake succeeds.
    pub fn tls(listener: TcpListener, config: Arc<ServerConfig>) -> Result<Self, WebError> {
        let local = listener
            .local_addr()
            .map_err(|e| WebError::Serve(format!("web listener: {e}")))?;
        let (tx, ready) = mpsc::channel(READY_BACKLOG);
        let acceptor = tokio::spawn(accept_tls(listener, TlsAcceptor::from(config), tx));
        Ok(WebListener {
            local,
            inner: Inner::Tls { ready, acceptor },
        })
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls { .. })
    }
}

async fn accept_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(Box<dyn Io>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            () = ready.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "web page: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((Box::new(tls), peer)).await;
                }
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "web page: TLS handshake failed")
                }
                Err(_) => tracing::debug!(%peer, "web page: TLS handshake timed out"),
            }
        });
    }
}

impl Listener for WebListener {
    type Io = Box<dyn Io>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match &mut self.inner {
            Inner::Plain(listener) => loop {
                match TcpListener::accept(listener).await {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        return (Box::new(stream), peer);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "web page: accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            },
            Inner::Tls { ready, .. } => match ready.recv().await {
                Some(connection) => connection,
                // The acceptor task is gone (it only ends when this listener is dropped): no
                // connection will ever come.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The client's address, for the sign-in rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, WebListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, WebListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}
