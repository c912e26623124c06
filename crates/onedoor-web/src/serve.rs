//! Serving connections: HTTP/1.1 (what the listener's ALPN offers) with hyper's header-read
//! timeout, which also closes an idle kept-alive connection (hyper starts the clock when it
//! waits for the next request's head). So a slowloris client that sends part of a header and
//! then nothing, or opens a connection and says nothing, is closed after it.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tower_service::Service as _;

use crate::listener::{ClientAddr, WebListener};

/// How long shutdown waits for requests in progress (live streams end with the tracker).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stopped`, then lets requests in progress finish.
pub async fn run(
    mut listener: WebListener,
    app: Router,
    header_read: Duration,
    stopped: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read);
    let mut stopped = std::pin::pin!(stopped);
    loop {
        let (io, peer, slot) = tokio::select! {
            () = &mut stopped => break,
            accepted = listener.accept() => accepted,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request
                .extensions_mut()
                .insert(ConnectInfo(ClientAddr(peer)));
            app.clone().call(request)
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(io), service));
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "web page: connection closed");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_WAIT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("web page: connections still open after shutdown; leaving them");
    }
}
