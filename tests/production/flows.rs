//! Citizens' cases driven through real adapters the way a ministry's system drives them under
//! faults: every step is retried with its idempotency key while the bus says "try again"
//! (UNAVAILABLE, ABORTED, a broken connection), and any other refusal of a step the rules allow
//! is recorded as a failure of the bus.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use onedoor_proto::v1;
use onedoor_proto::v1::agency_gateway_client::AgencyGatewayClient;
use onedoor_testkit::{BearerToken, eventually};
use tokio::sync::Mutex;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// How long one step may keep being retried before the flow counts it as lost: longer than a
/// leader election, an adapter restart and a NATS reconnect together.
pub const STEP_DEADLINE: Duration = Duration::from_secs(60);

/// Where an agency's adapter listens and how its system authenticates.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `https://127.0.0.1:PORT` (or `http://` without TLS).
    pub address: String,
    pub token: String,
    /// The CA that signed the adapter's certificate, for `https://`.
    pub ca: Option<PathBuf>,
}

pub type Client = AgencyGatewayClient<InterceptedService<Channel, BearerToken>>;

impl Endpoint {
    /// A client that connects lazily and reconnects by itself, as a system's long-lived client
    /// does: an adapter restarted on the same port is reached again without a new client.
    pub fn client(&self) -> anyhow::Result<Client> {
        let mut endpoint = Channel::from_shared(self.address.clone())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10));
        if let Some(ca) = &self.ca {
            let pem = std::fs::read_to_string(ca)?;
            endpoint = endpoint.tls_config(
                ClientTlsConfig::new()
                    .domain_name("localhost")
                    .ca_certificate(Certificate::from_pem(pem)),
            )?;
        }
        Ok(AgencyGatewayClient::with_interceptor(
            endpoint.connect_lazy(),
            BearerToken(self.token.clone()),
        ))
    }
}

/// What the flows saw, across all of them.
#[derive(Debug, Default)]
pub struct Tally {
    /// Every event id a receipt named, with how many distinct steps named it (must be 1).
    pub receipts: BTreeMap<String, usize>,
    /// Cases opened, and resolved at the end of their flow.
    pub opened: Vec<String>,
    pub resolved: usize,
    /// Steps the bus refused although the rules allow them: (step, code, message).
    pub refused: Vec<(String, Code, String)>,
    /// Attempts answered "try again", and the longest a step waited to succeed.
    pub retries: usize,
    pub longest_stall: Duration,
    /// Steps still failing at their deadline.
    pub gave_up: Vec<String>,
}

/// The agencies a flow uses: the front office, then each ministry in turn.
pub struct Agencies {
    pub front: (String, Client),
    pub ministries: Vec<(String, Client)>,
}

/// One step of a flow, retried with the same idempotency key until it lands or is refused
/// (the testkit's `eventually` paces the retries and holds the deadline).
async fn step<F, Fut>(tally: &Mutex<Tally>, name: String, mut call: F) -> Option<v1::Receipt>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<v1::Receipt, tonic::Status>>,
{
    let started = Instant::now();
    let landed = eventually(&name, STEP_DEADLINE, || {
        let attempt = call();
        async move {
            match attempt.await {
                Ok(receipt) => Ok(Ok(receipt)),
                Err(status) if retryable(status.code()) => {
                    tally.lock().await.retries += 1;
                    Ok(Err(status.to_string()))
                }
                Err(status) => Err(anyhow::Error::new(status)),
            }
        }
    })
    .await;
    let mut tally = tally.lock().await;
    match landed {
        Ok(receipt) => {
            *tally.receipts.entry(receipt.event_id.clone()).or_default() += 1;
            tally.longest_stall = tally.longest_stall.max(started.elapsed());
            Some(receipt)
        }
        Err(error) => {
            match error.downcast_ref::<tonic::Status>() {
                Some(status) => {
                    let refusal = (name, status.code(), status.message().to_owned());
                    tally.refused.push(refusal);
                }
                None => tally.gave_up.push(format!("{error:#}")),
            }
            None
        }
    }
}

/// What the bus answers when the caller should retry the same request: an outage, a lost race,
/// a connection that broke (tonic reports a reset or refused connection as UNKNOWN or
/// UNAVAILABLE), or a call cut by its own timeout.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::Aborted
            | Code::Unknown
            | Code::Cancelled
            | Code::DeadlineExceeded
    )
}

/// One case from the counter to resolution: the front office opens it and hands it to each of
/// `route` (indices into the ministries) in turn, each accepting and completing its task; the
/// front office resolves it. Returns the resolution's receipt, or `None` when a step failed
/// (the tally says which and why).
pub async fn flow(
    agencies: &Agencies,
    route: &[usize],
    flow_key: &str,
    tally: &Mutex<Tally>,
) -> Option<v1::Receipt> {
    let (front_code, front) = &agencies.front;
    let key = |what: &str| format!("{flow_key}-{what}");
    let opened = step(tally, key("open"), || {
        let mut client = front.clone();
        let request = v1::OpenCaseRequest {
            service: "enterprise-registration".into(),
            citizen_ref: format!("R-{flow_key}"),
            summary: "ຈົດທະບຽນຮ້ານຄ້າ".into(),
            idempotency_key: key("open"),
            actor: format!("clerk@{front_code}"),
            documents: vec![],
        };
        async move {
            client
                .open_case(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await?;
    let case_id = opened.case_id;
    tally.lock().await.opened.push(case_id.clone());
    for &ministry in route {
        let (code, system) = &agencies.ministries[ministry % agencies.ministries.len()];
        let key = |what: &str| format!("{flow_key}-{code}-{what}");
        step(tally, key("hand-off"), || {
            let mut client = front.clone();
            let request = v1::HandOffRequest {
                case_id: case_id.clone(),
                to_agency: code.clone(),
                instructions: "please review".into(),
                idempotency_key: key("hand-off"),
                ..Default::default()
            };
            async move {
                client
                    .hand_off(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
        .await?;
        step(tally, key("accept"), || {
            let mut client = system.clone();
            let request = v1::AcceptRequest {
                case_id: case_id.clone(),
                idempotency_key: key("accept"),
                actor: format!("officer@{code}"),
            };
            async move {
                client
                    .accept(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
        .await?;
        step(tally, key("complete"), || {
            let mut client = system.clone();
            let request = v1::CompleteRequest {
                case_id: case_id.clone(),
                outcome: "approved".into(),
                idempotency_key: key("complete"),
                ..Default::default()
            };
            async move {
                client
                    .complete(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
        .await?;
    }
    let resolved = step(tally, key("resolve"), || {
        let mut client = front.clone();
        let request = v1::ResolveCaseRequest {
            case_id: case_id.clone(),
            resolution: v1::Resolution::Approved.into(),
            idempotency_key: key("resolve"),
            ..Default::default()
        };
        async move {
            client
                .resolve_case(request)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await?;
    tally.lock().await.resolved += 1;
    Some(resolved)
}

/// Runs `cases` flows, `concurrency` at a time, each through one ministry, round-robin.
pub async fn run_flows(
    agencies: Arc<Agencies>,
    run: &str,
    cases: usize,
    concurrency: usize,
    tally: Arc<Mutex<Tally>>,
) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (agencies, tally, next, run) = (
            agencies.clone(),
            tally.clone(),
            next.clone(),
            run.to_owned(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= cases {
                    break;
                }
                flow(&agencies, &[n], &format!("{run}-{n}"), &tally).await;
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
}
