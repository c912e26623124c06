//! `ListCases` latency through a real tracker's CaseTracker gRPC on loopback: one HDR histogram
//! per filter, each call timed from send to decoded reply, one call at a time. Plus the listing
//! an agency's own token gets (confined to the cases it is part of), timed at the store: the
//! gRPC path to it needs TLS and tokens, which add nothing to the query measured.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use onedoor_case::{AgencyCode, ServiceCode};
use onedoor_proto::v1;
use onedoor_proto::v1::case_tracker_client::CaseTrackerClient;
use onedoor_tracker::store::CaseFilter;
use onedoor_tracker::{DatabaseUrl, Store, TrackerConfig};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use tonic::transport::Channel;

use super::TrackerBenchArgs;
use super::history::Catalogue;
use super::running::RunningTracker;
use crate::BenchError;

/// How long the tracker may take to answer its first call.
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// `list_<filter>_<p50|p90|p99|max>_ms` for every filter, in milliseconds.
pub type Latencies = BTreeMap<String, f64>;

/// Starts a tracker on `database` and measures every filter.
pub async fn measure(
    nats_url: &str,
    database: &DatabaseUrl,
    catalogue: Arc<Catalogue>,
    args: &TrackerBenchArgs,
    cases: u64,
) -> Result<Latencies, BenchError> {
    let mut config = TrackerConfig::new(
        nats_url,
        database.clone(),
        Arc::new(catalogue.registry().clone()),
    );
    // Its own consumer: the stream is still empty, so this tracker projects nothing.
    config.consumer = "bench-listing".to_owned();
    let tracker = RunningTracker::start(config).await?;
    let outcome = calls(&tracker.url, &catalogue, args, cases).await;
    tracker.stop().await?;
    let mut latencies = outcome?;
    latencies.extend(confined(database, &catalogue, args).await?);
    Ok(latencies)
}

/// An agency caller's first page, as the tracker's ListCases asks the store for it (one more
/// case than the page, to know whether another follows), for agencies drawn at random.
async fn confined(
    database: &DatabaseUrl,
    catalogue: &Catalogue,
    args: &TrackerBenchArgs,
) -> Result<Latencies, BenchError> {
    let store = Store::connect(database)
        .await
        .map_err(BenchError::connect("opening the listing database"))?;
    let agencies = catalogue.agencies();
    let limit = usize::try_from(args.page_size)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let now = time::OffsetDateTime::now_utc();
    let mut rng = StdRng::seed_from_u64(11);
    let store_ref = &store;
    let histogram = timed(args.queries, || {
        let filter = CaseFilter {
            part_of: Some(agencies[rng.random_range(0..agencies.len())].clone()),
            ..CaseFilter::default()
        };
        async move {
            store_ref.list_cases(&filter, None, limit, now).await?;
            Ok(())
        }
    })
    .await;
    store.close().await;
    let mut latencies = Latencies::new();
    insert(&mut latencies, "confined", &histogram?);
    Ok(latencies)
}

async fn connect(url: &str) -> Result<CaseTrackerClient<Channel>, BenchError> {
    let started = Instant::now();
    loop {
        let attempt = async {
            let channel = Channel::from_shared(url.to_owned())?
                .tcp_nodelay(true)
                .connect()
                .await?;
            let mut client = CaseTrackerClient::new(channel);
            client
                .list_cases(v1::ListCasesRequest {
                    page_size: 1,
                    ..Default::default()
                })
                .await?;
            Ok::<_, crate::error::Cause>(client)
        };
        match attempt.await {
            Ok(client) => return Ok(client),
            Err(source) if started.elapsed() > READY_DEADLINE => {
                return Err(BenchError::Connect {
                    action: format!("the tracker at {url} did not answer"),
                    source,
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The `ListCases` filters measured one after the other, each under its name in the report.
#[derive(Debug, Clone, Copy)]
enum Filter {
    All,
    Agency,
    Overdue,
    OverdueAgency,
    Service,
    /// A citizen's reference number: matches one case, wherever it is in the order.
    Text,
}

impl Filter {
    const ALL: [Filter; 6] = [
        Filter::All,
        Filter::Agency,
        Filter::Overdue,
        Filter::OverdueAgency,
        Filter::Service,
        Filter::Text,
    ];

    fn name(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Agency => "agency",
            Filter::Overdue => "overdue",
            Filter::OverdueAgency => "overdue_agency",
            Filter::Service => "service",
            Filter::Text => "text",
        }
    }
}

/// What the requests are drawn from: one page of the listing, narrowed by a filter to a random
/// route agency, service or reference number.
struct Requests {
    base: v1::ListCasesRequest,
    agencies: Vec<AgencyCode>,
    services: Vec<ServiceCode>,
    cases: u64,
}

impl Requests {
    fn new(catalogue: &Catalogue, page_size: u32, cases: u64) -> Self {
        Requests {
            base: v1::ListCasesRequest {
                page_size,
                ..Default::default()
            },
            agencies: catalogue.route_agencies(),
            services: catalogue.services().to_vec(),
            cases,
        }
    }

    fn next(&self, filter: Filter, rng: &mut StdRng) -> v1::ListCasesRequest {
        let base = self.base.clone();
        let mut agency = || self.agencies[rng.random_range(0..self.agencies.len())].to_string();
        match filter {
            Filter::All => base,
            Filter::Agency => v1::ListCasesRequest {
                holding_agency: agency(),
                ..base
            },
            Filter::Overdue => v1::ListCasesRequest {
                overdue_only: true,
                ..base
            },
            Filter::OverdueAgency => v1::ListCasesRequest {
                overdue_only: true,
                holding_agency: agency(),
                ..base
            },
            Filter::Service => v1::ListCasesRequest {
                service: self.services[rng.random_range(0..self.services.len())].to_string(),
                ..base
            },
            Filter::Text => v1::ListCasesRequest {
                text: format!("{:08}", rng.random_range(0..self.cases)),
                ..base
            },
        }
    }
}

/// Every filter over gRPC, then deep paging.
async fn calls(
    url: &str,
    catalogue: &Catalogue,
    args: &TrackerBenchArgs,
    cases: u64,
) -> Result<Latencies, BenchError> {
    let client = connect(url).await?;
    let requests = Requests::new(catalogue, args.page_size, cases);
    let mut latencies = Latencies::new();
    let mut rng = StdRng::seed_from_u64(7);
    for filter in Filter::ALL {
        let histogram = timed(args.queries, || {
            let request = requests.next(filter, &mut rng);
            let mut client = client.clone();
            async move {
                client
                    .list_cases(request)
                    .await
                    .map_err(|source| BenchError::Call {
                        action: format!("ListCases ({})", filter.name()),
                        source,
                    })?;
                Ok(())
            }
        })
        .await?;
        insert(&mut latencies, filter.name(), &histogram);
    }
    let histogram = deep_paging(client, &requests.base, args).await?;
    insert(&mut latencies, "deep", &histogram);
    Ok(latencies)
}

/// `queries` calls timed one at a time, after a tenth as many untimed. `call` makes each
/// request (outside the time) and returns the call.
async fn timed<F>(queries: u64, mut call: impl FnMut() -> F) -> Result<Histogram<u64>, BenchError>
where
    F: Future<Output = Result<(), BenchError>>,
{
    let warmup = queries / 10;
    let mut histogram = new_histogram()?;
    for n in 0..queries + warmup {
        let call = call();
        let started = Instant::now();
        call.await?;
        if n >= warmup {
            record(&mut histogram, started.elapsed());
        }
    }
    Ok(histogram)
}

/// Pages 2..=pages of the unfiltered listing, through the cursor, walked until `queries` pages
/// are timed (the first walk warms up).
async fn deep_paging(
    mut client: CaseTrackerClient<Channel>,
    base: &v1::ListCasesRequest,
    args: &TrackerBenchArgs,
) -> Result<Histogram<u64>, BenchError> {
    let mut histogram = new_histogram()?;
    let mut walks = 0;
    while histogram.len() < args.queries {
        walks += 1;
        let mut token = String::new();
        for page in 1..=args.pages {
            let started = Instant::now();
            let reply = client
                .list_cases(v1::ListCasesRequest {
                    page_token: token,
                    ..base.clone()
                })
                .await
                .map_err(BenchError::call("ListCases (paging)"))?
                .into_inner();
            if page > 1 && walks > 1 {
                record(&mut histogram, started.elapsed());
            }
            token = reply.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        if walks >= 10 * args.queries {
            return Err(BenchError::Unfit(
                "deep paging: the listing has too few pages to measure".to_owned(),
            ));
        }
    }
    Ok(histogram)
}

fn new_histogram() -> Result<Histogram<u64>, BenchError> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    histogram.saturating_record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
}

fn insert(latencies: &mut Latencies, name: &str, histogram: &Histogram<u64>) {
    let ms = |us: u64| us as f64 / 1_000.0;
    for (label, quantile) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)] {
        latencies.insert(
            format!("list_{name}_{label}_ms"),
            ms(histogram.value_at_quantile(quantile)),
        );
    }
    latencies.insert(format!("list_{name}_max_ms"), ms(histogram.max()));
}
