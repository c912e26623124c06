//! `onedoor bench --production`: the bus as production runs it, on loopback. The three-node
//! cluster from `deploy/nats/`'s own files (client TLS, route mutual TLS, `sync_interval:
//! always`, one nkey user per identity with the permissions generated from the registry),
//! started by the test kit's [`DeployCluster`]; the ONEDOOR stream with three replicas and the
//! bench agencies' inboxes made by the operator identity, as `onedoor provision` makes them
//! (agencies may create nothing); adapters that speak TLS on gRPC and connect to NATS as their
//! own agency over TLS; and a development CA for the gRPC certificates.
//!
//! Why the test kit: it already runs `deploy/nats/` exactly (the files, the environment they
//! read, route ports, readiness), and a second copy of that would drift from the deploy files
//! the tests check. The files are read from this checkout (`deploy/nats/`), so the production
//! mode runs from a source tree, as benches do.

use std::path::PathBuf;

use onedoor_bus::{InboxSettings, StreamSettings};
use onedoor_case::{AgencyCode, Registry};
use onedoor_grpc::TlsIdentity;
use onedoor_grpc::devpki::DevPki;
use onedoor_natsauth::{ConnectSettings, Desired, Identity, NatsTls};
use onedoor_testkit::DeployCluster;

use crate::BenchError;

/// The cluster, its credentials and the gRPC certificates of one production-mode run.
pub struct ProductionCluster {
    cluster: DeployCluster,
    /// The adapters' server certificate (loopback names) and its CA, which clients trust.
    pki: DevPki,
    version: String,
}

impl ProductionCluster {
    /// Starts the cluster with a user per identity of `registry`, then provisions the stream
    /// (R3) and the inboxes of `agencies` with `inbox`, the settings their adapters use.
    pub async fn start<'a>(
        registry: &Registry,
        agencies: impl IntoIterator<Item = &'a AgencyCode>,
        inbox: &InboxSettings,
    ) -> Result<Self, BenchError> {
        let cluster = DeployCluster::start(registry)
            .await
            .map_err(BenchError::nats(
                "starting the production cluster (deploy/nats)",
            ))?;
        let version = onedoor_natsd::locate()?.version.to_string();
        let pki = DevPki::generate(std::iter::empty())?;
        let production = ProductionCluster {
            cluster,
            pki,
            version,
        };
        production.provision(registry, agencies, inbox).await?;
        Ok(production)
    }

    /// What `onedoor provision --replicas 3` makes, for the bench's agencies only (the rest
    /// of the registry has no adapter here, and each R3 consumer costs the cluster).
    async fn provision<'a>(
        &self,
        registry: &Registry,
        agencies: impl IntoIterator<Item = &'a AgencyCode>,
        inbox: &InboxSettings,
    ) -> Result<(), BenchError> {
        let wanted: Vec<String> = agencies
            .into_iter()
            .map(|code| format!("inbox-{code}"))
            .collect();
        let mut desired = Desired::new(registry, StreamSettings::production(), inbox)
            .map_err(BenchError::nats("the wanted stream and inboxes"))?;
        desired.consumers.retain(|consumer| {
            consumer
                .config
                .durable_name
                .as_ref()
                .is_some_and(|name| wanted.contains(name))
        });
        let operator = self
            .cluster
            .connect(&Identity::Operator)
            .await
            .map_err(BenchError::nats("connecting as the operator"))?;
        let js = async_nats::jetstream::new(operator);
        onedoor_natsauth::provision(&js, &desired, false)
            .await
            .map_err(BenchError::nats("provisioning the stream and inboxes"))?;
        Ok(())
    }

    /// `tls://127.0.0.1:<port>` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.cluster.urls()
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Every node, `identity`'s own seed, TLS with the cluster's CA.
    pub fn connect_settings(&self, identity: &Identity) -> Result<ConnectSettings, BenchError> {
        let seed: PathBuf = self
            .cluster
            .credentials
            .seed_file(identity)
            .ok_or_else(|| BenchError::Unfit(format!("no NATS credentials for {identity}")))?
            .to_path_buf();
        let mut settings = ConnectSettings::new(self.urls()).with_seed(seed);
        settings.tls = NatsTls {
            ca: Some(self.cluster.ca_pem().to_path_buf()),
            ..NatsTls::default()
        };
        Ok(settings)
    }

    /// The adapters' gRPC TLS: the loopback server certificate; callers use bearer tokens.
    pub fn grpc_tls(&self) -> TlsIdentity {
        TlsIdentity {
            cert_pem: self.pki.server.cert_pem.clone(),
            key_pem: self.pki.server.key_pem.clone(),
            client_ca_pem: None,
        }
    }

    /// The CA the adapters' certificate chains to, for the callers.
    pub fn grpc_ca_pem(&self) -> &str {
        &self.pki.ca_cert_pem
    }

    pub fn pids(&self) -> Vec<u32> {
        (0..onedoor_testkit::deploy_cluster::NODES.len())
            .filter_map(|i| self.cluster.node(i).ok().and_then(|node| node.pid()))
            .collect()
    }

    pub fn monitor_addrs(&self) -> Vec<String> {
        (0..onedoor_testkit::deploy_cluster::NODES.len())
            .filter_map(|i| self.cluster.node(i).ok().map(|node| node.monitor_addr()))
            .collect()
    }
}
