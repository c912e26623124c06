//! What the tracker needs to run. Built by the CLI (flags, environment, `endpoints.json`) or by a
//! test, then checked once by [`TrackerConfig::validate`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use onedoor_bus::subjects::TRACKER_CONSUMER;
use onedoor_case::{LiveRegistry, Registry};
use onedoor_natsauth::{ConnectSettings, Identity, LivenessSettings};

/// How long JetStream waits for the tracker's ack before redelivering, unless a
/// [`TrackerConfig`] says otherwise; `onedoor provision` makes the consumer with it.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(10);

pub use onedoor_grpc::TlsIdentity;

use crate::access::GrpcAccess;
use crate::clock::{Clock, SystemClock};
pub use crate::database_url::{Backend, DatabaseUrl};
use crate::error::TrackerError;

/// The registry shipped with onedoor, so a tracker started without `--registry` uses the same
/// calendar as `onedoor up`.
const BUILT_IN_REGISTRY: &str = include_str!("../../../deploy/registry/lao-2025.toml");

/// The shipped 2025 registry (agencies, catalogue, working calendar).
pub fn built_in_registry() -> Result<Registry, TrackerError> {
    Registry::from_toml(BUILT_IN_REGISTRY, "built-in deploy/registry/lao-2025.toml").map_err(|e| {
        TrackerError::Config {
            key: "registry",
            why: e.to_string(),
        }
    })
}

/// How long a district office may stay silent before it is shown disconnected.
pub const DEFAULT_OFFICE_SILENCE: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct TrackerConfig {
    /// Where the ONEDOOR stream is (every node of a cluster), as the `tracker` NATS identity
    /// (no credentials for a NATS without authentication), with TLS when configured.
    pub nats: ConnectSettings,
    /// How quickly health notices that NATS stopped answering.
    pub liveness: LivenessSettings,
    pub database: DatabaseUrl,
    /// The working calendar (due times are fixed by the events; lateness in working days is
    /// counted with this calendar) and agency names. Shared with the registry feed, which
    /// may swap it while the tracker runs.
    pub registry: LiveRegistry,
    /// Follow the operator's published registry (`onedoor_bus::registry_feed`) on a
    /// connection of its own, and move `registry` to each later one it signed.
    pub follow_registry: bool,
    /// Durable consumer name. The contract name is `tracker`; tests running two trackers on one
    /// stream give each its own.
    pub consumer: String,
    pub clock: Arc<dyn Clock>,
    /// How often a `WatchCase` stream re-reads the database even without a notification, so
    /// events projected by another tracker process on the same database still reach it.
    pub watch_poll: Duration,
    /// How often the overdue-task gauges are recomputed (overdue changes with time alone).
    pub sla_refresh: Duration,
    /// How long JetStream waits for the tracker's ack before redelivering (set when the durable
    /// consumer is created). Applying is idempotent, so short is safe: after a crash, the
    /// messages the dead tracker held come back within this time.
    pub ack_wait: Duration,
    /// Check every case's signatures and hash chain against the registry's agency keys as it
    /// is projected, and show a failure as the case's problem. Off for a registry without keys
    /// (every event would fail as unsigned).
    pub verify_signatures: bool,
    /// Serve gRPC (and the web page) over TLS with this identity; with a client CA, agencies'
    /// client certificates are accepted on gRPC. `None`: plaintext, for loopback and tests.
    pub tls: Option<TlsIdentity>,
    /// Who may call CaseTracker and what each caller sees. `None` leaves gRPC open to anyone
    /// who can reach it (in-process tests, loopback); `onedoor tracker` and `up` always set it.
    pub grpc_access: Option<GrpcAccess>,
    /// A district office not heard from for this long is shown disconnected (its adapter
    /// sends its status every 5 s: three missed in a row).
    pub office_silence: Duration,
}

impl TrackerConfig {
    /// Connects as the `tracker` identity, waiting at start as `self.nats` allows; `name`
    /// tells this connection apart in the server's `/connz`.
    pub async fn connect_nats(&self, name: &str) -> Result<async_nats::Client, TrackerError> {
        self.nats
            .connect(&Identity::Tracker, |options| options.name(name))
            .await
            .map_err(|e| TrackerError::Connect(Box::new(e)))
    }

    /// One attempt at each server, at start: a refusal (identity, TLS, address) is an error,
    /// for the tracker to stop on at once rather than serve a view that never fills; a NATS
    /// that does not answer yet is `None`, for the projection to wait for while the API
    /// answers from the database.
    pub async fn first_connection(
        &self,
        name: &str,
    ) -> Result<Option<async_nats::Client>, TrackerError> {
        let once = self.nats.clone().with_startup_timeout(Some(Duration::ZERO));
        match once
            .connect(&Identity::Tracker, |options| options.name(name))
            .await
        {
            Ok(client) => Ok(Some(client)),
            Err(onedoor_natsauth::NatsAuthError::NatsUnreachable { last, .. }) => {
                tracing::warn!(urls = %self.nats.urls_text(), error = %last, "no NATS server answers yet; serving from the database and waiting for one");
                Ok(None)
            }
            Err(error) => Err(TrackerError::Connect(Box::new(error))),
        }
    }

    pub fn new(
        nats_url: impl Into<String>,
        database: DatabaseUrl,
        registry: impl Into<LiveRegistry>,
    ) -> Self {
        TrackerConfig {
            nats: ConnectSettings::new([nats_url.into()]),
            liveness: LivenessSettings::default(),
            database,
            registry: registry.into(),
            follow_registry: false,
            consumer: TRACKER_CONSUMER.to_owned(),
            clock: Arc::new(SystemClock),
            watch_poll: Duration::from_secs(2),
            sla_refresh: Duration::from_secs(30),
            ack_wait: DEFAULT_ACK_WAIT,
            verify_signatures: false,
            tls: None,
            grpc_access: None,
            office_silence: DEFAULT_OFFICE_SILENCE,
        }
    }

    pub fn validate(&self) -> Result<(), TrackerError> {
        self.database.backend()?;
        if let Err(error) = self.nats.validate() {
            return Err(TrackerError::Config {
                key: "nats_url",
                why: error.to_string(),
            });
        }
        if onedoor_bus::subjects::check_token(&self.consumer).is_err() {
            return Err(TrackerError::Config {
                key: "consumer",
                why: format!("{:?} cannot be a JetStream consumer name", self.consumer),
            });
        }
        for (key, value) in [
            ("watch_poll", self.watch_poll),
            ("sla_refresh", self.sla_refresh),
            ("ack_wait", self.ack_wait),
        ] {
            if value.is_zero() {
                return Err(TrackerError::Config {
                    key,
                    why: "must be more than zero".into(),
                });
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TrackerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackerConfig")
            .field("nats", &self.nats)
            .field("database", &self.database)
            .field("registry", &self.registry.current().name)
            .field("consumer", &self.consumer)
            .field("watch_poll", &self.watch_poll)
            .field("sla_refresh", &self.sla_refresh)
            .field("ack_wait", &self.ack_wait)
            .field("tls", &self.tls.is_some())
            .field("grpc_access", &self.grpc_access.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_never_print() {
        let url =
            DatabaseUrl::parse("postgres://tracker:s3cret@db.example:5432/onedoor").expect("valid");
        assert!(!url.to_string().contains("s3cret"));
        assert!(!format!("{url:?}").contains("s3cret"));
        assert!(url.expose().contains("s3cret"));
    }

    #[test]
    fn only_sqlite_and_postgres_urls_are_accepted() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://x.db")
                .and_then(|u| u.backend())
                .ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://u@h/d")
                .and_then(|u| u.backend())
                .ok(),
            Some(Backend::Postgres)
        );
        assert!(DatabaseUrl::parse("mysql://u@h/d").is_err());
    }

    #[test]
    fn the_built_in_registry_loads() {
        assert!(built_in_registry().is_ok());
    }
}
