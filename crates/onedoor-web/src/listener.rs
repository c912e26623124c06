//! The web page's listener: plain TCP, or TLS (rustls, ring) when given a server
//! certificate. TLS handshakes run in their own tasks under a deadline, so a client that opens
//! a connection and never finishes its handshake holds up nobody else and is closed. Every
//! connection takes a slot of its client's (see `client`) from the moment it is accepted, so
//! one client cannot hold more than a set number of connections, handshaking ones included.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use onedoor_tracker::TlsIdentity;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

use crate::client::{TrustedProxies, client_key};
use crate::error::WebError;

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

/// An accepted connection: the stream, its peer, and the slot it holds.
pub type Accepted = (Box<dyn Io>, SocketAddr, Slot);

/// Connections open per client. A trusted proxy carries many clients: it is not capped.
#[derive(Debug)]
pub struct ConnectionCap {
    limit: usize,
    proxies: TrustedProxies,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of a client, given back when dropped.
pub struct Slot {
    cap: Option<(Arc<ConnectionCap>, IpAddr)>,
}

impl ConnectionCap {
    pub fn new(limit: usize, proxies: TrustedProxies) -> Arc<Self> {
        Arc::new(ConnectionCap {
            limit,
            proxies,
            open: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Counts only; a panic elsewhere leaves them valid.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a connection from `peer`, or `None` when its client has all of its own.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        if self.proxies.trusts(peer) {
            return Some(Slot { cap: None });
        }
        let client = client_key(peer);
        let mut open = self.lock();
        let count = open.entry(client).or_default();
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            cap: Some((self.clone(), client)),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((cap, client)) = self.cap.take() {
            let mut open = cap.lock();
            if let Some(count) = open.get_mut(&client) {
                *count -= 1;
                if *count == 0 {
                    open.remove(&client);
                }
            }
        }
    }
}

/// The web page's listener.
pub struct WebListener {
    local: SocketAddr,
    inner: Inner,
}

enum Inner {
    Plain {
        listener: TcpListener,
        cap: Arc<ConnectionCap>,
    },
    Tls {
        ready: mpsc::Receiver<Accepted>,
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

/// Accepts one TCP connection that its client has a slot for, waiting out failures such as
/// running out of file descriptors instead of spinning.
async fn accept_tcp(
    listener: &TcpListener,
    cap: &Arc<ConnectionCap>,
) -> (tokio::net::TcpStream, SocketAddr, Slot) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Some(slot) = cap.admit(peer.ip()) else {
                    tracing::debug!(%peer, "web page: too many connections from this client");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                return (stream, peer, slot);
            }
            Err(error) => {
                tracing::warn!(%error, "web page: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

impl WebListener {
    pub fn plain(listener: TcpListener, cap: Arc<ConnectionCap>) -> Result<Self, WebError> {
        let local = listener
            .local_addr()
            .map_err(|e| WebError::Serve(format!("web listener: {e}")))?;
        Ok(WebListener {
            local,
            inner: Inner::Plain { listener, cap },
        })
    }

    /// Accepts TCP connections on `listener` and serves those whose TLS handshake succeeds
    /// within `handshake`.
    pub fn tls(
        listener: TcpListener,
        config: Arc<ServerConfig>,
        cap: Arc<ConnectionCap>,
        handshake: Duration,
    ) -> Result<Self, WebError> {
        let local = listener
            .local_addr()
            .map_err(|e| WebError::Serve(format!("web listener: {e}")))?;
        let (tx, ready) = mpsc::channel(READY_BACKLOG);
        let acceptor = TlsAcceptor::from(config);
        let acceptor = tokio::spawn(accept_tls(listener, acceptor, cap, handshake, tx));
        Ok(WebListener {
            local,
            inner: Inner::Tls { ready, acceptor },
        })
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls { .. })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub async fn accept(&mut self) -> Accepted {
        match &mut self.inner {
            Inner::Plain { listener, cap } => {
                let (stream, peer, slot) = accept_tcp(listener, cap).await;
                (Box::new(stream), peer, slot)
            }
            Inner::Tls { ready, .. } => match ready.recv().await {
                Some(connection) => connection,
                // The acceptor task is gone (it only ends when this listener is dropped): no
                // connection will ever come.
                None => std::future::pending().await,
            },
        }
    }
}

async fn accept_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    cap: Arc<ConnectionCap>,
    handshake: Duration,
    ready: mpsc::Sender<Accepted>,
) {
    loop {
        let (stream, peer, slot) = tokio::select! {
            () = ready.closed() => return,
            accepted = accept_tcp(&listener, &cap) => accepted,
        };
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((Box::new(tls), peer, slot)).await;
                }
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "web page: TLS handshake failed")
                }
                Err(_) => tracing::debug!(%peer, "web page: TLS handshake timed out"),
            }
        });
    }
}

/// The connection's peer, for the per-client limits (see `client` for who that is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);
