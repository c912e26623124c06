//! The adapter's one entry point: `run(config, listener, shutdown)`, called by the `onedoor`
//! binary (`onedoor adapter`, `onedoor up`) and by the tests alike.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use onedoor_bus::{CaseLog, InboxSettings, Signer, StuckRecorder};
use onedoor_case::{AgencyCode, LiveRegistry};
use onedoor_grpc::server::Observed;
use onedoor_http::JsonLayer;
use onedoor_http::tls::TlsAcceptor;
use onedoor_proto::v1::agency_gateway_server::AgencyGatewayServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::Router;
use tonic_health::pb::health_server::{Health, HealthServer};
use tower_layer::Stack;

use onedoor_grpc::{TlsIdentity, Token};
use onedoor_natsauth::{ConnectSettings, Identity, Liveness, LivenessSettings};

use crate::credentials::{self, Credentials};
use crate::error::AdapterError;
use crate::gateway::{Clock, Gateway};
use crate::health;
use crate::idempotency::IdKey;
use crate::inbox::InboxService;

/// Largest request the adapter decodes. Events carry documents by reference only, so the
/// biggest legitimate request (a 4 KiB summary plus 32 document references) is far below this.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

#[derive(Clone)]
pub struct AdapterConfig {
    pub agency: AgencyCode,
    /// A token accepted besides the registry's token hashes (hashed at start, then dropped);
    /// `None` in production, where the registry lists the agency's tokens by hash.
    pub token: Option<Token>,
    /// The registry now; shared with whoever may swap it (the registry feed, a SIGHUP).
    pub registry: LiveRegistry,
    /// Follow the operator's published registry (`onedoor_bus::registry_feed`) and move
    /// `registry` to each later one it signed, without a restart.
    pub follow_registry: bool,
    /// How to reach NATS: the servers (every node of a cluster), the agency's NATS identity
    /// (`None` credentials for a NATS with no authentication), TLS, and how long to wait at
    /// start for a server to answer.
    pub nats: ConnectSettings,
    /// How quickly health notices that NATS stopped answering (`docs/jetstream.md` §13).
    pub liveness: LivenessSettings,
    /// How long a NATS request (a direct get, a publish ack) may take before the call fails
    /// with UNAVAILABLE, so a caller is told promptly that the bus is unreachable.
    pub nats_timeout: Duration,
    pub clock: Clock,
    /// The agency's event-signing key; every event it writes is signed with it.
    pub signer: Option<Signer>,
    /// The inbox consumer's window, redelivery schedule and delivery limit.
    pub inbox: InboxSettings,
    /// Serve gRPC over TLS with this identity (and, with a client CA, accept agencies' client
    /// certificates). `None` serves plaintext, for a loopback-only development bus.
    pub tls: Option<TlsIdentity>,
    /// SHA-256 of the agency's client certificates (DER) that authenticate without a token.
    pub client_certs: Vec<[u8; 32]>,
    /// Push the inbox to this receiver instead of waiting to be pulled (`docs/webhooks.md`).
    pub webhook: Option<crate::webhook::WebhookConfig>,
    /// The HTTP/JSON face on the same port (`docs/http-json.md`); `None` serves gRPC only.
    pub http: Option<onedoor_http::HttpSettings>,
    /// How cases are read: through the case reader (production, where the agency's NATS user
    /// may not read the stream) or directly (a development NATS without users).
    pub reads: CaseReads,
    /// A district office's own nats-server (`nats://127.0.0.1:…`): writes go to its outbox
    /// and a forwarder delivers them to the national stream (`docs/district-offices.md`).
    pub office_node: Option<String>,
}

/// Where an adapter reads cases from (`docs/jetstream.md` §15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseReads {
    /// Ask the case reader (`onedoor reader`), which answers only about the agency's cases.
    Reader,
    /// Read the stream directly: needs a NATS user with stream reads, i.e. no confinement.
    Stream,
}

impl AdapterConfig {
    pub fn new(
        agency: AgencyCode,
        token: Token,
        registry: impl Into<LiveRegistry>,
        nats_url: impl Into<String>,
    ) -> Self {
        AdapterConfig {
            agency,
            token: Some(token),
            registry: registry.into(),
            follow_registry: false,
            nats: ConnectSettings::new([nats_url.into()]),
            liveness: LivenessSettings::default(),
            nats_timeout: Duration::from_secs(5),
            clock: Arc::new(time::OffsetDateTime::now_utc),
            signer: None,
            inbox: InboxSettings::default(),
            tls: None,
            client_certs: Vec::new(),
            webhook: None,
            http: Some(onedoor_http::HttpSettings::new(MAX_MESSAGE_BYTES)),
            reads: CaseReads::Stream,
            office_node: None,
        }
    }

    /// Refuses an agency the registry does not know, or one merged away (it may still finish
    /// its cases through its successor's adapter, not run its own).
    pub fn validate(&self) -> Result<(), AdapterError> {
        if let Some(webhook) = &self.webhook {
            webhook.validate(&self.inbox)?;
        }
        match self.registry.current().agency(&self.agency) {
            None => Err(AdapterError::Config(format!(
                "agency {} is not in the registry",
                self.agency
            ))),
            Some(_) => Ok(()),
        }
    }
}

pub(crate) const SERVICE_NAME: &str = "onedoor.v1.AgencyGateway";

/// Connects as the agency, waiting for NATS at start as `config.nats` allows. A district
/// office's adapter does not wait: it serves from its own node while the capital is out of
/// reach, and the client connects in the background when the link comes.
async fn connect(config: &AdapterConfig) -> Result<async_nats::Client, AdapterError> {
    let identity = Identity::Agency(config.agency.clone());
    let name = format!("onedoor-adapter-{}", config.agency);
    let timeout = config.nats_timeout;
    let office = config.office_node.is_some();
    config
        .nats
        .connect(&identity, |options| {
            let options = options
                .name(name.clone())
                .request_timeout(Some(timeout))
                .event_callback(|event| async move { log_event(event) });
            if office {
                options
                    .retry_on_initial_connect()
                    .reconnect_delay_callback(onedoor_bus::outbox::link_reconnect_delay)
            } else {
                options
            }
        })
        .await
        .map_err(|e| AdapterError::Connect(Box::new(e)))
}

/// What the adapter needs from the capital before it serves: its inbox consumer exists
/// before the first Inbox call, and what exhausts its deliveries is recorded for staff.
async fn national_setup(
    config: &AdapterConfig,
    jetstream: &async_nats::jetstream::Context,
    log: &CaseLog,
) -> Result<StuckRecorder, AdapterError> {
    onedoor_bus::ensure_inbox(jetstream, &config.agency, &config.inbox).await?;
    Ok(StuckRecorder::spawn(jetstream.clone(), &config.agency, log.clone()).await?)
}

/// How long a district office's adapter waits between tries of [`national_setup`] while the
/// capital is out of reach.
const NATIONAL_SETUP_RETRY: Duration = Duration::from_secs(2);

/// [`national_setup`] now, or, at a district office, in the background until the capital
/// answers (the office serves from its own node meanwhile); the recorder lives until
/// `stopping`.
async fn national_parts(
    config: &AdapterConfig,
    jetstream: &async_nats::jetstream::Context,
    log: &CaseLog,
    mut stopping: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, AdapterError> {
    if config.office_node.is_none() {
        let recorder = national_setup(config, jetstream, log).await?;
        return Ok(tokio::spawn(async move {
            let _ = stopping.wait_for(|stop| *stop).await;
            recorder.shutdown().await;
        }));
    }
    let (config, jetstream, log) = (config.clone(), jetstream.clone(), log.clone());
    Ok(tokio::spawn(async move {
        let set_up = async {
            loop {
                match national_setup(&config, &jetstream, &log).await {
                    Ok(recorder) => return recorder,
                    Err(error) => {
                        tracing::info!(%error, "the capital is out of reach; serving from the office's node");
                        tokio::time::sleep(NATIONAL_SETUP_RETRY).await;
                    }
                }
            }
        };
        let recorder = tokio::select! {
            recorder = set_up => recorder,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        tracing::info!(agency = %config.agency, "reached the capital: inbox and stuck recorder ready");
        let _ = stopping.wait_for(|stop| *stop).await;
        recorder.shutdown().await;
    }))
}

fn log_event(event: async_nats::Event) {
    match event {
        async_nats::Event::Disconnected => tracing::warn!("lost the NATS connection"),
        // At start that is the default; after a loss, the liveness watcher says it at INFO.
        async_nats::Event::Connected => tracing::debug!("connected to NATS"),
        other => match onedoor_natsauth::PermissionViolation::from_event(&other) {
            // A refused request only times out on the client: say why, loudly.
            Some(violation) => {
                tracing::error!(?violation, "NATS refused a subject to this agency")
            }
            None => tracing::debug!(event = %other, "nats event"),
        },
    }
}

/// Whether NATS answers: an agency confined to its own cases probes its own inbox consumer,
/// since it may not ask for the stream's info.
fn watch_liveness(
    config: &AdapterConfig,
    client: async_nats::Client,
) -> Result<Liveness, AdapterError> {
    Ok(match config.reads {
        CaseReads::Stream => Liveness::watch(client, config.liveness, "adapter"),
        CaseReads::Reader => {
            let consumer = onedoor_bus::subjects::inbox_consumer(config.agency.as_str())?;
            Liveness::watch_inbox(client, config.liveness, "adapter", consumer)
        }
    })
}

/// The operator's published registry, followed when configured (`onedoor_bus::registry_feed`).
fn follow_registry(
    config: &AdapterConfig,
    jetstream: &async_nats::jetstream::Context,
) -> Option<onedoor_bus::registry_feed::Follower> {
    config.follow_registry.then(|| {
        onedoor_bus::registry_feed::follow(
            jetstream.clone(),
            config.registry.clone(),
            config.agency.as_str(),
        )
    })
}

/// A district office's outbox writes and their forwarder, when the adapter has an office node.
async fn start_office(
    config: &AdapterConfig,
    jetstream: &async_nats::jetstream::Context,
    stopping: &watch::Receiver<bool>,
) -> Result<
    (
        Option<crate::office::OfficeWrites>,
        Option<tokio::task::JoinHandle<()>>,
    ),
    AdapterError,
> {
    let Some(url) = &config.office_node else {
        return Ok((None, None));
    };
    let (writes, forwarder) = crate::office::OfficeWrites::start(
        &config.agency,
        url,
        config.signer.clone(),
        jetstream,
        stopping.clone(),
    )
    .await?;
    Ok((Some(writes), Some(forwarder)))
}

/// Serves `AgencyGateway` (plus health and reflection) on `listener` until `shutdown` resolves;
/// then stops taking calls and lets in-flight ones finish.
pub async fn run(
    config: AdapterConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AdapterError> {
    config.validate()?;
    crate::metrics::describe();
    let (health, health_service) = tonic_health::server::health_reporter();
    health::report(&health, tonic_health::ServingStatus::NotServing).await;
    // The port accepts connections but serves nothing until NATS answers: a call made
    // meanwhile waits for it (or for its own deadline), a probe times out. Asked to stop while
    // still waiting, there is nothing to drain.
    let mut shutdown = std::pin::pin!(shutdown);
    let connected = tokio::select! {
        () = &mut shutdown => None,
        client = connect(&config) => Some(client),
    };
    let Some(client) = connected else {
        tracing::info!(agency = %config.agency, "adapter stopped before NATS answered");
        return Ok(());
    };
    let client = client?;
    let mut jetstream = async_nats::jetstream::new(client.clone());
    jetstream.set_timeout(config.nats_timeout);
    let log = open_log(&config, &jetstream).await?;
    // Ends open inbox streams when `shutdown` resolves, or when this future is dropped (the
    // sender goes with it), so neither a graceful stop nor an abort waits on connected clients.
    let (stopping, stopping_rx) = watch::channel(false);
    let national = national_parts(&config, &jetstream, &log, stopping_rx.clone()).await?;
    let liveness = watch_liveness(&config, client)?;
    let follower = tokio::spawn(health::follow_nats(health, liveness.answering()));
    // Followed until `run` returns.
    let _feed = follow_registry(&config, &jetstream);
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    let (office, forwarder) = start_office(&config, &jetstream, &stopping_rx).await?;
    let gateway = Gateway {
        office,
        agency: config.agency.clone(),
        registry: config.registry.clone(),
        inbox: InboxService::new(
            jetstream.clone(),
            config.agency.clone(),
            config.inbox.clone(),
            stopping_rx,
            log.clone(),
        )?
        .with_registry(config.registry.clone()),
        log,
        clock: config.clock.clone(),
        ids: config
            .signer
            .as_ref()
            .map_or_else(|| IdKey::unkeyed(&config.agency), IdKey::from_signer),
    };
    let webhook = match &config.webhook {
        Some(webhook) => Some(crate::webhook::spawn(
            webhook,
            gateway.inbox.clone(),
            jetstream.clone(),
            gateway.inbox.stopping(),
        )?),
        None => None,
    };
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let json_tls = json_tls(&config)?;
    let router = router(&config, gateway, health_service)?;
    tracing::info!(agency = %config.agency, %address, "adapter serving");
    let served = serve(router, listener, json_tls, shutdown).await;
    if let Some(webhook) = webhook {
        webhook.abort();
    }
    if let Some(forwarder) = forwarder {
        forwarder.abort();
    }
    if national.await.is_err() {
        tracing::warn!("the adapter's national set-up task ended abnormally");
    }
    follower.abort();
    drop(liveness);
    tracing::info!(agency = %config.agency, "adapter stopped");
    served
}

/// With the JSON face, TLS offering HTTP/1.1 beside HTTP/2 (`onedoor_http::tls`); without
/// it, tonic's own TLS (set in [`router`]).
fn json_tls(config: &AdapterConfig) -> Result<Option<TlsAcceptor>, AdapterError> {
    match (&config.tls, &config.http) {
        (Some(identity), Some(_)) => onedoor_http::tls::acceptor(identity)
            .map(Some)
            .map_err(|e| AdapterError::Config(e.to_string())),
        _ => Ok(None),
    }
}

async fn serve(
    router: Router<Stack<JsonLayer, Observed>>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AdapterError> {
    let served = match tls {
        Some(acceptor) => {
            let incoming = onedoor_http::tls::incoming(listener, acceptor);
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
        None => {
            let incoming = onedoor_grpc::server::incoming(listener);
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
    };
    served.map_err(|e| AdapterError::Serve(e.to_string()))
}

/// The case log this adapter writes through, signing with the agency's key when it has one.
async fn open_log(
    config: &AdapterConfig,
    jetstream: &async_nats::jetstream::Context,
) -> Result<CaseLog, AdapterError> {
    let log = match config.reads {
        CaseReads::Stream => CaseLog::open(jetstream.clone()).await?,
        CaseReads::Reader => CaseLog::through_reader(
            jetstream.clone(),
            config.agency.clone(),
            config.nats_timeout,
        ),
    };
    Ok(match config.signer.clone() {
        // An adapter that signs checks every signature it reads; one without a key (a
        // development set-up) could not tell its own unsigned events from forged ones.
        Some(signer) => log
            .with_signer(signer)
            .with_registry(config.registry.clone()),
        None => {
            tracing::warn!(agency = %config.agency, "no signing key configured: events are unsigned and fail `onedoor audit verify`");
            log
        }
    })
}

/// `AgencyGateway` behind the agency's credentials, health, and reflection of exactly those
/// two (never CaseTracker, which the adapter does not serve); its JSON face on the same port.
fn router(
    config: &AdapterConfig,
    gateway: Gateway,
    health_service: HealthServer<impl Health>,
) -> Result<Router<Stack<JsonLayer, Observed>>, AdapterError> {
    let service = AgencyGatewayServer::new(gateway)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let credentials = Credentials::new(
        &config.agency,
        &config.registry.current(),
        config.token.as_ref(),
        config.client_certs.clone(),
    );
    let service = InterceptedService::new(service, credentials::interceptor(credentials));
    let grpc = |e: onedoor_grpc::GrpcError| AdapterError::Config(e.to_string());
    let calls =
        onedoor_grpc::CallMetrics::new("adapter", vec![("agency", config.agency.to_string())]);
    let json = match &config.http {
        Some(settings) => JsonLayer::new(SERVICE_NAME, settings.clone())
            .map_err(|e| AdapterError::Config(e.to_string()))?,
        None => JsonLayer::off(),
    };
    // With the JSON face, `serve` does TLS itself (HTTP/1.1 in ALPN).
    let tls = config.tls.as_ref().filter(|_| config.http.is_none());
    Ok(onedoor_grpc::server::builder(tls, calls)
        .map_err(grpc)?
        // JSON clients speak HTTP/1.1 as often as HTTP/2.
        .accept_http1(config.http.is_some())
        .layer(json)
        .add_service(health_service)
        .add_service(onedoor_grpc::server::reflection(&[SERVICE_NAME]).map_err(grpc)?)
        .add_service(onedoor_grpc::server::reflection_v1alpha(&[SERVICE_NAME]).map_err(grpc)?)
        .add_service(service))
}
