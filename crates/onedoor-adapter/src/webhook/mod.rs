//! Webhook delivery of the inbox: an agency may give one URL instead of pulling, and its adapter
//! POSTs every inbox item there as JSON, signed per Standard Webhooks; 2xx acknowledges it,
//! anything else is retried after a growing, jittered pause (a NAK with delay, so JetStream
//! keeps the item across adapter restarts), and the last failed attempt is recorded as stuck.
//! `docs/webhooks.md` is the receiver's side.
//!
//! # Layout
//! - [`config`]: [`WebhookConfig`] and its validation against the inbox settings.
//! - [`secret`]: [`WebhookSecret`] (`whsec_…`, never printed) and the one or two in force.
//! - [`signature`]: the `webhook-*` headers and the HMAC-SHA256 signature.
//! - [`retry`]: [`RetrySchedule`], the pauses between attempts.
//! - `payload`: [`JsonBody`], the item in the proto3 JSON mapping.
//! - `client`: [`Receiver`], the HTTP client (TLS, no redirects, deadlines, capped answers);
//!   public, with the signer, so `onedoor conformance` posts exactly as the adapter does.
//! - `dispatcher`: the loop from the inbox to the receiver, acks, retries, stuck records.

mod client;
pub mod config;
mod dispatcher;
mod payload;
pub mod retry;
pub mod secret;
pub mod signature;

pub use client::{Answer, Delivery, Failure, RESPONSE_BODY_CAP, Receiver};
pub use config::WebhookConfig;
pub(crate) use dispatcher::spawn;
pub use payload::JsonBody;
pub use retry::RetrySchedule;
pub use secret::{WebhookSecret, WebhookSecrets};
