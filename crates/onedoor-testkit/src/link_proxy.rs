//! [`LinkProxy`]: a TCP proxy on loopback standing for a district office's link to the capital,
//! which a test cuts and restores, and which counts the bytes that crossed it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards every connection made to [`LinkProxy::addr`] to the target. While cut, live
/// connections are closed and new ones are accepted and closed at once, as a link that is down
/// does to a leaf node's reconnect attempts.
pub struct LinkProxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

struct State {
    up: AtomicBool,
    /// Bumped on every cut: each connection watches it and closes when it moves.
    cuts: watch::Sender<u64>,
    /// Bytes from the office to the capital, and back.
    upstream: AtomicU64,
    downstream: AtomicU64,
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

impl LinkProxy {
    /// A proxy to `target` on a free loopback port, link up.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            up: AtomicBool::new(true),
            cuts: watch::channel(0).0,
            upstream: AtomicU64::new(0),
            downstream: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, target, state.clone()));
        Ok(LinkProxy {
            addr,
            state,
            accept,
        })
    }

    /// Where the office connects instead of the capital.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes the link down: every connection through it is closed, new ones are refused.
    pub fn cut(&self) {
        self.state.up.store(false, Ordering::SeqCst);
        self.state.cuts.send_modify(|n| *n += 1);
    }

    /// Brings the link back: the next connection attempt goes through.
    pub fn restore(&self) {
        self.state.up.store(true, Ordering::SeqCst);
    }

    pub fn is_up(&self) -> bool {
        self.state.up.load(Ordering::SeqCst)
    }

    /// Bytes carried so far: (office → capital, capital → office).
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.state.upstream.load(Ordering::Relaxed),
            self.state.downstream.load(Ordering::Relaxed),
        )
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, state: Arc<State>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        if !state.up.load(Ordering::SeqCst) {
            drop(inbound);
            continue;
        }
        tokio::spawn(carry(inbound, target, state.clone()));
    }
}

/// Carries one connection both ways until either side closes or the link is cut.
async fn carry(inbound: TcpStream, target: SocketAddr, state: Arc<State>) {
    let mut cuts = state.cuts.subscribe();
    cuts.mark_unchanged();
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let up = copy(in_read, out_write, &state.upstream);
    let down = copy(out_read, in_write, &state.downstream);
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cuts.changed() => {}
    }
}

async fn copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counter: &AtomicU64,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}
