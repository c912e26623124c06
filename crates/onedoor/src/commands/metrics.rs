//! The process's Prometheus exporter: libraries record metrics, the binary serves them.

use std::net::SocketAddr;

use anyhow::Context as _;

/// Serves `/metrics` on `address`. Call once per process, before the servers start.
pub fn install(address: SocketAddr) -> anyhow::Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(address)
        .install()
        .with_context(|| format!("serving Prometheus metrics on {address}"))
}
