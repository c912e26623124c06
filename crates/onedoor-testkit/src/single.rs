//! One JetStream node for a test.

use std::path::Path;

use async_nats::jetstream;
use onedoor_natsd::{NatsServer, ServerSpec};
use tempfile::TempDir;

use crate::binary;
use crate::error::TestkitError;

/// A JetStream nats-server on 127.0.0.1 with its own temporary store directory.
///
/// Dropping it kills the process, then removes the directory.
#[derive(Debug)]
pub struct TestNats {
    // Field order is drop order: the process must be gone before its directory is removed.
    server: NatsServer,
    dir: TempDir,
    frozen: bool,
}

impl TestNats {
    /// Starts a node and waits until it serves JetStream.
    pub async fn start() -> Result<Self, TestkitError> {
        Self::start_with_config("").await
    }

    /// Starts a node with `extra_config` appended to the generated configuration (accounts,
    /// users, limits). It must not set `listen`, `http`, `jetstream` or `cluster`.
    pub async fn start_with_config(extra_config: &str) -> Result<Self, TestkitError> {
        Self::start_in_domain(extra_config, None).await
    }

    /// [`TestNats::start_with_config`] with JetStream in its own `domain` (a leaf node's).
    pub async fn start_in_domain(
        extra_config: &str,
        domain: Option<&str>,
    ) -> Result<Self, TestkitError> {
        let dir = tempfile::Builder::new()
            .prefix("onedoor-nats-")
            .tempdir()
            .map_err(TestkitError::TempDir)?;
        let mut spec = ServerSpec::new(binary::nats_server()?, dir.path());
        spec.extra_config = extra_config.to_owned();
        spec.jetstream_domain = domain.map(str::to_owned);
        let server = NatsServer::start(spec).await?;
        Ok(Self {
            server,
            dir,
            frozen: false,
        })
    }

    /// `nats://127.0.0.1:<port>`; stays the same across [`TestNats::restart`].
    pub fn url(&self) -> String {
        self.server.client_url()
    }

    /// A new client. It reconnects by itself after a kill and restart.
    pub async fn client(&self) -> Result<async_nats::Client, TestkitError> {
        let url = self.url();
        async_nats::ConnectOptions::new()
            .name("onedoor-testkit")
            .connect(url.as_str())
            .await
            .map_err(|source| TestkitError::Connect { url, source })
    }

    /// A JetStream context on a new client.
    pub async fn jetstream(&self) -> Result<jetstream::Context, TestkitError> {
        Ok(jetstream::new(self.client().await?))
    }

    /// Kills the server (SIGKILL: a crash, as far as JetStream can tell). The store stays.
    pub fn kill(&mut self) -> Result<(), TestkitError> {
        self.thaw()?;
        Ok(self.server.kill()?)
    }

    /// Starts the server again on the same port and store directory (stopping it gracefully
    /// first if it still runs) and waits until it is ready.
    pub async fn restart(&mut self) -> Result<(), TestkitError> {
        self.thaw()?;
        Ok(self.server.restart().await?)
    }

    /// Freezes the server (SIGSTOP): its sockets stay open and it answers nothing, as a hung
    /// host does; clients see no disconnect.
    pub fn freeze(&mut self) -> Result<(), TestkitError> {
        crate::deploy_cluster::signal(&self.server, nix::sys::signal::Signal::SIGSTOP)?;
        self.frozen = true;
        Ok(())
    }

    /// Lets a frozen server run again (SIGCONT); nothing happens to one that is not frozen.
    pub fn thaw(&mut self) -> Result<(), TestkitError> {
        if self.frozen {
            crate::deploy_cluster::signal(&self.server, nix::sys::signal::Signal::SIGCONT)?;
            self.frozen = false;
        }
        Ok(())
    }

    /// The directory holding the configuration, the log and the `jetstream/` store.
    pub fn store_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process handle: ports, pid, log tail, monitoring requests.
    pub fn server(&self) -> &NatsServer {
        &self.server
    }

    pub fn server_mut(&mut self) -> &mut NatsServer {
        &mut self.server
    }
}
