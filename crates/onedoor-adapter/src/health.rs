//! The adapter's gRPC health (`onedoor.v1.AgencyGateway`, and `""` for the server as a whole,
//! which a probe without a service name asks): whether NATS answers, a frozen server included
//! (`docs/jetstream.md` §13).

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::server::SERVICE_NAME;

/// Sets the service and the whole server to `status`.
pub(crate) async fn report(health: &HealthReporter, status: ServingStatus) {
    for service in [SERVICE_NAME, ""] {
        health.set_service_status(service, status).await;
    }
}

/// Health follows whether NATS answers (not merely whether the socket is open), so a load
/// balancer or an operator sees an outage without a write failing first.
pub(crate) async fn follow_nats(health: HealthReporter, mut answering: watch::Receiver<bool>) {
    loop {
        let status = if *answering.borrow_and_update() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        report(&health, status).await;
        if answering.changed().await.is_err() {
            return;
        }
    }
}
