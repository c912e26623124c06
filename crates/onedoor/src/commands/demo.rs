//! `onedoor demo`: one citizen request travels through every agency on its service's route,
//! each agency's "system" reading its Inbox, acknowledging, accepting and completing, the way a
//! ministry integration would. Runs against a bus started with `onedoor up`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use onedoor_case::{AgencyKind, Registry, ServiceCode};
use onedoor_proto::v1;
use onedoor_proto::v1::agency_gateway_client::AgencyGatewayClient;
use tonic::transport::Channel;

use super::common;
use crate::data_dir::Endpoints;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The running bus's data dir, where `onedoor up` wrote endpoints.json.
    #[arg(long, env = "ONEDOOR_DATA_DIR", default_value = ".onedoor")]
    pub data_dir: PathBuf,
    /// The catalogue service the demo case is for.
    #[arg(long, default_value = "construction-permit")]
    pub service: String,
    /// The front office that opens the case (default: Saysettha, the first ODSC, when the
    /// registry has it, else the first front office listed).
    #[arg(long)]
    pub front_office: Option<String>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let endpoints = Endpoints::read(&args.data_dir)?.with_context(|| {
            format!(
                "no running bus in {}: start one with `onedoor up`",
                args.data_dir.display()
            )
        })?;
        let registry = registry_of(&endpoints)?;
        let service = ServiceCode::parse(&args.service)
            .with_context(|| format!("--service {:?}", args.service))?;
        journey(
            &endpoints,
            &registry,
            &service,
            args.front_office.as_deref(),
        )
        .await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The registry the running bus uses: the file it names, or the built-in one.
fn registry_of(endpoints: &Endpoints) -> anyhow::Result<Registry> {
    let path = PathBuf::from(&endpoints.registry);
    let (registry, _) = common::load_registry_mut(path.is_file().then_some(path.as_path()))?;
    Ok(registry)
}

/// One agency's system: its adapter client and token.
struct System {
    code: String,
    client: AgencyGatewayClient<Channel>,
    token: String,
    /// One inbox stream for the whole demo: a stream closed while it holds deliveries hands
    /// them back to the bus only after a release delay.
    inbox: Option<tonic::Streaming<v1::InboxItem>>,
}

impl System {
    async fn connect(endpoints: &Endpoints, code: &str) -> anyhow::Result<System> {
        let entry = endpoints
            .agencies
            .get(code)
            .with_context(|| format!("{code} has no adapter in endpoints.json"))?;
        let channel = super::grpc::channel(&entry.grpc, endpoints.tls_ca_cert.as_deref(), None)
            .await
            .with_context(|| format!("connecting to {code}'s adapter at {}", entry.grpc))?;
        Ok(System {
            code: code.to_owned(),
            client: AgencyGatewayClient::new(channel),
            token: entry.token.clone(),
            inbox: None,
        })
    }

    fn request<T>(&self, body: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(body);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {}", self.token).parse()?);
        Ok(request)
    }

    /// Reads this agency's inbox until an event of `case_id` arrives, acknowledging it.
    async fn receive(&mut self, case_id: &str) -> anyhow::Result<v1::CaseEvent> {
        if self.inbox.is_none() {
            let request = self.request(v1::InboxRequest { max_in_flight: 0 })?;
            self.inbox = Some(self.client.inbox(request).await?.into_inner());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let stream = self.inbox.as_mut().context("inbox stream")?;
            let item = tokio::time::timeout(left, stream.message())
                .await
                .with_context(|| {
                    format!("{}: nothing arrived in its inbox within 30 s", self.code)
                })??
                .with_context(|| format!("{}: inbox stream ended", self.code))?;
            let event = item.event.context("inbox item without an event")?;
            let ack = v1::AckRequest {
                event_ids: vec![event.event_id.clone()],
            };
            self.client.ack(self.request(ack)?).await?;
            if event.case_id == case_id {
                return Ok(event);
            }
        }
    }
}

fn kind(event: &v1::CaseEvent) -> &'static str {
    event.kind().unwrap_or("?")
}

pub(crate) async fn journey(
    endpoints: &Endpoints,
    registry: &Registry,
    service_code: &ServiceCode,
    front_office: Option<&str>,
) -> anyhow::Result<()> {
    let service = registry
        .service(service_code)
        .with_context(|| format!("service {service_code} is not in the registry"))?;
    let front_code = pick_front_office(registry, front_office)?;
    let started = Instant::now();
    let mut journey = Journey::new(endpoints, front_code).await?;
    let receipt = journey.open(service_code, service).await?;
    for (stage_number, stage) in service.route.iter().enumerate() {
        let agencies: Vec<String> = stage
            .steps
            .iter()
            .filter_map(|s| s.agency.codes().first())
            .map(ToString::to_string)
            .collect();
        journey.run_stage(stage_number, &agencies).await?;
    }
    let version = journey.resolve(&receipt.trace_id).await?;
    println!(
        "case {} resolved: approved after {version} events in {:.2} s, one trace {}",
        receipt.case_id,
        started.elapsed().as_secs_f64(),
        receipt.trace_id
    );
    Ok(())
}

/// `--front-office` when it is an active front office; else Saysettha (the first ODSC) when
/// the registry has it; else the first front office listed.
fn pick_front_office(registry: &Registry, asked: Option<&str>) -> anyhow::Result<String> {
    let front_offices: Vec<String> = registry
        .active_agencies()
        .filter(|a| a.kind == AgencyKind::FrontOffice)
        .map(|a| a.code.to_string())
        .collect();
    match asked {
        Some(code) if front_offices.iter().any(|f| f == code) => Ok(code.to_owned()),
        Some(code) => anyhow::bail!("{code} is not an active front office in the registry"),
        None => front_offices
            .iter()
            .find(|f| f.as_str() == "ODSC-VTE-SAYSETTHA")
            .or(front_offices.first())
            .cloned()
            .context("the registry has no front office"),
    }
}

/// One demo case on its way: every agency's system met so far, and the keys of this run.
struct Journey<'a> {
    endpoints: &'a Endpoints,
    front_code: String,
    systems: BTreeMap<String, System>,
    run: String,
    case_id: String,
}

impl<'a> Journey<'a> {
    async fn new(endpoints: &'a Endpoints, front_code: String) -> anyhow::Result<Journey<'a>> {
        let front = System::connect(endpoints, &front_code).await?;
        Ok(Journey {
            endpoints,
            systems: BTreeMap::from([(front_code.clone(), front)]),
            front_code,
            run: ulid::Ulid::generate().to_string(),
            case_id: String::new(),
        })
    }

    fn key(&self, what: &str) -> String {
        format!("demo-{}-{what}", self.run)
    }

    async fn system(&mut self, code: &str) -> anyhow::Result<&mut System> {
        if !self.systems.contains_key(code) {
            let system = System::connect(self.endpoints, code).await?;
            self.systems.insert(code.to_owned(), system);
        }
        self.systems.get_mut(code).context("agency system")
    }

    async fn open(
        &mut self,
        service_code: &ServiceCode,
        service: &onedoor_case::Service,
    ) -> anyhow::Result<v1::Receipt> {
        let open = v1::OpenCaseRequest {
            service: service_code.to_string(),
            citizen_ref: format!("DEMO-{}", &self.run[20..]),
            summary: format!("{} (ສາທິດ / demo)", service.name_lo),
            idempotency_key: self.key("open"),
            actor: "counter-clerk-01".into(),
            documents: vec![],
        };
        let front_code = self.front_code.clone();
        let front = self.system(&front_code).await?;
        let receipt = front
            .client
            .open_case(front.request(open)?)
            .await?
            .into_inner();
        self.case_id.clone_from(&receipt.case_id);
        println!(
            "case {} opened at {front_code} for {} — trace {}",
            receipt.case_id, service.name_en, receipt.trace_id
        );
        Ok(receipt)
    }

    /// Parallel steps: hand off to every agency of the stage, then let each work; the front
    /// office hears of each acceptance and completion in its own inbox.
    async fn run_stage(&mut self, stage_number: usize, agencies: &[String]) -> anyhow::Result<()> {
        let front_code = self.front_code.clone();
        for agency in agencies {
            let body = v1::HandOffRequest {
                case_id: self.case_id.clone(),
                to_agency: agency.clone(),
                instructions: format!("stage {}: please review", stage_number + 1),
                idempotency_key: self.key(&format!("handoff-{agency}")),
                ..Default::default()
            };
            let front = self.system(&front_code).await?;
            front.client.hand_off(front.request(body)?).await?;
            println!("  {front_code} → {agency}  handed off");
        }
        for agency in agencies {
            self.work(agency).await?;
        }
        let case_id = self.case_id.clone();
        let front = self.system(&front_code).await?;
        for _ in 0..agencies.len() * 2 {
            let event = front.receive(&case_id).await?;
            println!(
                "  {front_code} inbox: {} from {}",
                kind(&event),
                event.from_agency
            );
        }
        Ok(())
    }

    /// The agency reads its inbox, accepts and completes its task.
    async fn work(&mut self, agency: &str) -> anyhow::Result<()> {
        let case_id = self.case_id.clone();
        let accept = v1::AcceptRequest {
            case_id: case_id.clone(),
            idempotency_key: self.key(&format!("accept-{agency}")),
            actor: "officer".into(),
        };
        let complete = v1::CompleteRequest {
            case_id: case_id.clone(),
            outcome: "approved".into(),
            note: format!("{agency} done"),
            idempotency_key: self.key(&format!("complete-{agency}")),
            ..Default::default()
        };
        let system = self.system(agency).await?;
        let event = system.receive(&case_id).await?;
        println!(
            "  {agency} inbox: {} (version {})",
            kind(&event),
            event.case_version
        );
        system.client.accept(system.request(accept)?).await?;
        system.client.complete(system.request(complete)?).await?;
        println!("  {agency} accepted and completed");
        Ok(())
    }

    /// The front office resolves the case; the view must say resolved, every event in the
    /// case's one trace. Returns the case's last version.
    async fn resolve(&mut self, trace_id: &str) -> anyhow::Result<u64> {
        let case_id = self.case_id.clone();
        let resolve = v1::ResolveCaseRequest {
            case_id: case_id.clone(),
            resolution: v1::Resolution::Approved.into(),
            note: "ອະນຸມັດ / approved".into(),
            idempotency_key: self.key("resolve"),
            actor: "counter-clerk-01".into(),
        };
        let front_code = self.front_code.clone();
        let front = self.system(&front_code).await?;
        let resolved = front
            .client
            .resolve_case(front.request(resolve)?)
            .await?
            .into_inner();
        let view = front
            .client
            .get_case(front.request(v1::GetCaseRequest { case_id })?)
            .await?
            .into_inner();
        anyhow::ensure!(
            view.status == v1::CaseStatus::Resolved as i32,
            "the case did not end resolved"
        );
        anyhow::ensure!(
            view.events.iter().all(|e| e.trace_id == trace_id),
            "an event left the case's trace"
        );
        Ok(resolved.case_version)
    }
}
