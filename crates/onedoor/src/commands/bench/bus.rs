//! The bus under test, set up as in production: the pinned nats-server on a fresh file store
//! (or a given one), the ONEDOOR stream, and each bench agency's adapter serving real gRPC on
//! loopback with case rules and its own signing key, on the adapters' runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use onedoor_adapter::{AdapterConfig, Token};
use onedoor_bus::{InboxSettings, Signer};
use onedoor_case::{AgencyCode, AgencyKey, AgencyKind, Registry};
use onedoor_natsd::{NatsServer, ServerSpec};
use onedoor_proto::v1::agency_gateway_client::AgencyGatewayClient;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::super::common;

/// How long adapters (and a fresh nats-server) may take to report SERVING.
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// The front offices that send and the ministries that receive.
#[derive(Debug, Clone)]
pub struct Agencies {
    pub fronts: Vec<AgencyCode>,
    pub ministries: Vec<AgencyCode>,
}

impl Agencies {
    /// `fronts` front offices (Saysettha, the first ODSC, first when the registry has it) and
    /// the first `ministries` ministries of the registry that can receive a hand-off.
    pub fn pick(registry: &Registry, fronts: usize, ministries: usize) -> anyhow::Result<Self> {
        let mut front_codes: Vec<AgencyCode> = registry
            .active_agencies()
            .filter(|a| a.kind == AgencyKind::FrontOffice)
            .map(|a| a.code.clone())
            .collect();
        front_codes.sort_by_key(|code| code.as_str() != "ODSC-VTE-SAYSETTHA");
        let ministry_codes: Vec<AgencyCode> = registry
            .active_agencies()
            .filter(|a| a.kind == AgencyKind::Ministry && a.merged_into.is_none())
            .map(|a| a.code.clone())
            .collect();
        anyhow::ensure!(
            front_codes.len() >= fronts,
            "--front-offices {fronts}: the registry has {} active front offices",
            front_codes.len()
        );
        anyhow::ensure!(
            ministry_codes.len() >= ministries,
            "--ministries {ministries}: the registry has {} active ministries",
            ministry_codes.len()
        );
        Ok(Agencies {
            fronts: front_codes.into_iter().take(fronts).collect(),
            ministries: ministry_codes.into_iter().take(ministries).collect(),
        })
    }

    pub fn all(&self) -> impl Iterator<Item = &AgencyCode> {
        self.fronts.iter().chain(&self.ministries)
    }
}

/// Sends `authorization: Bearer <token>` on every call, as an agency's system does.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

pub type Client = AgencyGatewayClient<InterceptedService<Channel, Bearer>>;

/// One agency's adapter running on the adapters' runtime.
pub struct RunningAdapter {
    pub code: AgencyCode,
    pub address: String,
    token: String,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningAdapter {
    /// A new gRPC connection to this adapter (made on the caller's runtime).
    pub async fn client(&self) -> anyhow::Result<Client> {
        let channel = Channel::from_shared(self.address.clone())?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| {
                format!("connecting to {}'s adapter at {}", self.code, self.address)
            })?;
        let bearer = Bearer(format!("Bearer {}", self.token).parse()?);
        Ok(AgencyGatewayClient::with_interceptor(channel, bearer)
            .max_decoding_message_size(onedoor_adapter::server::MAX_MESSAGE_BYTES))
    }
}

/// The nats-server the bench talks to.
pub struct Nats {
    /// Present when the bench started it (and so may read its CPU time and must stop it).
    pub server: Option<NatsServer>,
    /// The server's fresh store, removed when the bench ends.
    _store: Option<tempfile::TempDir>,
    pub url: String,
    pub version: Option<String>,
}

impl Nats {
    /// The pinned nats-server on a fresh temporary store, or the server at `url`.
    pub async fn start(url: Option<&str>) -> anyhow::Result<Nats> {
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
            .context("making a temporary store for nats-server")?;
        let mut spec = ServerSpec::new(binary.clone(), store.path().join("nats"));
        spec.server_name = Some("onedoor-bench".to_owned());
        let server = NatsServer::start(spec)
            .await
            .context("starting nats-server")?;
        Ok(Nats {
            url: server.client_url(),
            server: Some(server),
            _store: Some(store),
            version: Some(binary.version.to_string()),
        })
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

/// Each bench agency's signing key.
pub type Signers = Vec<(AgencyCode, Signer)>;

/// The registry with a fresh signing key for every bench agency, and those signers.
pub fn registry_with_keys(
    mut registry: Registry,
    agencies: &Agencies,
    run: &str,
) -> anyhow::Result<(Arc<Registry>, Signers)> {
    let today = time::OffsetDateTime::now_utc().date();
    let mut signers = Vec::new();
    for code in agencies.all() {
        let signer = Signer::generate(format!("{code}-bench-{run}"));
        let key = AgencyKey {
            id: signer.key_id().to_owned(),
            public_key: signer.public_key(),
            valid_from: today,
            valid_until: None,
        };
        registry.add_key(code, key).map_err(anyhow::Error::msg)?;
        signers.push((code.clone(), signer));
    }
    Ok((Arc::new(registry), signers))
}

/// The adapters of the bench agencies, started on `runtime`.
pub struct Adapters {
    pub running: Vec<RunningAdapter>,
    stop: watch::Sender<bool>,
}

impl Adapters {
    pub async fn start(
        runtime: &tokio::runtime::Handle,
        registry: &Arc<Registry>,
        signers: Signers,
        nats_url: &str,
        inbox: &InboxSettings,
    ) -> anyhow::Result<Adapters> {
        let (stop, stop_rx) = watch::channel(false);
        let mut running = Vec::new();
        for (code, signer) in signers {
            let token = common::dev_token();
            let mut config = AdapterConfig::new(
                code.clone(),
                Token::new(token.clone())?,
                registry.clone(),
                nats_url.to_owned(),
            );
            config.signer = Some(signer);
            config.inbox = inbox.clone();
            let mut stop = stop_rx.clone();
            let (bound, address) = oneshot::channel();
            // Bound on the adapters' runtime so the listener's I/O is driven there.
            let task = runtime.spawn(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .context("binding an adapter port")?;
                let _ = bound.send(listener.local_addr()?);
                onedoor_adapter::run(config, listener, async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await
                .map_err(anyhow::Error::from)
            });
            let address = match address.await {
                Ok(address) => address,
                Err(_) => {
                    return Err(task
                        .await
                        .context("adapter task")?
                        .err()
                        .unwrap_or_else(|| anyhow::anyhow!("adapter {code} ended at once")));
                }
            };
            running.push(RunningAdapter {
                code,
                address: format!("http://{address}"),
                token,
                task,
            });
        }
        let adapters = Adapters { running, stop };
        for adapter in &adapters.running {
            wait_until_serving(adapter).await?;
        }
        Ok(adapters)
    }

    pub fn get(&self, code: &AgencyCode) -> anyhow::Result<&RunningAdapter> {
        self.running
            .iter()
            .find(|a| a.code == *code)
            .with_context(|| format!("no adapter for {code}"))
    }

    /// Graceful stop: in-flight calls finish, inbox streams end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for adapter in self.running {
            match tokio::time::timeout(Duration::from_secs(10), adapter.task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(err))) => {
                    tracing::warn!(agency = %adapter.code, error = %err, "adapter failed")
                }
                Ok(Err(err)) => {
                    tracing::warn!(agency = %adapter.code, error = %err, "adapter task panicked")
                }
                Err(_) => {
                    tracing::warn!(agency = %adapter.code, "adapter did not stop within 10 s")
                }
            }
        }
    }
}

/// Polls the adapter's gRPC health until `onedoor.v1.AgencyGateway` is SERVING.
async fn wait_until_serving(adapter: &RunningAdapter) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_DEADLINE;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        if adapter.task.is_finished() {
            anyhow::bail!("{}'s adapter stopped while starting", adapter.code);
        }
        match Channel::from_shared(adapter.address.clone())?
            .connect()
            .await
        {
            Ok(channel) => {
                let request = HealthCheckRequest {
                    service: "onedoor.v1.AgencyGateway".into(),
                };
                match HealthClient::new(channel).check(request).await {
                    Ok(response) if response.get_ref().status() == ServingStatus::Serving => {
                        return Ok(());
                    }
                    Ok(response) => last = format!("{:?}", response.get_ref().status()),
                    Err(status) => last = status.to_string(),
                }
            }
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!(
        "{}'s adapter was not serving within {READY_DEADLINE:?} ({last})",
        adapter.code
    )
}
