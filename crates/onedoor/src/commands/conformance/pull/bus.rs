//! [`Bus`]: the small bus conformance runs a pull worker against: the pinned nats-server on a
//! temporary store and free loopback ports, the contract stream, and two adapters (the agency
//! under test, and a front office that sends it work) with development tokens and signing
//! keys. Conformance plays the front office's system itself, over gRPC.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use onedoor_adapter::{AdapterConfig, Token};
use onedoor_bus::InboxSettings;
use onedoor_case::{AgencyCode, AgencyKind, Registry};
use onedoor_natsd::{NatsServer, ServerSpec};
use onedoor_proto::v1;
use onedoor_proto::v1::agency_gateway_client::AgencyGatewayClient;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use super::super::items::lao;

/// How long the adapters may take to serve once started.
const START_DEADLINE: Duration = Duration::from_secs(30);

pub struct Bus {
    /// The agency under test's adapter, and the token its worker uses.
    pub adapter: SocketAddr,
    pub token: String,
    pub service: String,
    front: AgencyGatewayClient<Channel>,
    front_token: String,
    stop: watch::Sender<bool>,
    adapters: JoinSet<()>,
    nats: NatsServer,
    // Dropped last: the store of the nats-server above.
    _dir: tempfile::TempDir,
}

/// A case the front office opened and handed to the agency under test.
pub struct Handed {
    pub case_id: String,
    pub event_id: String,
}

impl Bus {
    /// Starts nats-server and both adapters; the agency's inbox redelivers with `inbox`.
    pub async fn start(
        mut registry: Registry,
        agency: &AgencyCode,
        inbox: InboxSettings,
    ) -> anyhow::Result<Bus> {
        let front = front_office(&registry, agency)?;
        let service = service_for(&registry, agency)?.to_owned();
        let dir = tempfile::Builder::new()
            .prefix("onedoor-conformance-")
            .tempdir()
            .context("making a temporary directory for the bus")?;
        let signers = crate::commands::keys::make_dev_keys(dir.path(), &mut registry)?;
        let mut tokens = crate::commands::keys::make_dev_tokens(&mut registry)?;
        let registry = Arc::new(registry);
        let mut spec = ServerSpec::new(onedoor_natsd::locate()?, dir.path().join("nats"));
        spec.server_name = Some("onedoor-conformance".to_owned());
        let nats = NatsServer::start(spec)
            .await
            .context("starting nats-server")?;
        let url = nats.client_url();
        let client = async_nats::connect(url.as_str()).await?;
        onedoor_bus::ensure_stream(
            &async_nats::jetstream::new(client),
            &onedoor_bus::StreamSettings::development(),
        )
        .await?;
        let (stop, stop_rx) = watch::channel(false);
        let mut adapters = JoinSet::new();
        let mut addresses = Vec::new();
        for (code, settings) in [
            (agency.clone(), inbox),
            (front.clone(), InboxSettings::default()),
        ] {
            let token = tokens
                .remove(code.as_str())
                .context("a development token per agency")?;
            let mut config = AdapterConfig::new(
                code.clone(),
                Token::new(token.clone())?,
                registry.clone(),
                &url,
            );
            config.signer = signers
                .iter()
                .find(|(c, _)| c == code.as_str())
                .map(|(_, signer)| signer.clone());
            config.inbox = settings;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding an adapter port")?;
            addresses.push((listener.local_addr()?, token));
            let mut stop = stop_rx.clone();
            adapters.spawn(async move {
                let stopped = async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                };
                if let Err(error) = onedoor_adapter::run(config, listener, stopped).await {
                    tracing::error!(agency = %code, error = %error, "adapter failed");
                }
            });
        }
        let [(adapter, token), (front_address, front_token)] =
            <[_; 2]>::try_from(addresses).map_err(|_| anyhow::anyhow!("two adapters"))?;
        for address in [adapter, front_address] {
            wait_until_serving(address).await?;
        }
        let channel = Channel::from_shared(format!("http://{front_address}"))?
            .connect()
            .await?;
        Ok(Bus {
            adapter,
            token,
            service,
            front: AgencyGatewayClient::new(channel),
            front_token,
            stop,
            adapters,
            nats,
            _dir: dir,
        })
    }

    fn request<T>(&self, body: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(body);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.front_token).parse()?,
        );
        Ok(request)
    }

    /// The front office opens a case (with `citizen_ref`, `summary`), as the first step of
    /// [`Bus::hand_off`]: the case id is known before the agency hears of it.
    pub async fn open(&self, citizen_ref: &str, summary: &str) -> anyhow::Result<String> {
        let body = v1::OpenCaseRequest {
            service: self.service.clone(),
            citizen_ref: citizen_ref.to_owned(),
            summary: summary.to_owned(),
            actor: "onedoor-conformance".to_owned(),
            idempotency_key: ulid::Ulid::generate().to_string(),
            ..Default::default()
        };
        let receipt = self.front.clone().open_case(self.request(body)?).await?;
        Ok(receipt.into_inner().case_id)
    }

    /// The front office hands `case_id` to the agency under test.
    pub async fn hand_off(
        &self,
        case_id: &str,
        to: &str,
        instructions: &str,
        documents: Vec<v1::DocumentRef>,
    ) -> anyhow::Result<Handed> {
        let body = v1::HandOffRequest {
            case_id: case_id.to_owned(),
            to_agency: to.to_owned(),
            instructions: instructions.to_owned(),
            actor: "onedoor-conformance".to_owned(),
            idempotency_key: ulid::Ulid::generate().to_string(),
            documents,
            ..Default::default()
        };
        let receipt = self.front.clone().hand_off(self.request(body)?).await?;
        Ok(Handed {
            case_id: case_id.to_owned(),
            event_id: receipt.into_inner().event_id,
        })
    }

    /// The citizen withdraws `case_id`: every agency with an open task on it is told.
    pub async fn withdraw(&self, case_id: &str) -> anyhow::Result<()> {
        let body = v1::ResolveCaseRequest {
            case_id: case_id.to_owned(),
            resolution: v1::Resolution::Withdrawn.into(),
            note: "withdrawn by onedoor conformance".to_owned(),
            actor: "onedoor-conformance".to_owned(),
            idempotency_key: ulid::Ulid::generate().to_string(),
        };
        self.front.clone().resolve_case(self.request(body)?).await?;
        Ok(())
    }

    /// Stops the adapters, then nats-server; the store goes with `self`.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.adapters.join_next().await.is_some() {}
        if let Err(error) = self.nats.stop().await {
            tracing::warn!(error = %error, "nats-server did not stop cleanly");
        }
    }
}

/// A document reference at every limit of the contract.
pub fn document_at_limits() -> v1::DocumentRef {
    use onedoor_case::limits;
    let prefix = "https://docs.example.la/";
    v1::DocumentRef {
        name: lao(limits::DOCUMENT_NAME_MAX_BYTES),
        sha256: "0".repeat(limits::SHA256_HEX_LEN),
        uri: format!(
            "{prefix}{}",
            "a".repeat(limits::DOCUMENT_URI_MAX_BYTES - prefix.len())
        ),
        media_type: "application/pdf".to_owned(),
        size_bytes: u64::MAX,
    }
}

/// A front office other than `agency`, to open the cases.
fn front_office(registry: &Registry, agency: &AgencyCode) -> anyhow::Result<AgencyCode> {
    registry
        .active_agencies()
        .find(|a| a.kind == AgencyKind::FrontOffice && &a.code != agency)
        .map(|a| a.code.clone())
        .context("the registry has no front office to send the work from")
}

/// A service whose route has a step for `agency`, or any service that allows off-route
/// hand-offs.
fn service_for<'a>(registry: &'a Registry, agency: &AgencyCode) -> anyhow::Result<&'a str> {
    let services = || registry.services.values();
    services()
        .find(|s| s.step_for(agency).is_some())
        .or_else(|| services().find(|s| !s.strict_route))
        .map(|s| s.code.as_str())
        .with_context(|| format!("no service of the registry may hand a case to {agency}"))
}

/// Waits until the adapter at `address` reports SERVING on its health Watch stream, which
/// sends the current status and then each change: no polling. The listener is bound before
/// the adapter runs, so the connection is accepted at once.
async fn wait_until_serving(address: SocketAddr) -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let watch = async {
        let channel = Channel::from_shared(format!("http://{address}"))?
            .connect()
            .await?;
        let request = HealthCheckRequest {
            service: "onedoor.v1.AgencyGateway".to_owned(),
        };
        let mut statuses = HealthClient::new(channel)
            .watch(request)
            .await?
            .into_inner();
        let mut last = ServingStatus::Unknown;
        while let Some(answer) = statuses.message().await? {
            last = answer.status();
            if last == ServingStatus::Serving {
                return Ok(());
            }
        }
        anyhow::bail!("the health stream ended at {last:?}")
    };
    match tokio::time::timeout(START_DEADLINE, watch).await {
        Ok(result) => {
            result.with_context(|| format!("the adapter at {address} did not come to serve"))
        }
        Err(_) => anyhow::bail!("the adapter at {address} did not serve within {START_DEADLINE:?}"),
    }
}
