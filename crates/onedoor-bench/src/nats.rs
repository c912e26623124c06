//! The nats-server a bench runs on: the pinned one on a fresh file store, removed afterwards,
//! or a given one (whose CPU time is then not the bench's to read).

use onedoor_natsd::{NatsServer, ServerSpec};

use crate::BenchError;

/// The nats-server the bench talks to.
pub(crate) struct Nats {
    /// Present when the bench started it (and so may read its CPU time and must stop it).
    server: Option<NatsServer>,
    /// The server's fresh store, removed when the bench ends.
    _store: Option<tempfile::TempDir>,
    pub url: String,
    pub version: Option<String>,
}

impl Nats {
    /// The pinned nats-server on a fresh temporary store, or the server at `url`.
    pub async fn start(url: Option<&str>) -> Result<Nats, BenchError> {
        if let Some(url) = url {
            return Ok(Nats {
                server: None,
                _store: None,
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
            server: Some(server),
            _store: Some(store),
            version: Some(binary.version.to_string()),
        })
    }

    /// A JetStream context on a new connection, with the ONEDOOR stream in place.
    pub async fn jetstream(&self) -> Result<async_nats::jetstream::Context, BenchError> {
        let client = async_nats::connect(&self.url)
            .await
            .map_err(BenchError::nats(format!("connecting to {}", self.url)))?;
        let js = async_nats::jetstream::new(client);
        onedoor_bus::ensure_stream(&js, &onedoor_bus::StreamSettings::default()).await?;
        Ok(js)
    }

    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().and_then(NatsServer::pid)
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.as_mut()
            && let Err(err) = server.stop().await
        {
            tracing::warn!(error = %err, "nats-server did not stop cleanly");
        }
    }
}
