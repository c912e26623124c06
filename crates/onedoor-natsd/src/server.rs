//! One nats-server process: launch from a [`ServerSpec`], wait until it is ready, kill, stop,
//! restart on the same ports and store directory.
//!
//! Readiness is observed, never assumed after a sleep: we poll (every few milliseconds, up to
//! a deadline) until the log says which ports were bound and that the server is ready, the
//! monitoring endpoint's `/healthz` answers 200 and a TCP connect to the client port succeeds.
//! If the process exits first, or the deadline passes, the error carries the log's tail.
//!
//! Client and monitoring ports default to "random" (`-1`): the server binds a free port and we
//! read it back from its log, so there is no probe-then-bind race. A cluster's route port must
//! be known before the other nodes start, so callers pick it; if it was taken in the meantime
//! the launch fails with [`NatsdError::AddressInUse`] and the caller can retry with fresh ports.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::NatsdError;
use crate::locate::NatsBinary;
use crate::logscan::{self, LogFacts};
use crate::monitor::{self, MonitorResponse};

/// File names inside [`ServerSpec::dir`].
pub const CONFIG_FILE: &str = "nats-server.conf";
pub const LOG_FILE: &str = "nats-server.log";

/// Default time allowed from spawn to ready. A JetStream node on an idle machine is ready in a
/// few milliseconds; recovering a large store can take longer, so callers may raise it.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a graceful stop may take before we fall back to SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How many log lines an error carries.
const LOG_TAIL_LINES: usize = 40;

/// Which port to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// Let the server bind a free port (`-1`) and read it back from its log.
    Random,
    Fixed(u16),
}

impl Port {
    fn render(self) -> String {
        match self {
            Port::Random => "-1".to_owned(),
            Port::Fixed(port) => port.to_string(),
        }
    }
}

/// Cluster membership of a node. The route port is fixed because the other nodes' `routes`
/// must name it before they start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub name: String,
    pub port: u16,
    /// Route URLs of all members (`nats://127.0.0.1:6222`); a node's own URL may be included,
    /// nats-server ignores a route to itself. JetStream sizes its meta group from this list.
    pub routes: Vec<String>,
}

/// Everything needed to launch (and relaunch) one server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub binary: NatsBinary,
    /// Owned by the caller and kept across restarts: holds [`CONFIG_FILE`], [`LOG_FILE`]
    /// (appended to on every launch) and, with JetStream, the `jetstream/` store.
    pub dir: PathBuf,
    /// Interface for client, monitoring and route listeners.
    pub host: String,
    pub client_port: Port,
    /// The monitoring port is always enabled: readiness is checked through its `/healthz`.
    pub http_port: Port,
    /// Required for JetStream in a cluster (the meta group knows peers by name).
    pub server_name: Option<String>,
    pub jetstream: bool,
    /// The JetStream domain (a leaf node's own, e.g. a district office's), so that its streams
    /// stay apart from those of the cluster it is a leaf of.
    pub jetstream_domain: Option<String>,
    pub cluster: Option<ClusterSpec>,
    /// Appended verbatim to the generated configuration (accounts, authorization, limits).
    /// Must not set `listen`, `http`, `jetstream`, `cluster` or `log_file`: those are ours.
    pub extra_config: String,
    pub ready_timeout: Duration,
    /// Launch from this file (e.g. one of `deploy/nats/`) instead of writing [`CONFIG_FILE`]
    /// from the fields above, which then only tell readiness where to look (`host`, whether a
    /// route listener must open). Ports come back from the log as usual but are not pinned
    /// for a restart: the file decides them.
    pub config_file: Option<PathBuf>,
    /// Added to the process's environment: what a file's `$NAME` references resolve to.
    pub env: Vec<(String, String)>,
}

impl ServerSpec {
    /// A JetStream server on 127.0.0.1, random client and monitoring ports, no cluster.
    pub fn new(binary: NatsBinary, dir: impl Into<PathBuf>) -> Self {
        Self {
            binary,
            dir: dir.into(),
            host: "127.0.0.1".to_owned(),
            client_port: Port::Random,
            http_port: Port::Random,
            server_name: None,
            jetstream: true,
            jetstream_domain: None,
            cluster: None,
            extra_config: String::new(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            config_file: None,
            env: Vec::new(),
        }
    }

    /// The configuration file text this spec launches with.
    pub fn render_config(&self) -> Result<String, NatsdError> {
        let mut out = String::from(
            "# Written by onedoor-natsd on every launch; edits here are overwritten.\n",
        );
        out.push_str(&format!(
            "listen: {}\n",
            quoted(
                "host",
                &format!("{}:{}", self.host, self.client_port.render())
            )?
        ));
        out.push_str(&format!(
            "http: {}\n",
            quoted(
                "host",
                &format!("{}:{}", self.host, self.http_port.render())
            )?
        ));
        if let Some(name) = &self.server_name {
            out.push_str(&format!("server_name: {}\n", quoted("server_name", name)?));
        }
        if self.jetstream {
            let store = self.dir.to_str().ok_or_else(|| {
                NatsdError::InvalidSpec(format!(
                    "store dir {} is not valid UTF-8",
                    self.dir.display()
                ))
            })?;
            let domain = match &self.jetstream_domain {
                Some(domain) => format!("  domain: {}\n", quoted("domain", domain)?),
                None => String::new(),
            };
            out.push_str(&format!(
                "jetstream {{\n  store_dir: {}\n{domain}}}\n",
                quoted("dir", store)?
            ));
        }
        if let Some(cluster) = &self.cluster {
            if self.jetstream && self.server_name.is_none() {
                return Err(NatsdError::InvalidSpec(
                    "a JetStream cluster node needs a server_name".to_owned(),
                ));
            }
            out.push_str("cluster {\n");
            out.push_str(&format!(
                "  name: {}\n",
                quoted("cluster name", &cluster.name)?
            ));
            out.push_str(&format!(
                "  listen: {host_port}\n",
                host_port = quoted("host", &format!("{}:{}", self.host, cluster.port))?
            ));
            out.push_str("  routes: [\n");
            for route in &cluster.routes {
                out.push_str(&format!("    {}\n", quoted("route", route)?));
            }
            out.push_str("  ]\n}\n");
        }
        if !self.extra_config.is_empty() {
            out.push_str("\n# extra configuration from the caller\n");
            out.push_str(&self.extra_config);
            out.push('\n');
        }
        Ok(out)
    }

    fn config_path(&self) -> PathBuf {
        self.config_file
            .clone()
            .unwrap_or_else(|| self.dir.join(CONFIG_FILE))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// Where a client on this machine connects: a wildcard listen address is reached on loopback.
    fn connect_host(&self) -> &str {
        match self.host.as_str() {
            "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
            host => host,
        }
    }
}

/// A double-quoted configuration string. Values with quotes, backslashes or line breaks are
/// refused rather than escaped: none of ours need them, and nats-server's escaping rules are
/// not worth relying on for paths.
fn quoted(what: &str, value: &str) -> Result<String, NatsdError> {
    if value.contains(['"', '\\', '\n', '\r']) {
        return Err(NatsdError::InvalidSpec(format!(
            "{what} {value:?} contains a quote, backslash or line break"
        )));
    }
    Ok(format!("\"{value}\""))
}

/// The ports a running (or last running) server bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub client: u16,
    pub http: u16,
    pub route: Option<u16>,
}

/// A nats-server process we launched. Dropping it kills the process (the store dir stays:
/// it belongs to the caller).
#[derive(Debug)]
pub struct NatsServer {
    spec: ServerSpec,
    /// `None` after kill/stop; the ports and dir are kept for [`NatsServer::restart`].
    child: Option<Child>,
    pid: u32,
    ports: Ports,
    /// Byte offset in the log file where the current launch's output begins, so that a
    /// previous launch's "Server is ready" is never mistaken for this one's.
    log_offset: u64,
}

impl NatsServer {
    /// Launches the server and waits until it is ready (see the module docs).
    pub async fn start(spec: ServerSpec) -> Result<Self, NatsdError> {
        let mut server = Self {
            spec,
            child: None,
            pid: 0,
            ports: Ports {
                client: 0,
                http: 0,
                route: None,
            },
            log_offset: 0,
        };
        server.launch().await?;
        Ok(server)
    }

    pub fn spec(&self) -> &ServerSpec {
        &self.spec
    }

    pub fn ports(&self) -> Ports {
        self.ports
    }

    pub fn client_port(&self) -> u16 {
        self.ports.client
    }

    pub fn http_port(&self) -> u16 {
        self.ports.http
    }

    /// `nats://127.0.0.1:<client port>`
    pub fn client_url(&self) -> String {
        format!("nats://{}:{}", self.spec.connect_host(), self.ports.client)
    }

    /// `127.0.0.1:<monitoring port>`
    pub fn monitor_addr(&self) -> String {
        format!("{}:{}", self.spec.connect_host(), self.ports.http)
    }

    pub fn dir(&self) -> &Path {
        &self.spec.dir
    }

    pub fn log_path(&self) -> PathBuf {
        self.spec.log_path()
    }

    /// The process id while it runs; `None` after kill/stop.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|_| self.pid)
    }

    /// Whether the process is still alive (a crashed server is reaped here).
    pub fn is_running(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                tracing::warn!(pid = self.pid, %status, "nats-server exited on its own");
                self.child = None;
                false
            }
            Err(err) => {
                tracing::warn!(pid = self.pid, error = %err, "cannot query nats-server process");
                false
            }
        }
    }

    /// The current launch's last log lines.
    pub fn log_tail(&self) -> String {
        logscan::tail(&self.current_log(), LOG_TAIL_LINES)
    }

    /// `GET <monitoring>/healthz<query>`, e.g. `healthz("?js-enabled-only=true")`.
    pub async fn healthz(&self, query: &str) -> Result<MonitorResponse, NatsdError> {
        self.monitor(&format!("/healthz{query}")).await
    }

    /// `GET <monitoring><path_and_query>`, e.g. `/jsz` or `/varz`.
    pub async fn monitor(&self, path_and_query: &str) -> Result<MonitorResponse, NatsdError> {
        monitor::get(&self.monitor_addr(), path_and_query).await
    }

    /// Kills the process at once (SIGKILL): a crash, as far as the server can tell.
    pub fn kill(&mut self) -> Result<(), NatsdError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let io_err = |action, source| NatsdError::Io {
            action,
            path: self.spec.binary.path.clone(),
            source,
        };
        child.kill().map_err(|e| io_err("killing", e))?;
        child.wait().map_err(|e| io_err("waiting for killed", e))?;
        tracing::info!(pid = self.pid, "nats-server killed");
        Ok(())
    }

    /// Stops the process gracefully (SIGTERM, so JetStream flushes its store), falling back to
    /// SIGKILL after a deadline.
    pub async fn stop(&mut self) -> Result<(), NatsdError> {
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        let pid = self.pid;
        let raw_pid = i32::try_from(pid).map_err(|_| {
            NatsdError::InvalidSpec(format!("pid {pid} does not fit a platform pid"))
        })?;
        match nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(raw_pid),
            nix::sys::signal::Signal::SIGTERM,
        ) {
            Ok(()) => {}
            // Already gone: fine, it is reaped below.
            Err(nix::errno::Errno::ESRCH) => {}
            Err(source) => {
                return Err(NatsdError::Signal {
                    pid,
                    signal: "SIGTERM",
                    source,
                });
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    tracing::info!(pid, %status, "nats-server stopped");
                    self.child = None;
                    return Ok(());
                }
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok(None) => {
                    tracing::warn!(pid, timeout = ?STOP_TIMEOUT, "nats-server ignored SIGTERM; killing it");
                    return self.kill();
                }
                Err(source) => {
                    return Err(NatsdError::Io {
                        action: "waiting for",
                        path: self.spec.binary.path.clone(),
                        source,
                    });
                }
            }
        }
    }

    /// Stops the server if it runs, then launches it again on the same ports and store dir.
    pub async fn restart(&mut self) -> Result<(), NatsdError> {
        self.stop().await?;
        self.launch().await
    }

    async fn launch(&mut self) -> Result<(), NatsdError> {
        let spec = &self.spec;
        let io_err = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| NatsdError::Io {
                action,
                path,
                source,
            }
        };
        fs::create_dir_all(&spec.dir).map_err(io_err("creating", &spec.dir))?;
        let config_path = spec.config_path();
        if spec.config_file.is_none() {
            fs::write(&config_path, spec.render_config()?)
                .map_err(io_err("writing", &config_path))?;
        }

        let log_path = spec.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err("opening", &log_path))?;
        let log_offset = log
            .metadata()
            .map_err(io_err("reading metadata of", &log_path))?
            .len();
        let log_for_stderr = log.try_clone().map_err(io_err("duplicating", &log_path))?;

        let child = Command::new(&spec.binary.path)
            .arg("-c")
            .arg(&config_path)
            .envs(spec.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_for_stderr)
            .spawn()
            .map_err(|source| NatsdError::Spawn {
                path: spec.binary.path.clone(),
                source,
            })?;
        self.pid = child.id();
        self.child = Some(child);
        self.log_offset = log_offset;

        match self.wait_ready().await {
            Ok(ports) => {
                self.ports = ports;
                // Pin the ports so that a restart comes back where clients expect it.
                self.spec.client_port = Port::Fixed(ports.client);
                self.spec.http_port = Port::Fixed(ports.http);
                Ok(())
            }
            Err(err) => {
                // Never leave a half-started process behind.
                if let Some(mut child) = self.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                Err(err)
            }
        }
    }

    async fn wait_ready(&mut self) -> Result<Ports, NatsdError> {
        let started = Instant::now();
        let deadline = started + self.spec.ready_timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            if let Some(status) = self.exit_status()? {
                let log = self.current_log();
                let log_tail = logscan::tail(&log, LOG_TAIL_LINES);
                // nats-server dies with a fatal "…: bind: address already in use" line.
                let in_use = log.contains("address already in use");
                self.child = None;
                return Err(if in_use {
                    NatsdError::AddressInUse {
                        pid: self.pid,
                        log_tail,
                    }
                } else {
                    NatsdError::Exited {
                        pid: self.pid,
                        status,
                        config: self.spec.config_path(),
                        log_tail,
                    }
                });
            }

            let facts = logscan::scan(&self.current_log());
            let last_check = match self.check_ready(&facts).await {
                Ok(ports) => {
                    tracing::info!(
                        pid = self.pid,
                        client_port = ports.client,
                        http_port = ports.http,
                        route_port = ports.route.map(u64::from),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "nats-server ready"
                    );
                    return Ok(ports);
                }
                Err(why) => why,
            };

            if Instant::now() >= deadline {
                return Err(NatsdError::NotReady {
                    pid: self.pid,
                    waited: started.elapsed(),
                    last_check,
                    log_tail: self.log_tail(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// One readiness check; `Err` says what is still missing.
    async fn check_ready(&self, facts: &LogFacts) -> Result<Ports, String> {
        if !facts.ready {
            return Err("log does not yet say \"Server is ready\"".to_owned());
        }
        let client = facts
            .client_port
            .ok_or("log names no client port".to_owned())?;
        let http = facts
            .http_port
            .ok_or("log names no monitoring port".to_owned())?;
        if self.spec.cluster.is_some() && facts.route_port.is_none() {
            return Err("route listener not open yet".to_owned());
        }
        let host = self.spec.connect_host();
        let query = if self.spec.jetstream {
            "/healthz?js-enabled-only=true"
        } else {
            "/healthz"
        };
        let health = monitor::get(&format!("{host}:{http}"), query)
            .await
            .map_err(|e| e.to_string())?;
        if !health.is_ok() {
            return Err(format!(
                "{query} answered {}: {}",
                health.status,
                health.body.trim()
            ));
        }
        tokio::net::TcpStream::connect((host, client))
            .await
            .map_err(|e| format!("connecting to client port {client}: {e}"))?;
        Ok(Ports {
            client,
            http,
            route: facts.route_port,
        })
    }

    fn exit_status(&mut self) -> Result<Option<std::process::ExitStatus>, NatsdError> {
        match self.child.as_mut() {
            None => Err(NatsdError::NotRunning),
            Some(child) => child.try_wait().map_err(|source| NatsdError::Io {
                action: "waiting for",
                path: self.spec.binary.path.clone(),
                source,
            }),
        }
    }

    /// The log text written since the current launch began (lossy UTF-8; empty if unreadable:
    /// the log is a diagnostic, its absence must not hide the real error).
    fn current_log(&self) -> String {
        let read = || -> std::io::Result<String> {
            let mut file = File::open(self.spec.log_path())?;
            file.seek(SeekFrom::Start(self.log_offset))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        read().unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locate::{Origin, Version};

    fn spec() -> ServerSpec {
        let binary = NatsBinary {
            path: "/bin/nats-server".into(),
            origin: Origin::PathVar,
            version: Version::new(2, 15, 1),
        };
        ServerSpec::new(binary, "/tmp/od/n0")
    }

    #[test]
    fn a_single_node_config_listens_on_random_ports_with_jetstream() {
        let text = spec().render_config().expect("renders");
        assert!(text.contains("listen: \"127.0.0.1:-1\""), "{text}");
        assert!(text.contains("http: \"127.0.0.1:-1\""), "{text}");
        assert!(text.contains("store_dir: \"/tmp/od/n0\""), "{text}");
        assert!(!text.contains("cluster"), "{text}");
    }

    #[test]
    fn a_cluster_node_config_names_its_routes() {
        let mut spec = spec();
        spec.server_name = Some("n0".into());
        spec.cluster = Some(ClusterSpec {
            name: "c".into(),
            port: 6222,
            routes: vec![
                "nats://127.0.0.1:6222".into(),
                "nats://127.0.0.1:6223".into(),
            ],
        });
        let text = spec.render_config().expect("renders");
        assert!(text.contains("server_name: \"n0\""), "{text}");
        assert!(text.contains("listen: \"127.0.0.1:6222\""), "{text}");
        assert!(text.contains("\"nats://127.0.0.1:6223\""), "{text}");
    }

    #[test]
    fn a_jetstream_cluster_node_without_a_name_is_refused() {
        let mut spec = spec();
        spec.cluster = Some(ClusterSpec {
            name: "c".into(),
            port: 6222,
            routes: vec![],
        });
        assert!(matches!(
            spec.render_config(),
            Err(NatsdError::InvalidSpec(_))
        ));
    }

    #[test]
    fn values_that_would_break_the_config_syntax_are_refused() {
        let mut spec = spec();
        spec.server_name = Some("n0\"\njetstream: false".into());
        assert!(matches!(
            spec.render_config(),
            Err(NatsdError::InvalidSpec(_))
        ));
    }
}
