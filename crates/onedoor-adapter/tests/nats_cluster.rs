//! An adapter on the production cluster (`deploy/nats/`: three nodes, TLS, nkey users) with
//! every URL, its own seed and the cluster's CA: it serves, and when the node it talks to
//! freezes it moves to another and keeps serving, without anyone restarting it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use onedoor_adapter::{AdapterConfig, AdapterError, CaseReads, Token};
use onedoor_bus::stuck::ensure_stuck_bucket;
use onedoor_bus::{InboxSettings, StreamSettings, ensure_inbox, ensure_stream};
use onedoor_case::Registry;
use onedoor_natsauth::{ConnectSettings, CredentialSet, Identity, NatsCredentials, NatsTls};
use onedoor_proto::v1::agency_gateway_client::AgencyGatewayClient;
use onedoor_testkit::{
    BearerToken, DEADLINE, DeployCluster, FRONT, code, eventually, shipped_registry, token_for,
};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The client leaves a node after two unanswered pings, 2 s apart (docs/jetstream.md §13);
/// the margin is for a stream leader election and a loaded two-core machine.
const MOVED_WITHIN: Duration = Duration::from_secs(20);

/// A refusal ends the start at once; the start-up deadline is 60 s.
const FAIL_FAST: Duration = Duration::from_secs(15);

fn front() -> Identity {
    Identity::Agency(code(FRONT))
}

/// The front office's adapter on `cluster`: every URL, `seed`, TLS trusting `ca`.
fn front_config(
    cluster: &DeployCluster,
    registry: Registry,
    seed: &Path,
    ca: &Path,
) -> anyhow::Result<AdapterConfig> {
    let mut config = AdapterConfig::new(
        code(FRONT),
        Token::new(token_for(FRONT))?,
        Arc::new(registry),
        String::new(),
    );
    config.nats = ConnectSettings {
        credentials: NatsCredentials::Seed(seed.to_path_buf()),
        tls: NatsTls {
            ca: Some(ca.to_path_buf()),
            ..NatsTls::default()
        },
        ..ConnectSettings::new(cluster.urls())
    };
    config.reads = CaseReads::Reader;
    Ok(config)
}

/// The node whose `/connz` lists the adapter's connection, among the unfrozen `candidates`.
async fn node_with_adapter(
    cluster: &DeployCluster,
    candidates: &[usize],
) -> anyhow::Result<Option<usize>> {
    let name = format!("\"onedoor-adapter-{FRONT}\"");
    for &index in candidates {
        let connz = cluster.node(index)?.monitor("/connz?limit=4096").await?;
        if connz.body.contains(&name) {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_on_the_tls_cluster_moves_off_a_frozen_node_and_keeps_serving()
-> anyhow::Result<()> {
    let registry = shipped_registry();
    let mut cluster = DeployCluster::start(&registry).await?;
    let operator = jetstream::new(cluster.connect(&Identity::Operator).await?);
    ensure_stream(&operator, &StreamSettings::production()).await?;
    ensure_inbox(&operator, &code(FRONT), &InboxSettings::default()).await?;
    ensure_stuck_bucket(&operator).await?;
    let _reader = cluster.start_reader(None).await?;

    let seed = cluster.credentials.seed_file(&front()).expect("a seed");
    let config = front_config(&cluster, registry, seed, cluster.ca_pem())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let adapter = tokio::spawn(onedoor_adapter::run(config, listener, async {
        let _ = stopped.await;
    }));

    let open_case = || {
        let address = address.clone();
        async move {
            let channel = tonic::transport::Endpoint::from_shared(address)?
                .connect()
                .await?;
            let mut health = HealthClient::new(channel.clone());
            let request = HealthCheckRequest {
                service: "onedoor.v1.AgencyGateway".into(),
            };
            let status = health.check(request).await?.into_inner().status();
            if status != ServingStatus::Serving {
                return Ok(Err(format!("health {status:?}")));
            }
            let mut client =
                AgencyGatewayClient::with_interceptor(channel, BearerToken(token_for(FRONT)));
            let request = onedoor_proto::v1::OpenCaseRequest {
                service: "enterprise-registration".into(),
                citizen_ref: "R-CLUSTER".into(),
                idempotency_key: ulid::Ulid::generate().to_string(),
                ..Default::default()
            };
            Ok(match client.open_case(request).await {
                Ok(_) => Ok(()),
                Err(status) => Err(status.to_string()),
            })
        }
    };
    eventually("the adapter to serve a write", DEADLINE, open_case).await?;

    let all = [0, 1, 2];
    let frozen = eventually("a node to list the adapter", DEADLINE, || {
        node_with_adapter(&cluster, &all)
    })
    .await?;
    cluster.freeze(frozen)?;
    let started = Instant::now();
    let others: Vec<usize> = all.into_iter().filter(|&i| i != frozen).collect();
    let moved_to = eventually("the adapter to move to another node", DEADLINE, || {
        node_with_adapter(&cluster, &others)
    })
    .await?;
    eventually("the adapter to serve a write again", DEADLINE, open_case).await?;
    let took = started.elapsed();
    eprintln!("froze node {frozen}; the adapter moved to node {moved_to} and wrote after {took:?}");
    assert!(took < MOVED_WITHIN, "moved only after {took:?}");

    cluster.thaw(frozen)?;
    let _ = stop.send(());
    adapter.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_an_unknown_seed_stops_the_adapter_at_once() -> anyhow::Result<()> {
    let cluster = DeployCluster::start(&shipped_registry()).await?;
    let strangers_dir = cluster.root_dir().join("strangers");
    let strangers = CredentialSet::generate(&strangers_dir, &shipped_registry())?;
    let seed = cluster.credentials.seed_file(&front()).expect("a seed");
    let unknown_seed = strangers.seed_file(&front()).expect("a seed");
    // The route CA signs route certificates only: the nodes' client certificates do not
    // chain to it.
    let cases = [
        (
            "a wrong CA",
            seed,
            cluster.tls.route_ca.as_path(),
            "TLS failed",
        ),
        (
            "an unknown seed",
            unknown_seed,
            cluster.ca_pem(),
            "refused this identity",
        ),
    ];
    for (what, seed, ca, says) in cases {
        let config = front_config(&cluster, shipped_registry(), seed, ca)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let started = Instant::now();
        let run = onedoor_adapter::run(config, listener, std::future::pending());
        let outcome = tokio::time::timeout(FAIL_FAST, run).await;
        let took = started.elapsed();
        match outcome {
            Ok(Err(error @ AdapterError::Connect(_))) => {
                assert!(error.to_string().contains(says), "{what}: {error}");
            }
            Ok(other) => panic!("{what}: expected a refusal, got {other:?}"),
            Err(_) => panic!("{what}: still trying after {took:?}"),
        }
    }
    Ok(())
}
