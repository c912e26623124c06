//! What the operator creates before any adapter connects, because agencies have no right to
//! create anything: the `ONEDOOR` stream, every agency's `inbox-<AGENCY>` consumer and the
//! `ONEDOOR_STUCK` bucket.
//!
//! The tracker's durable consumer `tracker` is not made here: its configuration belongs to the
//! tracker crate (above this one). The caller creates it with the operator's connection too.

use async_nats::jetstream;
use onedoor_bus::inbox::{InboxEnsured, ensure_inbox_outcome};
use onedoor_bus::{EnsureOutcome, InboxSettings, StreamSettings, ensure_stream};
use onedoor_case::{AgencyCode, Registry};

use crate::error::NatsAuthError;

/// What [`provision`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub stream: EnsureOutcome,
    /// One entry per agency of the registry, in code order.
    pub inboxes: Vec<(AgencyCode, InboxEnsured)>,
}

/// Creates (or checks) the stream, one inbox consumer per agency in `registry` (merged-away
/// agencies included: they still finish their tasks) and the stuck bucket. `js` must be the
/// operator's connection. Running it again changes nothing.
///
/// `inbox` must be the settings the adapters use: an adapter checks its consumer on start
/// (`ensure_inbox`) and would try to update one that differs, which its credentials refuse.
pub async fn provision(
    js: &jetstream::Context,
    registry: &Registry,
    stream: &StreamSettings,
    inbox: &InboxSettings,
) -> Result<Provisioned, NatsAuthError> {
    let bus = |action: String| move |source| NatsAuthError::Bus { action, source };
    let stream = ensure_stream(js, stream)
        .await
        .map_err(bus("creating the ONEDOOR stream".to_owned()))?;
    let mut inboxes = Vec::with_capacity(registry.agencies.len());
    for code in registry.agencies.keys() {
        let (_, outcome) = ensure_inbox_outcome(js, code, inbox)
            .await
            .map_err(bus(format!("creating the inbox consumer of {code}")))?;
        inboxes.push((code.clone(), outcome));
    }
    onedoor_bus::stuck::ensure_stuck_bucket(js)
        .await
        .map_err(bus("creating the stuck-deliveries bucket".to_owned()))?;
    tracing::info!(
        ?stream,
        inboxes = inboxes.len(),
        "stream, inbox consumers and stuck bucket ready"
    );
    Ok(Provisioned { stream, inboxes })
}
