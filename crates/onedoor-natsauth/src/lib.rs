//! NATS authentication and authorization for onedoor, generated from the registry: each agency
//! can only speak for itself (`docs/architecture.md`, "Rules every part keeps").
//!
//! # Layout
//!
//! - [`identity`]: [`Identity`]: one NATS user per agency (merged-away ones too), plus
//!   `operator`, `tracker`, `auditor` and `system`; the accounts they live in and each one's
//!   reply-subject prefix `_INBOX_<name>`.
//! - [`permissions`]: [`Permissions::for_identity`], the exact publish/subscribe lists, with a
//!   table saying which code uses each subject.
//! - [`config`]: [`render_config`], the nats-server fragment (accounts, nkey users,
//!   permissions, system account) for `ServerSpec::extra_config` or an `include`.
//! - [`secret`]: [`Seed`] (never printed) and [`PublicKey`].
//! - [`credentials`]: [`CredentialSet`], seed files (0600) plus `credentials.json` under a
//!   directory: generate, load, load-or-generate, rotate, read a seed.
//! - [`client`]: [`ConnectSettings`], how every process reaches NATS (several URLs, an nkey
//!   seed or a `.creds` file, TLS) and connects with back-off until a start-up deadline.
//! - [`liveness`]: [`Liveness`], whether NATS still answers (a frozen server included), for
//!   gRPC health.
//! - [`connect`]: [`connect_options`], a client configured as an identity, and
//!   [`PermissionViolation`], the server's refusal as seen in the client's events.
//! - [`provision`](mod@provision): [`provision()`], what the operator creates before adapters
//!   connect (stream, every inbox consumer, the tracker's consumer, the stuck bucket):
//!   [`survey`] against [`Desired`], refusals, [`apply`].
//! - [`district`]: a district office's own node: its JetStream domain ([`office_domain`]).
//! - [`error`]: [`NatsAuthError`], the crate's one error type.
//!
//! # Use
//!
//! ```text
//! let creds = CredentialSet::load_or_generate(&data_dir.join("nats-credentials"), &registry)?;
//! spec.extra_config = render_config(&registry, &creds)?;          // then start nats-server
//! let operator = creds.connect_options(&Identity::Operator)?.connect(url).await?;
//! let desired = Desired::new(&registry, stream_settings, &inbox_settings)?
//!     .with_consumer(tracker_consumer, Start::SetByOwner);
//! provision(&jetstream::new(operator), &desired, false).await?;
//! let adapter = creds.connect_options(&Identity::Agency(code))?.connect(url).await?;
//! ```

pub mod client;
pub mod config;
pub mod connect;
pub mod credentials;
pub mod district;
pub mod error;
pub mod identity;
pub mod liveness;
pub mod permissions;
pub mod provision;
pub mod secret;

pub use client::{
    CONNECTION_TIMEOUT, ConnectSettings, DEFAULT_STARTUP_TIMEOUT, NatsCredentials, NatsTls,
    PING_INTERVAL,
};
pub use config::{render_config, render_config_revoking};
pub use connect::{Denied, PermissionViolation, connect_options, connect_options_from_file};
pub use credentials::{CredentialSet, Entry, MANIFEST_FILE, read_seed_file};
pub use district::office_domain;
pub use error::NatsAuthError;
pub use identity::{APP_ACCOUNT, Identity, SYSTEM_ACCOUNT};
pub use liveness::{Liveness, LivenessSettings};
pub use permissions::Permissions;
pub use provision::{Desired, Survey, WantedConsumer, apply, provision, survey};
pub use secret::{PublicKey, Seed};
