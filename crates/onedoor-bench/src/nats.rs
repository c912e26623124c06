//! The NATS a bench runs on: the pinned nats-server on a fresh file store, a given server, or
//! (`--production`) the production cluster of [`crate::production`]. Whichever it is, the bench
//! reaches it through [`Nats`]: the identity each part connects as, the servers' processes
//! (for their CPU time) and their monitoring endpoints (for message counts).

use std::time::Duration;

use async_nats::jetstream;
use onedoor_case::Registry;
use onedoor_natsauth::{ConnectSettings, CredentialSet, Identity};
use onedoor_natsd::{NatsServer, ServerSpec};

use crate::BenchError;
use crate::production::ProductionCluster;

/// How long a bench's NATS request may take; generous, as the bench loads a 2-core machine.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

enum Kind {
    /// A server the bench started (so it may read its CPU time and must stop it), with its
    /// fresh store, removed when the bench ends.
    Fresh {
        server: Box<NatsServer>,
        _store: tempfile::TempDir,
    },
    /// A server given with `--nats-url`, no authentication.
    Given,
    Production(Box<ProductionCluster>),
    /// The NATS of a running `onedoor up` (`--up-rss`): its monitoring endpoint, the server's
    /// process, and the identities' seeds under the data dir.
    Up {
        monitor: String,
        pid: Option<u32>,
        credentials: CredentialSet,
    },
}

/// The NATS the bench talks to.
pub(crate) struct Nats {
    kind: Kind,
    pub url: String,
    pub version: Option<String>,
}

impl Nats {
    /// The pinned nats-server on a fresh temporary store, or the server at `url`.
    pub async fn start(url: Option<&str>) -> Result<Nats, BenchError> {
        if let Some(url) = url {
            return Ok(Nats {
                kind: Kind::Given,
                url: url.to_owned(),
                version: None,
            });
        }
        let binary = onedoor_natsd::locate()?;
        let store = tempfile::Builder::new()
            .prefix("onedoor-bench-")
            .tempdir()
            .map_err(BenchError::io("making a temporary store for nats-server"))?;
        let mut spec = ServerSpec::new(binary.clone(), store.path().join("nats"));
        spec.server_name = Some("onedoor-bench".to_owned());
        let server = NatsServer::start(spec).await?;
        Ok(Nats {
            url: server.client_url(),
            kind: Kind::Fresh {
                server: Box::new(server),
                _store: store,
            },
            version: Some(binary.version.to_string()),
        })
    }

    /// The production cluster for `registry`'s agencies, its stream (R3) and the inboxes of
    /// `agencies` provisioned by the operator with `inbox`.
    pub async fn production(
        registry: &Registry,
        agencies: impl IntoIterator<Item = &onedoor_case::AgencyCode>,
        inbox: &onedoor_bus::InboxSettings,
    ) -> Result<Nats, BenchError> {
        let cluster = ProductionCluster::start(registry, agencies, inbox).await?;
        Ok(Nats {
            url: cluster.urls().join(","),
            version: Some(cluster.version().to_owned()),
            kind: Kind::Production(Box::new(cluster)),
        })
    }

    /// The NATS of a running `onedoor up` at `url`, credentials from `credentials_dir`.
    pub fn of_up(
        url: String,
        monitor: String,
        pid: Option<u32>,
        credentials_dir: &std::path::Path,
    ) -> Result<Nats, BenchError> {
        let credentials = CredentialSet::load(credentials_dir)
            .map_err(BenchError::nats("reading the bus's NATS credentials"))?;
        Ok(Nats {
            url,
            version: None,
            kind: Kind::Up {
                monitor,
                pid,
                credentials,
            },
        })
    }

    pub fn is_production(&self) -> bool {
        matches!(self.kind, Kind::Production(_))
    }

    /// How `identity` reaches this NATS: its nkey and the cluster's CA in production, nothing
    /// on a development server.
    pub fn connect_settings(&self, identity: &Identity) -> Result<ConnectSettings, BenchError> {
        match &self.kind {
            Kind::Production(cluster) => cluster.connect_settings(identity),
            Kind::Fresh { .. } | Kind::Given => Ok(ConnectSettings::new([self.url.clone()])),
            Kind::Up { credentials, .. } => {
                let seed = credentials.seed_file(identity).ok_or_else(|| {
                    BenchError::Unfit(format!("the bus has no NATS credentials for {identity}"))
                })?;
                Ok(ConnectSettings::new([self.url.clone()]).with_seed(seed))
            }
        }
    }

    /// A new connection as `identity`.
    pub async fn client(&self, identity: &Identity) -> Result<async_nats::Client, BenchError> {
        let settings = self
            .connect_settings(identity)?
            .with_startup_timeout(Some(Duration::from_secs(10)));
        settings
            .connect(identity, |options| {
                options.request_timeout(Some(REQUEST_TIMEOUT))
            })
            .await
            .map_err(BenchError::nats(format!(
                "connecting to {} as {identity}",
                self.url
            )))
    }

    /// A JetStream context as the operator (everything on a development server), with the
    /// ONEDOOR stream in place.
    pub async fn jetstream(&self) -> Result<jetstream::Context, BenchError> {
        let mut js = jetstream::new(self.client(&Identity::Operator).await?);
        js.set_timeout(REQUEST_TIMEOUT);
        if matches!(self.kind, Kind::Fresh { .. } | Kind::Given) {
            onedoor_bus::ensure_stream(&js, &onedoor_bus::StreamSettings::default()).await?;
        }
        Ok(js)
    }

    /// The processes of the servers the bench started.
    pub fn pids(&self) -> Vec<u32> {
        match &self.kind {
            Kind::Fresh { server, .. } => server.pid().into_iter().collect(),
            Kind::Given => Vec::new(),
            Kind::Production(cluster) => cluster.pids(),
            Kind::Up { pid, .. } => pid.iter().copied().collect(),
        }
    }

    /// The monitoring endpoints (`host:port`) of the servers the bench started.
    pub fn monitor_addrs(&self) -> Vec<String> {
        match &self.kind {
            Kind::Fresh { server, .. } => vec![server.monitor_addr()],
            Kind::Given => Vec::new(),
            Kind::Production(cluster) => cluster.monitor_addrs(),
            Kind::Up { monitor, .. } => vec![monitor.clone()],
        }
    }

    /// The production cluster, when this is one.
    pub fn production_cluster(&self) -> Option<&ProductionCluster> {
        match &self.kind {
            Kind::Production(cluster) => Some(cluster),
            _ => None,
        }
    }

    pub async fn stop(self) {
        match self.kind {
            Kind::Fresh { mut server, .. } => {
                if let Err(err) = server.stop().await {
                    tracing::warn!(error = %err, "nats-server did not stop cleanly");
                }
            }
            // `up` stops its own server.
            Kind::Given | Kind::Up { .. } => {}
            // Dropping the cluster kills its nodes and removes their files.
            Kind::Production(cluster) => drop(cluster),
        }
    }
}
