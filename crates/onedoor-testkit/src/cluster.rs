//! N JetStream nodes in one cluster, all on 127.0.0.1.
//!
//! Client and monitoring ports are chosen by each server (`-1`) and read back. Route ports are
//! the exception: every node's `routes` must name the others before they start, so we reserve
//! them up front (bind port 0, note the port, release). Something else may grab one before the
//! server binds it; the node then exits with "address already in use", and we start the whole
//! cluster again on fresh ports (up to [`LAUNCH_ATTEMPTS`] times) instead of failing the test.
//!
//! "Formed" means what a test needs before it creates a replicated stream: every running node's
//! `/healthz` answers 200 (JetStream is in contact with a meta leader and its assets are
//! current), and the meta leader's `/jsz` lists every other running node as a current peer.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use onedoor_natsd::{ClusterSpec, NatsBinary, NatsServer, NatsdError, ServerSpec};
use tempfile::TempDir;

use crate::binary;
use crate::error::TestkitError;

/// How many times a cluster start is retried when a reserved route port was taken.
pub const LAUNCH_ATTEMPTS: usize = 3;

/// Deadline for the cluster to become healthy. A 3-node cluster on loopback forms in well under
/// a second; the margin is for loaded CI machines.
pub const HEALTHY_TIMEOUT: Duration = Duration::from_secs(20);

const CLUSTER_NAME: &str = "onedoor-test";

/// A JetStream cluster of real nats-server processes. Dropping it kills every node, then removes
/// their directories.
#[derive(Debug)]
pub struct TestCluster {
    // Field order is drop order: processes go before their directories.
    nodes: Vec<NatsServer>,
    root: TempDir,
}

impl TestCluster {
    /// Starts `size` nodes (`n0`, `n1`, …) and waits until the cluster has formed.
    pub async fn start(size: usize) -> Result<Self, TestkitError> {
        if size == 0 {
            return Err(TestkitError::EmptyCluster);
        }
        let root = tempfile::Builder::new()
            .prefix("onedoor-cluster-")
            .tempdir()
            .map_err(TestkitError::TempDir)?;
        let binary = binary::nats_server()?;
        let nodes = with_fresh_route_ports(|| launch_nodes(&binary, root.path(), size)).await?;
        let mut cluster = Self { nodes, root };
        cluster.wait_until_healthy().await?;
        Ok(cluster)
    }

    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// `n0`, `n1`, …: the `server_name` JetStream reports as stream and meta leaders.
    pub fn server_name(index: usize) -> String {
        format!("n{index}")
    }

    /// The node index of a server name as JetStream reports it.
    pub fn index_of(&self, server_name: &str) -> Option<usize> {
        let index: usize = server_name.strip_prefix('n')?.parse().ok()?;
        (index < self.nodes.len()).then_some(index)
    }

    pub fn node(&self, index: usize) -> Result<&NatsServer, TestkitError> {
        self.nodes.get(index).ok_or(TestkitError::NoSuchNode {
            index,
            size: self.nodes.len(),
        })
    }

    pub fn url(&self, index: usize) -> Result<String, TestkitError> {
        Ok(self.node(index)?.client_url())
    }

    /// Client URLs of all nodes, running or not (they keep their ports across restarts).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::client_url).collect()
    }

    /// The directory holding one sub-directory (config, log, store) per node.
    pub fn root_dir(&self) -> &Path {
        self.root.path()
    }

    /// A client that knows every node, so it fails over when the one it uses is killed.
    pub async fn client(&self) -> Result<async_nats::Client, TestkitError> {
        let urls = self.urls();
        async_nats::ConnectOptions::new()
            .name("onedoor-testkit")
            .connect(urls.as_slice())
            .await
            .map_err(|source| TestkitError::Connect {
                url: urls.join(","),
                source,
            })
    }

    pub async fn jetstream(&self) -> Result<jetstream::Context, TestkitError> {
        Ok(jetstream::new(self.client().await?))
    }

    /// Kills node `index` (SIGKILL). Its store and ports are kept for [`TestCluster::restart`].
    pub fn kill(&mut self, index: usize) -> Result<(), TestkitError> {
        let size = self.nodes.len();
        let node = self
            .nodes
            .get_mut(index)
            .ok_or(TestkitError::NoSuchNode { index, size })?;
        Ok(node.kill()?)
    }

    /// Starts node `index` again on its ports and store, then waits until the cluster is
    /// healthy, which includes that node having caught up on its streams.
    pub async fn restart(&mut self, index: usize) -> Result<(), TestkitError> {
        let size = self.nodes.len();
        let node = self
            .nodes
            .get_mut(index)
            .ok_or(TestkitError::NoSuchNode { index, size })?;
        node.restart().await?;
        self.wait_until_healthy().await
    }

    /// Freezes node `index` (SIGSTOP): it answers nothing and applies nothing, so its stream
    /// replicas fall behind. Thaw it before [`TestCluster::wait_until_healthy`].
    pub fn freeze(&self, index: usize) -> Result<(), TestkitError> {
        crate::deploy_cluster::signal(self.node(index)?, nix::sys::signal::Signal::SIGSTOP)
    }

    /// Lets a frozen node run again (SIGCONT).
    pub fn thaw(&self, index: usize) -> Result<(), TestkitError> {
        crate::deploy_cluster::signal(self.node(index)?, nix::sys::signal::Signal::SIGCONT)
    }

    /// Waits (up to [`HEALTHY_TIMEOUT`]) until every running node is healthy and the meta
    /// leader sees each of them as a current peer. Killed nodes are left out.
    pub async fn wait_until_healthy(&mut self) -> Result<(), TestkitError> {
        let names: Vec<String> = (0..self.nodes.len()).map(Self::server_name).collect();
        wait_formed(&mut self.nodes, &names, &[]).await
    }
}

/// The `server_name` of the node leading `stream` now (map it to a node with the cluster's
/// `index_of`).
pub async fn stream_leader(js: &jetstream::Context, stream: &str) -> anyhow::Result<String> {
    let mut stream = js.get_stream(stream).await?;
    let info = stream.info().await?;
    info.cluster
        .clone()
        .and_then(|c| c.leader)
        .ok_or_else(|| anyhow::anyhow!("stream {} has no leader", info.config.name))
}

/// Waits (up to [`HEALTHY_TIMEOUT`]) until every running node not in `left_out` is healthy and
/// the meta leader sees each of them as a current peer. `names[i]` is node `i`'s `server_name`.
pub(crate) async fn wait_formed(
    nodes: &mut [NatsServer],
    names: &[String],
    left_out: &[usize],
) -> Result<(), TestkitError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        let last_check = match check_formed(nodes, names, left_out).await {
            Ok(()) => {
                tracing::debug!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "cluster healthy"
                );
                return Ok(());
            }
            Err(why) => why,
        };
        if started.elapsed() >= HEALTHY_TIMEOUT {
            return Err(TestkitError::ClusterNotHealthy {
                waited: started.elapsed(),
                last_check,
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// One health check; `Err` says what is still missing.
async fn check_formed(
    nodes: &mut [NatsServer],
    names: &[String],
    left_out: &[usize],
) -> Result<(), String> {
    let mut running = Vec::new();
    for (index, node) in nodes.iter_mut().enumerate() {
        if node.is_running() && !left_out.contains(&index) {
            running.push(index);
        }
    }
    let Some(&first) = running.first() else {
        return Err("no node is running".to_owned());
    };
    for &index in &running {
        let health = nodes[index].healthz("").await.map_err(|e| e.to_string())?;
        if !health.is_ok() {
            return Err(format!(
                "{} /healthz answered {}: {}",
                names[index],
                health.status,
                health.body.trim()
            ));
        }
    }
    let leader = meta_cluster(&nodes[first]).await?["leader"]
        .as_str()
        .map(str::to_owned)
        .ok_or("no meta leader elected yet")?;
    let leader_index = names
        .iter()
        .position(|name| *name == leader)
        .filter(|i| running.contains(i))
        .ok_or(format!("meta leader {leader} is not a running node"))?;
    let meta = meta_cluster(&nodes[leader_index]).await?;
    let peers = meta["replicas"].as_array().cloned().unwrap_or_default();
    for &index in running.iter().filter(|&&i| i != leader_index) {
        let name = names[index].as_str();
        let current = peers
            .iter()
            .any(|peer| peer["name"] == name && peer["current"] == true && peer["offline"] != true);
        if !current {
            return Err(format!(
                "meta leader {leader} does not yet see {name} as a current peer"
            ));
        }
    }
    Ok(())
}

/// Runs `launch` again (up to [`LAUNCH_ATTEMPTS`] times in all) while it fails because a
/// route port it reserved was taken before its server bound it.
pub(crate) async fn with_fresh_route_ports<T, F, Fut>(mut launch: F) -> Result<T, TestkitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TestkitError>>,
{
    let mut attempt = 1;
    loop {
        match launch().await {
            Err(TestkitError::Natsd(NatsdError::AddressInUse { log_tail, .. }))
                if attempt < LAUNCH_ATTEMPTS =>
            {
                tracing::warn!(attempt, %log_tail, "a reserved route port was taken; starting the cluster again on fresh ports");
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// The `meta_cluster` object of a node's `/jsz`.
async fn meta_cluster(node: &NatsServer) -> Result<serde_json::Value, String> {
    let response = node.monitor("/jsz").await.map_err(|e| e.to_string())?;
    if !response.is_ok() {
        return Err(format!("/jsz answered {}", response.status));
    }
    let mut jsz: serde_json::Value =
        serde_json::from_str(&response.body).map_err(|e| format!("/jsz is not JSON: {e}"))?;
    Ok(jsz["meta_cluster"].take())
}

/// Reserves `count` distinct free ports on 127.0.0.1 by binding them all at once, then
/// releases them for the servers to bind.
pub(crate) fn reserve_ports(count: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// `root/<name>`, emptied: a previous launch attempt may have left a half-initialised store.
pub(crate) fn fresh_node_dir(root: &Path, name: &str) -> Result<PathBuf, TestkitError> {
    let dir = root.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|source| NatsdError::Io {
            action: "removing",
            path: dir.clone(),
            source,
        })?;
    }
    Ok(dir)
}

async fn launch_nodes(
    binary: &NatsBinary,
    root: &Path,
    size: usize,
) -> Result<Vec<NatsServer>, TestkitError> {
    let route_ports = reserve_ports(size).map_err(TestkitError::ReservePort)?;
    let routes: Vec<String> = route_ports
        .iter()
        .map(|port| format!("nats://127.0.0.1:{port}"))
        .collect();
    let mut nodes = Vec::with_capacity(size);
    for (index, &port) in route_ports.iter().enumerate() {
        let dir = fresh_node_dir(root, &TestCluster::server_name(index))?;
        let mut spec = ServerSpec::new(binary.clone(), dir);
        spec.server_name = Some(TestCluster::server_name(index));
        spec.cluster = Some(ClusterSpec {
            name: CLUSTER_NAME.to_owned(),
            port,
            routes: routes.clone(),
        });
        // On failure the nodes started so far are dropped, which kills them.
        nodes.push(NatsServer::start(spec).await?);
    }
    Ok(nodes)
}
