//! [`District`]: the capital (a secured, provisioned nats-server with the case reader) and one
//! district office: its own nats-server in its own JetStream domain (the outbox), and the
//! office's connection to the capital through a [`LinkProxy`] the test cuts and restores;
//! and the national tracker ([`NationalTracker`]), which watches which offices it hears from.

use std::net::SocketAddr;
use std::time::Duration;

use async_nats::jetstream;
use onedoor_adapter::Token;
use onedoor_case::{AgencyCode, TokenHash};
use onedoor_natsauth::{ConnectSettings, Identity, connect_options, office_domain};
use onedoor_tracker::{GrpcAccess, Tracker, TrackerConfig, TrackerHandle};
use tokio::sync::oneshot;
use tonic_health::pb::health_check_response::ServingStatus;

use onedoor_proto::v1;

use crate::adapter::{RunningAdapter, TestAgency, serving_status};
use crate::eventually::{DEADLINE, eventually};
use crate::link_proxy::LinkProxy;
use crate::registry::{FRONT, code, registry_with_keys, token_for};
use crate::secured::SecuredBus;
use crate::single::TestNats;
use crate::tracker::TestDb;

/// The capital, the link and the office's node.
pub struct District {
    pub hub: SecuredBus,
    pub link: LinkProxy,
    pub office_node: TestNats,
    pub office: AgencyCode,
}

impl District {
    /// The capital, provisioned, and the front office's node; link up.
    pub async fn start() -> anyhow::Result<Self> {
        let hub = SecuredBus::provisioned().await?;
        let port = hub.nats.server().client_port();
        let link = LinkProxy::start(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let office = code(FRONT);
        let office_node = TestNats::start_in_domain("", Some(&office_domain(&office))).await?;
        Ok(District {
            hub,
            link,
            office_node,
            office,
        })
    }

    /// A client on the office's own node (loopback, no credentials: only the office's
    /// processes reach it).
    pub async fn office_client(&self) -> anyhow::Result<async_nats::Client> {
        Ok(async_nats::ConnectOptions::new()
            .request_timeout(Some(Duration::from_secs(2)))
            .connect(self.office_node.url())
            .await?)
    }

    /// The office's connection to the capital, as its own NATS user, across the link. It
    /// reconnects by itself when the link comes back.
    pub async fn national_client(&self) -> anyhow::Result<async_nats::Client> {
        let identity = Identity::Agency(self.office.clone());
        let seed = self.hub.credentials.seed(&identity)?;
        Ok(connect_options(&identity, &seed)
            .request_timeout(Some(Duration::from_secs(2)))
            .reconnect_delay_callback(onedoor_bus::outbox::link_reconnect_delay)
            .retry_on_initial_connect()
            .connect(format!("nats://{}", self.link.addr()))
            .await?)
    }

    /// JetStream on `client` with a short timeout: a publish across a cut link fails in
    /// seconds, not the default five.
    pub fn js(client: &async_nats::Client) -> jetstream::Context {
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(2));
        js
    }
}

/// The bearer token of the national tracker's supervisor (its CaseTracker gRPC API wants a
/// token: this one, or an agency's from the registry, e.g. the front office's
/// `token_for(FRONT)`).
pub const SUPERVISOR_TOKEN: &str = "district-supervisor-token-0123456789";

/// The national tracker on the capital's side of the link (SQLite), as the `tracker` NATS
/// user; [`NationalTracker::handle`] reads what its page and gauges show, and its CaseTracker
/// gRPC API listens on [`NationalTracker::grpc`] (plaintext).
pub struct NationalTracker {
    pub handle: TrackerHandle,
    /// `http://127.0.0.1:<port>`.
    pub grpc: String,
    tracker: Tracker,
    stop: oneshot::Sender<()>,
    _db: TestDb,
}

impl District {
    /// Starts the national tracker; an office silent for `office_silence` is disconnected.
    pub async fn national_tracker(
        &self,
        office_silence: Duration,
    ) -> anyhow::Result<NationalTracker> {
        let db = TestDb::sqlite();
        let url = self.hub.nats.url();
        let seed = self
            .hub
            .credentials
            .seed_file(&Identity::Tracker)
            .ok_or_else(|| anyhow::anyhow!("no NATS seed for the tracker"))?;
        let mut registry = (*self.hub.registry).clone();
        let front = Token::new(token_for(FRONT))?;
        registry
            .add_token(
                &code(FRONT),
                TokenHash {
                    label: "district-test".to_owned(),
                    sha256: front.sha256(),
                    revoked: false,
                },
            )
            .map_err(anyhow::Error::msg)?;
        let registry = std::sync::Arc::new(registry);
        let mut config = TrackerConfig::new(url.clone(), db.url(), registry.clone());
        config.nats = ConnectSettings::new([url]).with_seed(seed);
        config.office_silence = office_silence;
        config.grpc_access = Some(GrpcAccess::new(
            &registry,
            &[Token::new(SUPERVISOR_TOKEN)?.sha256()],
            &[],
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let grpc = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let tracker = Tracker::start(config, listener, async move {
            let _ = stopped.await;
        })
        .await?;
        Ok(NationalTracker {
            handle: tracker.handle(),
            grpc,
            tracker,
            stop,
            _db: db,
        })
    }
}

impl District {
    /// The front office's adapter, writing through its outbox and reaching the capital
    /// across the link, and a client of it; with the first case it opened once the capital
    /// answers it (link up).
    pub async fn office_adapter(
        &self,
    ) -> anyhow::Result<(RunningAdapter, TestAgency, v1::Receipt)> {
        let (registry, mut signers) = registry_with_keys();
        let mut config = self
            .hub
            .adapter_config(FRONT, registry, signers.remove(FRONT))?;
        config.nats.urls = vec![format!("nats://{}", self.link.addr())];
        config.nats_timeout = Duration::from_secs(2);
        config.office_node = Some(self.office_node.url());
        let adapter = RunningAdapter::start(config).await?;
        let front = adapter.agency(FRONT).await?;
        // It serves from its own node at once; SERVING says the capital answers it too, so
        // the first case is written nationally.
        let address = adapter.address.clone();
        eventually("the office's adapter reaches the capital", DEADLINE, || {
            let address = address.clone();
            async move {
                let channel = tonic::transport::Channel::from_shared(address)?
                    .connect()
                    .await;
                let Ok(channel) = channel else {
                    return Ok(None);
                };
                let status = serving_status(channel, "onedoor.v1.AgencyGateway").await;
                Ok(status.ok().filter(|s| *s == ServingStatus::Serving))
            }
        })
        .await?;
        let online = eventually("the office's adapter serves", DEADLINE, || {
            let mut front = TestAgency {
                code: FRONT.to_owned(),
                client: front.client.clone(),
            };
            async move { Ok(front.open_case("enterprise-registration").await.ok()) }
        })
        .await?;
        Ok((adapter, front, online))
    }
}

impl NationalTracker {
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        Ok(self.tracker.wait().await?)
    }
}

/// Messages `agency`'s inbox consumer has not delivered yet, as `js` (the operator) sees them.
pub async fn inbox_pending(js: &jetstream::Context, agency: &str) -> anyhow::Result<u64> {
    let stream = js.get_stream(onedoor_bus::STREAM_NAME).await?;
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .get_consumer(&format!("inbox-{agency}"))
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(consumer.info().await?.num_pending)
}
