//! The bus under test, set up as in production: each bench agency's adapter serving real gRPC on
//! loopback with case rules and its own signing key, on the adapters' runtime, and the clients
//! its system would use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use onedoor_adapter::idempotency::IdKey;
use onedoor_adapter::{AdapterConfig, Token};
use onedoor_bus::InboxSettings;
use onedoor_case::{AgencyCode, AgencyKind, Registry};
use onedoor_proto::v1::agency_gateway_client::AgencyGatewayClient;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::BenchError;
use crate::keys::Signers;
use crate::nats::Nats;

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
    pub fn pick(registry: &Registry, fronts: usize, ministries: usize) -> Result<Self, BenchError> {
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
        if front_codes.len() < fronts {
            return Err(BenchError::Unfit(format!(
                "--front-offices {fronts}: the registry has {} active front offices",
                front_codes.len()
            )));
        }
        if ministry_codes.len() < ministries {
            return Err(BenchError::Unfit(format!(
                "--ministries {ministries}: the registry has {} active ministries",
                ministry_codes.len()
            )));
        }
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
    /// Keys this agency's event ids, so the bench can tell which id a hand-off must get.
    pub ids: IdKey,
    token: String,
    /// The CA of the adapter's certificate when it serves TLS.
    ca_pem: Option<String>,
    /// `None` for an adapter another process runs (`--up-rss`).
    task: Option<JoinHandle<Result<(), BenchError>>>,
}

impl RunningAdapter {
    /// An adapter another process serves at `address` (`https://` with `ca_pem`).
    pub fn external(
        code: AgencyCode,
        address: String,
        ids: IdKey,
        token: String,
        ca_pem: Option<String>,
    ) -> Self {
        RunningAdapter {
            code,
            address,
            ids,
            token,
            ca_pem,
            task: None,
        }
    }

    /// A new connection to this adapter (made on the caller's runtime), over TLS when the
    /// adapter serves it.
    async fn channel(&self) -> Result<Channel, BenchError> {
        let connecting = || format!("connecting to {}'s adapter at {}", self.code, self.address);
        let mut endpoint = Channel::from_shared(self.address.clone())
            .map_err(BenchError::connect(connecting()))?
            .tcp_nodelay(true);
        if let Some(ca) = &self.ca_pem {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
                .map_err(BenchError::connect(connecting()))?;
        }
        endpoint
            .connect()
            .await
            .map_err(BenchError::connect(connecting()))
    }

    /// A new gRPC client of this adapter with the agency's token.
    pub async fn client(&self) -> Result<Client, BenchError> {
        let connecting = || format!("connecting to {}'s adapter at {}", self.code, self.address);
        let channel = self.channel().await?;
        let bearer = Bearer(
            format!("Bearer {}", self.token)
                .parse()
                .map_err(BenchError::connect(connecting()))?,
        );
        Ok(AgencyGatewayClient::with_interceptor(channel, bearer)
            .max_decoding_message_size(onedoor_adapter::server::MAX_MESSAGE_BYTES))
    }
}

/// The case reader, as the `reader` NATS user with the keyed registry, answering on `runtime`
/// once this returns (`docs/jetstream.md` §15).
async fn start_reader(
    runtime: &tokio::runtime::Handle,
    registry: &Arc<Registry>,
    nats: &Nats,
) -> Result<JoinHandle<()>, BenchError> {
    let settings = nats.connect_settings(&onedoor_natsauth::Identity::Reader)?;
    let registry = registry.clone();
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        BenchError::Failed(format!("starting the case reader: {what}: {e}"))
    };
    runtime
        .spawn(async move {
            let client = settings
                .connect(&onedoor_natsauth::Identity::Reader, |o| {
                    o.name("onedoor-reader")
                })
                .await
                .map_err(|e| failed("connecting", &e))?;
            let log = onedoor_bus::CaseLog::open(async_nats::jetstream::new(client.clone()))
                .await
                .map_err(|e| failed("binding to the stream", &e))?;
            let reader = Arc::new(onedoor_bus::read::CaseReader::new(
                log,
                Some(registry.into()),
                onedoor_bus::read::READER_CACHED_CASES,
            ));
            reader
                .listen(client)
                .await
                .map_err(|e| failed("subscribing", &e))
        })
        .await
        .map_err(|e| failed("task", &e))?
}

/// The adapters of the bench agencies, started on `runtime`.
pub struct Adapters {
    pub running: Vec<RunningAdapter>,
    stop: watch::Sender<bool>,
    /// The case reader the adapters read through in production mode (their NATS users may
    /// not read the stream), on the adapters' runtime.
    reader: Option<JoinHandle<()>>,
}

impl Adapters {
    /// Each agency of `signers` gets its adapter, on `nats` as its own NATS identity; in
    /// production mode serving gRPC over TLS.
    pub async fn start(
        runtime: &tokio::runtime::Handle,
        registry: &Arc<Registry>,
        signers: Signers,
        nats: &Nats,
        inbox: &InboxSettings,
    ) -> Result<Adapters, BenchError> {
        let (stop, stop_rx) = watch::channel(false);
        let mut running = Vec::new();
        let cluster = nats.production_cluster();
        let reader = match cluster {
            Some(_) => Some(start_reader(runtime, registry, nats).await?),
            None => None,
        };
        for (code, signer) in signers {
            let token = token();
            let mut config = AdapterConfig::new(
                code.clone(),
                Token::new(token.clone())?,
                registry.clone(),
                nats.url.clone(),
            );
            config.nats =
                nats.connect_settings(&onedoor_natsauth::Identity::Agency(code.clone()))?;
            config.tls = cluster.map(|c| c.grpc_tls());
            if cluster.is_some() {
                config.reads = onedoor_adapter::CaseReads::Reader;
            }
            let ids = IdKey::from_signer(&signer);
            config.signer = Some(signer);
            config.inbox = inbox.clone();
            let mut stop = stop_rx.clone();
            let (bound, address) = oneshot::channel();
            // Bound on the adapters' runtime so the listener's I/O is driven there.
            let task = runtime.spawn(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(BenchError::io("binding an adapter port"))?;
                let _ = bound.send(
                    listener
                        .local_addr()
                        .map_err(BenchError::io("reading an adapter's port"))?,
                );
                onedoor_adapter::run(config, listener, async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await
                .map_err(BenchError::from)
            });
            let address = match address.await {
                Ok(address) => address,
                Err(_) => {
                    return Err(task
                        .await
                        .map_err(BenchError::task("adapter task"))?
                        .err()
                        .unwrap_or_else(|| {
                            BenchError::Failed(format!("adapter {code} ended at once"))
                        }));
                }
            };
            let scheme = if cluster.is_some() { "https" } else { "http" };
            running.push(RunningAdapter {
                code,
                address: format!("{scheme}://{address}"),
                ids,
                token,
                ca_pem: cluster.map(|c| c.grpc_ca_pem().to_owned()),
                task: Some(task),
            });
        }
        let adapters = Adapters {
            running,
            stop,
            reader,
        };
        for adapter in &adapters.running {
            wait_until_serving(adapter).await?;
        }
        Ok(adapters)
    }

    /// Adapters another process runs, once each reports SERVING.
    pub async fn external(running: Vec<RunningAdapter>) -> Result<Adapters, BenchError> {
        let (stop, _) = watch::channel(false);
        for adapter in &running {
            wait_until_serving(adapter).await?;
        }
        Ok(Adapters {
            running,
            stop,
            reader: None,
        })
    }

    pub fn get(&self, code: &AgencyCode) -> Result<&RunningAdapter, BenchError> {
        self.running
            .iter()
            .find(|a| a.code == *code)
            .ok_or_else(|| BenchError::Failed(format!("no adapter for {code}")))
    }

    /// Graceful stop: in-flight calls finish, inbox streams end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Some(reader) = &self.reader {
            reader.abort();
        }
        for adapter in self.running {
            let Some(task) = adapter.task else {
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(10), task).await {
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
async fn wait_until_serving(adapter: &RunningAdapter) -> Result<(), BenchError> {
    let deadline = Instant::now() + READY_DEADLINE;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        if adapter.task.as_ref().is_some_and(JoinHandle::is_finished) {
            return Err(BenchError::Failed(format!(
                "{}'s adapter stopped while starting",
                adapter.code
            )));
        }
        match adapter.channel().await {
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
    Err(BenchError::Failed(format!(
        "{}'s adapter was not serving within {READY_DEADLINE:?} ({last})",
        adapter.code
    )))
}

/// A development bearer token: 32 random bytes in hex, known only to this run.
fn token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
