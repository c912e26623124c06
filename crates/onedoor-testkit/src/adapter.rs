//! Real adapters on a [`TestBus`]: each on its own `127.0.0.1:0` listener, driven by an
//! agency's IT system ([`TestAgency`]) over real gRPC, whose methods are the product's verbs.

use std::time::Duration;

use onedoor_adapter::{AdapterConfig, Token};
use onedoor_case::AgencyCode;
use onedoor_proto::v1;
use onedoor_proto::v1::agency_gateway_client::AgencyGatewayClient;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::bus::TestBus;
use crate::eventually::{DEADLINE, eventually};
use crate::registry::{key, token_for};

/// A gRPC client of one adapter, holding a bearer token.
pub type Client = AgencyGatewayClient<InterceptedService<Channel, BearerToken>>;

/// Sends `authorization: Bearer <token>` on every call.
#[derive(Clone)]
pub struct BearerToken(pub String);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Ok(value) = format!("Bearer {}", self.0).parse() {
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// One running adapter.
pub struct RunningAdapter {
    pub address: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), onedoor_adapter::AdapterError>>,
}

impl RunningAdapter {
    /// Starts an adapter with `config` on a fresh loopback port. The listener is bound before
    /// the server runs, so a client connecting right away never races the bind.
    pub async fn start(config: AdapterConfig) -> anyhow::Result<RunningAdapter> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(onedoor_adapter::run(config, listener, async {
            let _ = stopped.await;
        }));
        Ok(RunningAdapter {
            address,
            stop: Some(stop),
            task,
        })
    }

    /// `agency`'s IT system, connected to this adapter with the agency's development token.
    pub async fn agency(&self, agency: &str) -> anyhow::Result<TestAgency> {
        let channel = Channel::from_shared(self.address.clone())?
            .connect()
            .await?;
        Ok(TestAgency {
            code: agency.to_owned(),
            client: AgencyGatewayClient::with_interceptor(channel, BearerToken(token_for(agency))),
        })
    }

    /// Stops the adapter gracefully and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.task.await;
    }
}

impl TestBus {
    /// A bus whose adapters all get `configure` applied to their config (inbox settings, NATS
    /// timeout) before they start.
    pub async fn start_configured(
        agencies: &[&str],
        configure: impl Fn(&mut AdapterConfig),
    ) -> anyhow::Result<Self> {
        let mut bus = TestBus::start().await?;
        for agency in agencies {
            let mut config = bus.adapter_config(agency)?;
            configure(&mut config);
            bus.start_with(agency, config).await?;
        }
        Ok(bus)
    }

    /// The configuration `agency`'s adapter starts with: its development token, the bus's
    /// registry and NATS, and its signing key.
    pub fn adapter_config(&self, agency: &str) -> anyhow::Result<AdapterConfig> {
        let mut config = AdapterConfig::new(
            AgencyCode::parse(agency)?,
            Token::new(token_for(agency))?,
            self.registry.clone(),
            self.nats.url(),
        );
        config.signer = self.signers.get(agency).cloned();
        Ok(config)
    }

    pub async fn start_adapter(&mut self, agency: &str) -> anyhow::Result<()> {
        let config = self.adapter_config(agency)?;
        self.start_with(agency, config).await
    }

    /// Starts `agency`'s adapter with `config` (see [`RunningAdapter::start`]).
    pub async fn start_with(&mut self, agency: &str, config: AdapterConfig) -> anyhow::Result<()> {
        let adapter = RunningAdapter::start(config).await?;
        self.adapters.insert(agency.to_owned(), adapter);
        Ok(())
    }

    pub async fn stop_adapter(&mut self, agency: &str) {
        if let Some(adapter) = self.adapters.remove(agency) {
            adapter.stop().await;
        }
    }

    /// Kills `agency`'s adapter like a crash: its task is aborted (no shutdown signal, no
    /// draining) and this returns once the task has been cancelled.
    pub async fn abort_adapter(&mut self, agency: &str) -> anyhow::Result<()> {
        let adapter = self
            .adapters
            .remove(agency)
            .ok_or_else(|| anyhow::anyhow!("no adapter running for {agency}"))?;
        adapter.task.abort();
        match adapter.task.await {
            Err(err) if err.is_cancelled() => Ok(()),
            Err(err) => anyhow::bail!("adapter {agency} panicked instead of being aborted: {err}"),
            Ok(result) => {
                anyhow::bail!("adapter {agency} had already ended before the abort: {result:?}")
            }
        }
    }

    pub fn address(&self, agency: &str) -> String {
        self.adapters
            .get(agency)
            .map(|a| a.address.clone())
            .unwrap_or_default()
    }

    pub async fn channel(&self, agency: &str) -> anyhow::Result<Channel> {
        Ok(Channel::from_shared(self.address(agency))?
            .connect()
            .await?)
    }

    /// A client of `agency`'s adapter holding `token`.
    pub async fn client_with_token(&self, agency: &str, token: &str) -> anyhow::Result<Client> {
        let channel = self.channel(agency).await?;
        Ok(AgencyGatewayClient::with_interceptor(
            channel,
            BearerToken(token.to_owned()),
        ))
    }

    /// `agency`'s IT system, connected to its adapter with its own token.
    pub async fn agency(&self, agency: &str) -> anyhow::Result<TestAgency> {
        Ok(TestAgency {
            code: agency.to_owned(),
            client: self.client_with_token(agency, &token_for(agency)).await?,
        })
    }

    /// How many client connections the nats-server has open under `agency`'s adapter's
    /// connection name (`onedoor-adapter-<AGENCY>`), read from its monitoring `/connz`.
    pub async fn adapter_nats_connections(&self, agency: &str) -> anyhow::Result<usize> {
        let response = self.nats.server().monitor("/connz?limit=4096").await?;
        anyhow::ensure!(response.is_ok(), "/connz answered {}", response.status);
        let name = format!("\"onedoor-adapter-{agency}\"");
        Ok(response.body.matches(&name).count())
    }

    /// Waits until `agency`'s adapter has exactly `wanted` NATS connections open.
    pub async fn wait_for_adapter_nats_connections(
        &self,
        agency: &str,
        wanted: usize,
    ) -> anyhow::Result<()> {
        let what = format!("{agency}'s adapter to have {wanted} NATS connections");
        eventually(&what, DEADLINE, || async {
            let seen = self.adapter_nats_connections(agency).await?;
            Ok(if seen == wanted {
                Ok(())
            } else {
                Err(format!("{seen} connections"))
            })
        })
        .await
    }

    /// The server's view of `agency`'s inbox consumer (`inbox-<AGENCY>`).
    pub async fn inbox_consumer_info(
        &self,
        agency: &str,
    ) -> anyhow::Result<async_nats::jetstream::consumer::Info> {
        let js = self.nats.jetstream().await?;
        let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
            .get_stream(onedoor_bus::STREAM_NAME)
            .await?
            .get_consumer(&format!("inbox-{agency}"))
            .await
            .map_err(|e| anyhow::anyhow!("inbox-{agency}: {e}"))?;
        Ok(consumer.info().await?.clone())
    }

    /// Waits until `agency`'s inbox consumer holds nothing: every item delivered and
    /// acknowledged.
    pub async fn wait_until_inbox_drained(&self, agency: &str) -> anyhow::Result<()> {
        eventually(
            &format!("inbox-{agency} to hold nothing"),
            DEADLINE,
            || async {
                let info = self.inbox_consumer_info(agency).await?;
                Ok(if info.num_ack_pending == 0 && info.num_pending == 0 {
                    Ok(())
                } else {
                    Err(format!(
                        "{} pending, {} awaiting ack",
                        info.num_pending, info.num_ack_pending
                    ))
                })
            },
        )
        .await
    }

    /// `agency`'s adapter's health for `onedoor.v1.AgencyGateway`.
    pub async fn health(&self, agency: &str) -> anyhow::Result<ServingStatus> {
        serving_status(self.channel(agency).await?, "onedoor.v1.AgencyGateway").await
    }

    /// Waits until `agency`'s adapter reports `wanted` health.
    pub async fn wait_for_health(&self, agency: &str, wanted: ServingStatus) -> anyhow::Result<()> {
        let what = format!("{agency}'s health to become {wanted:?}");
        eventually(&what, DEADLINE, || {
            let status = self.health(agency);
            async move {
                // A refused connection while the adapter starts counts as "not yet".
                Ok(status.await.ok().filter(|s| *s == wanted).map(|_| ()))
            }
        })
        .await
    }
}

/// What a server's gRPC health says of `service`.
pub(crate) async fn serving_status(
    channel: Channel,
    service: &str,
) -> anyhow::Result<ServingStatus> {
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let response = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        })
        .await?
        .into_inner();
    Ok(response.status())
}

/// An agency's IT system talking to its adapter.
pub struct TestAgency {
    pub code: String,
    pub client: Client,
}

impl TestAgency {
    pub async fn open_case(&mut self, service: &str) -> Result<v1::Receipt, Status> {
        let request = v1::OpenCaseRequest {
            service: service.into(),
            citizen_ref: "R-2026-0001".into(),
            summary: "ຈົດທະບຽນຮ້ານຄ້າ".into(),
            idempotency_key: key(),
            actor: "clerk-1".into(),
            documents: vec![],
        };
        self.client.open_case(request).await.map(|r| r.into_inner())
    }

    pub async fn hand_off(&mut self, case_id: &str, to: &str) -> Result<v1::Receipt, Status> {
        let request = v1::HandOffRequest {
            case_id: case_id.into(),
            to_agency: to.into(),
            instructions: "please review".into(),
            idempotency_key: key(),
            ..Default::default()
        };
        self.client.hand_off(request).await.map(|r| r.into_inner())
    }

    pub async fn accept(&mut self, case_id: &str) -> Result<v1::Receipt, Status> {
        let request = v1::AcceptRequest {
            case_id: case_id.into(),
            idempotency_key: key(),
            actor: "officer".into(),
        };
        self.client.accept(request).await.map(|r| r.into_inner())
    }

    pub async fn complete(&mut self, case_id: &str) -> Result<v1::Receipt, Status> {
        let request = v1::CompleteRequest {
            case_id: case_id.into(),
            outcome: "done".into(),
            idempotency_key: key(),
            ..Default::default()
        };
        self.client.complete(request).await.map(|r| r.into_inner())
    }

    pub async fn resolve(
        &mut self,
        case_id: &str,
        resolution: v1::Resolution,
    ) -> Result<v1::Receipt, Status> {
        let request = v1::ResolveCaseRequest {
            case_id: case_id.into(),
            resolution: resolution.into(),
            idempotency_key: key(),
            ..Default::default()
        };
        self.client
            .resolve_case(request)
            .await
            .map(|r| r.into_inner())
    }

    pub async fn get_case(&mut self, case_id: &str) -> Result<v1::CaseView, Status> {
        self.client
            .get_case(v1::GetCaseRequest {
                case_id: case_id.into(),
            })
            .await
            .map(|r| r.into_inner())
    }

    pub async fn inbox(
        &mut self,
        max_in_flight: u32,
    ) -> Result<tonic::Streaming<v1::InboxItem>, Status> {
        self.client
            .inbox(v1::InboxRequest { max_in_flight })
            .await
            .map(|r| r.into_inner())
    }

    pub async fn ack(&mut self, event_ids: &[&str]) -> Result<v1::AckResponse, Status> {
        let request = v1::AckRequest {
            event_ids: event_ids.iter().map(|id| (*id).to_owned()).collect(),
        };
        self.client.ack(request).await.map(|r| r.into_inner())
    }

    /// The next item of `inbox`, acknowledged: what a worker that took it in does.
    pub async fn take(&mut self, inbox: &mut tonic::Streaming<v1::InboxItem>) -> v1::InboxItem {
        let item = next_inbox_item(inbox).await;
        let id = item.event.as_ref().map(|e| e.event_id.clone());
        self.ack(&[id.as_deref().unwrap_or_default()])
            .await
            .unwrap_or_else(|status| panic!("ack of {id:?} refused: {status}"));
        item
    }
}

/// How long [`next_inbox_item`] waits.
pub const INBOX_DEADLINE: Duration = Duration::from_secs(15);

/// The next inbox item, or a test failure after [`INBOX_DEADLINE`].
pub async fn next_inbox_item(stream: &mut tonic::Streaming<v1::InboxItem>) -> v1::InboxItem {
    match tokio::time::timeout(INBOX_DEADLINE, stream.message()).await {
        Ok(Ok(Some(item))) => item,
        Ok(Ok(None)) => panic!("inbox stream ended"),
        Ok(Err(status)) => panic!("inbox stream failed: {status}"),
        Err(_) => panic!("no inbox item within {INBOX_DEADLINE:?}"),
    }
}
