//! [`DeployCluster`]: the production NATS cluster as `deploy/nats/` defines it (three nodes,
//! client TLS, mutual route TLS, the generated accounts and nkey users, `sync_interval:
//! always`), run from copies of those very files on 127.0.0.1 with fresh certificates and
//! credentials. Tests of the production layout start it; a change to the deploy files that
//! breaks the cluster breaks them.
//!
//! The files take every host value from the environment (`$ONEDOOR_NATSD_*`); here client and
//! monitoring listeners start on `127.0.0.1:-1` and are pinned to the ports the servers chose,
//! so a restarted node comes back where clients expect it. Route ports are reserved up front,
//! as [`crate::TestCluster`] does, and the start is retried if one was taken meanwhile.

mod pki;

use std::path::{Path, PathBuf};
use std::process::Command;

use async_nats::ConnectOptions;
use onedoor_case::Registry;
use onedoor_natsauth::{CredentialSet, Identity, connect_options, render_config};
use onedoor_natsd::{ClusterSpec, NatsBinary, NatsServer, NatsdError, ServerSpec};
use tempfile::TempDir;

pub use pki::ClusterTls;

use crate::binary;
use crate::cluster::{fresh_node_dir, reserve_ports, wait_formed, with_fresh_route_ports};
use crate::error::TestkitError;

/// The nodes `deploy/nats/` defines: `cluster-node-<x>.conf`, `server_name: onedoor-nats-<x>`.
pub const NODES: [&str; 3] = ["a", "b", "c"];

/// The cluster's name in `cluster-common.conf`.
pub const CLUSTER_NAME: &str = "onedoor";

/// `deploy/nats/` in this checkout.
pub fn deploy_nats_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats")
}

/// Three nats-server processes started from `deploy/nats/`'s files. Dropping it kills every
/// node, then removes certificates, credentials and stores.
pub struct DeployCluster {
    // Field order is drop order: processes go before their directories.
    nodes: Vec<NatsServer>,
    /// What each node is (re)started with, ports pinned after the first start.
    specs: Vec<ServerSpec>,
    frozen: Vec<usize>,
    names: Vec<String>,
    /// Every identity's nkey seed, from the same registry as `nats-auth.conf`.
    pub credentials: CredentialSet,
    pub tls: ClusterTls,
    config_dir: PathBuf,
    root: TempDir,
}

impl DeployCluster {
    /// Generates certificates, credentials and `nats-auth.conf` for `registry`, copies the
    /// deploy files beside it, starts the three nodes and waits until the cluster has formed.
    pub async fn start(registry: &Registry) -> Result<Self, TestkitError> {
        let root = tempfile::Builder::new()
            .prefix("onedoor-deploy-")
            .tempdir()
            .map_err(TestkitError::TempDir)?;
        let names: Vec<String> = NODES.iter().map(|n| Self::server_name_of(n)).collect();
        let tls_dir = make_dir(root.path(), "tls")?;
        let tls = ClusterTls::generate(&tls_dir, &names)?;
        let credentials = CredentialSet::generate(&root.path().join("credentials"), registry)?;
        let config_dir = make_dir(root.path(), "config")?;
        copy_deploy_files(&config_dir)?;
        pki::write(
            &config_dir.join("nats-auth.conf"),
            &render_config(registry, &credentials)?,
        )?;
        let binary = binary::nats_server()?;
        let (nodes, specs) =
            with_fresh_route_ports(|| launch(&binary, root.path(), &config_dir, &tls)).await?;
        let mut cluster = Self {
            nodes,
            specs,
            frozen: Vec::new(),
            names,
            credentials,
            tls,
            config_dir,
            root,
        };
        cluster.wait_until_healthy().await?;
        Ok(cluster)
    }

    fn server_name_of(node: &str) -> String {
        format!("onedoor-nats-{node}")
    }

    /// `onedoor-nats-a`, …: the `server_name` JetStream reports for node `index`.
    pub fn server_name(&self, index: usize) -> Option<&str> {
        self.names.get(index).map(String::as_str)
    }

    /// The node index of a server name as JetStream reports it (stream and meta leaders).
    pub fn index_of(&self, server_name: &str) -> Option<usize> {
        self.names.iter().position(|name| name == server_name)
    }

    pub fn node(&self, index: usize) -> Result<&NatsServer, TestkitError> {
        self.nodes.get(index).ok_or(TestkitError::NoSuchNode {
            index,
            size: self.nodes.len(),
        })
    }

    /// `tls://127.0.0.1:<port>` of every node, running or not (ports survive restarts).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| format!("tls://127.0.0.1:{}", node.client_port()))
            .collect()
    }

    /// The CA certificate (PEM file) clients need to trust the nodes.
    pub fn ca_pem(&self) -> &Path {
        &self.tls.client_ca
    }

    /// Seed files (`<identity>.nk`, owner-only) and `credentials.json`.
    pub fn credentials_dir(&self) -> &Path {
        self.credentials.dir()
    }

    /// The copies of `deploy/nats/*.conf` and the generated `nats-auth.conf` the nodes run.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// The directory holding everything: `tls/`, `credentials/`, `config/`, one dir per node.
    pub fn root_dir(&self) -> &Path {
        self.root.path()
    }

    /// What node `index` runs with (its config file and environment), e.g. to start a node
    /// that differs in one setting.
    pub fn node_spec(&self, index: usize) -> Result<&ServerSpec, TestkitError> {
        self.specs.get(index).ok_or(TestkitError::NoSuchNode {
            index,
            size: self.specs.len(),
        })
    }

    /// Options for `identity`: its nkey and inbox prefix, TLS with the cluster's CA.
    pub fn connect_options(&self, identity: &Identity) -> Result<ConnectOptions, TestkitError> {
        let seed = self.credentials.seed(identity)?;
        Ok(connect_options(identity, &seed)
            .add_root_certificates(self.tls.client_ca.clone())
            .require_tls(true))
    }

    /// Starts a case reader (as the `reader` user, knowing every node) with `registry`'s keys;
    /// it answers once this returns, until the returned task is aborted. Agencies' adapters
    /// read cases only through it.
    pub async fn start_reader(
        &self,
        registry: Option<std::sync::Arc<Registry>>,
    ) -> Result<tokio::task::JoinHandle<()>, TestkitError> {
        // As `onedoor reader` connects: a short ping interval, so that a reader on a frozen
        // node leaves it within seconds (its queue interest black-holes reads meanwhile).
        let urls = self.urls();
        let client = self
            .connect_options(&Identity::Reader)?
            .ping_interval(onedoor_natsauth::PING_INTERVAL)
            .connect(urls.as_slice())
            .await
            .map_err(|source| TestkitError::Connect {
                url: urls.join(","),
                source,
            })?;
        let log = onedoor_bus::CaseLog::open(async_nats::jetstream::new(client.clone())).await?;
        let reader = std::sync::Arc::new(onedoor_bus::read::CaseReader::new(
            log,
            registry.map(Into::into),
            onedoor_bus::read::READER_CACHED_CASES,
        ));
        Ok(reader.listen(client).await?)
    }

    /// A client as `identity` that knows every node, so it fails over when one is killed.
    pub async fn connect(&self, identity: &Identity) -> Result<async_nats::Client, TestkitError> {
        let urls = self.urls();
        self.connect_options(identity)?
            .connect(urls.as_slice())
            .await
            .map_err(|source| TestkitError::Connect {
                url: urls.join(","),
                source,
            })
    }

    /// `nats-server -t` on every node's file with that node's environment, as an operator
    /// checks a change before a reload.
    pub fn check_configs(&self) -> Result<(), TestkitError> {
        for spec in &self.specs {
            check_config(spec)?;
        }
        Ok(())
    }

    /// Kills node `index` (SIGKILL). Its store and ports are kept for [`DeployCluster::restart`].
    pub fn kill(&mut self, index: usize) -> Result<(), TestkitError> {
        self.thaw(index)?;
        Ok(self.node_mut(index)?.kill()?)
    }

    /// Starts node `index` again (stopping it first if it runs) on its ports and store, then
    /// waits until the cluster is healthy, which includes that node having caught up.
    pub async fn restart(&mut self, index: usize) -> Result<(), TestkitError> {
        self.thaw(index)?;
        self.node_mut(index)?.stop().await?;
        let spec = self.node_spec(index)?.clone();
        self.nodes[index] = NatsServer::start(spec).await?;
        self.wait_until_healthy().await
    }

    /// Freezes node `index` (SIGSTOP): its sockets stay open and it answers nothing, as a
    /// hung host does. Frozen nodes are left out of [`DeployCluster::wait_until_healthy`].
    pub fn freeze(&mut self, index: usize) -> Result<(), TestkitError> {
        signal(self.node(index)?, nix::sys::signal::Signal::SIGSTOP)?;
        if !self.frozen.contains(&index) {
            self.frozen.push(index);
        }
        Ok(())
    }

    /// Lets a frozen node run again (SIGCONT); nothing happens to one that is not frozen.
    pub fn thaw(&mut self, index: usize) -> Result<(), TestkitError> {
        if self.frozen.contains(&index) {
            signal(self.node(index)?, nix::sys::signal::Signal::SIGCONT)?;
            self.frozen.retain(|&i| i != index);
        }
        Ok(())
    }

    /// Waits (up to [`crate::cluster::HEALTHY_TIMEOUT`]) until every running, unfrozen node is
    /// healthy and the meta leader sees each as a current peer.
    pub async fn wait_until_healthy(&mut self) -> Result<(), TestkitError> {
        wait_formed(&mut self.nodes, &self.names, &self.frozen).await
    }

    fn node_mut(&mut self, index: usize) -> Result<&mut NatsServer, TestkitError> {
        let size = self.nodes.len();
        self.nodes
            .get_mut(index)
            .ok_or(TestkitError::NoSuchNode { index, size })
    }
}

pub(crate) fn signal(
    node: &NatsServer,
    signal: nix::sys::signal::Signal,
) -> Result<(), TestkitError> {
    let pid = node.pid().ok_or(NatsdError::NotRunning)?;
    let raw = i32::try_from(pid)
        .map_err(|_| NatsdError::InvalidSpec(format!("pid {pid} does not fit a platform pid")))?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), signal).map_err(|source| {
        TestkitError::Natsd(NatsdError::Signal {
            pid,
            signal: signal.as_str(),
            source,
        })
    })
}

/// `nats-server -t -c <file>` with the spec's environment; the output when it is not valid.
pub fn check_config(spec: &ServerSpec) -> Result<(), TestkitError> {
    let config = spec.config_file.clone().unwrap_or_default();
    let output = Command::new(&spec.binary.path)
        .arg("-t")
        .arg("-c")
        .arg(&config)
        .envs(spec.env.iter().map(|(name, value)| (name, value)))
        .output()
        .map_err(|source| TestkitError::Io {
            action: "running nats-server -t on",
            path: config.clone(),
            source,
        })?;
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    if output.status.success() && text.contains("is valid") {
        Ok(())
    } else {
        Err(TestkitError::InvalidConfig {
            config,
            output: text,
        })
    }
}

fn make_dir(root: &Path, name: &str) -> Result<PathBuf, TestkitError> {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).map_err(|source| TestkitError::Io {
        action: "creating",
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

fn copy_deploy_files(config_dir: &Path) -> Result<(), TestkitError> {
    let files = NODES
        .iter()
        .map(|node| format!("cluster-node-{node}.conf"))
        .chain(["cluster-common.conf".to_owned()]);
    for file in files {
        let from = deploy_nats_dir().join(&file);
        std::fs::copy(&from, config_dir.join(&file)).map_err(|source| TestkitError::Io {
            action: "copying",
            path: from,
            source,
        })?;
    }
    Ok(())
}

/// The environment `cluster-common.conf` reads, for node `index` on loopback.
fn node_env(
    dir: &Path,
    tls: &ClusterTls,
    index: usize,
    route_ports: &[u16],
) -> Vec<(String, String)> {
    let path = |p: &Path| p.display().to_string();
    let (route_cert, route_key) = &tls.routes[index];
    let mut env = vec![
        ("CLIENT_LISTEN".to_owned(), "127.0.0.1:-1".to_owned()),
        ("MONITOR_LISTEN".to_owned(), "127.0.0.1:-1".to_owned()),
        ("STORE_DIR".to_owned(), path(dir)),
        ("TLS_CERT".to_owned(), path(&tls.server_cert)),
        ("TLS_KEY".to_owned(), path(&tls.server_key)),
        ("ROUTE_CERT".to_owned(), path(route_cert)),
        ("ROUTE_KEY".to_owned(), path(route_key)),
        ("ROUTE_CA".to_owned(), path(&tls.route_ca)),
        (
            "ROUTE_LISTEN".to_owned(),
            format!("127.0.0.1:{}", route_ports[index]),
        ),
    ];
    for (node, port) in NODES.iter().zip(route_ports) {
        env.push((
            format!("ROUTE_{}", node.to_uppercase()),
            format!("nats-route://127.0.0.1:{port}"),
        ));
    }
    env.into_iter()
        .map(|(name, value)| (format!("ONEDOOR_NATSD_{name}"), value))
        .collect()
}

/// Sets `ONEDOOR_NATSD_<name>` in a spec's environment.
pub fn set_env(spec: &mut ServerSpec, name: &str, value: String) {
    let name = format!("ONEDOOR_NATSD_{name}");
    spec.env.retain(|(existing, _)| *existing != name);
    spec.env.push((name, value));
}

/// Starts the three nodes; returns them with their specs, listeners pinned to the ports
/// they chose.
async fn launch(
    binary: &NatsBinary,
    root: &Path,
    config_dir: &Path,
    tls: &ClusterTls,
) -> Result<(Vec<NatsServer>, Vec<ServerSpec>), TestkitError> {
    let route_ports = reserve_ports(NODES.len()).map_err(TestkitError::ReservePort)?;
    let routes: Vec<String> = route_ports
        .iter()
        .map(|port| format!("nats-route://127.0.0.1:{port}"))
        .collect();
    let mut nodes = Vec::with_capacity(NODES.len());
    let mut specs = Vec::with_capacity(NODES.len());
    for (index, node) in NODES.iter().enumerate() {
        let dir = fresh_node_dir(root, node)?;
        let mut spec = ServerSpec::new(binary.clone(), &dir);
        spec.server_name = Some(DeployCluster::server_name_of(node));
        // Not rendered (the file decides); tells readiness to wait for the route listener.
        spec.cluster = Some(ClusterSpec {
            name: CLUSTER_NAME.to_owned(),
            port: route_ports[index],
            routes: routes.clone(),
        });
        spec.config_file = Some(config_dir.join(format!("cluster-node-{node}.conf")));
        spec.env = node_env(&dir, tls, index, &route_ports);
        // On failure the nodes started so far are dropped, which kills them.
        let server = NatsServer::start(spec.clone()).await?;
        set_env(
            &mut spec,
            "CLIENT_LISTEN",
            format!("127.0.0.1:{}", server.client_port()),
        );
        set_env(
            &mut spec,
            "MONITOR_LISTEN",
            format!("127.0.0.1:{}", server.http_port()),
        );
        nodes.push(server);
        specs.push(spec);
    }
    Ok((nodes, specs))
}
