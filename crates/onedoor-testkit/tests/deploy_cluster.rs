//! The production cluster as `deploy/nats/` defines it, started by [`DeployCluster`]: its files
//! pass `nats-server -t`, it admits only TLS clients with a known nkey and only routes with a
//! certificate from the routes' CA, and an R3 stream on it stays writable with a node killed.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream;
use onedoor_bus::{CaseLog, StreamSettings, ensure_stream};
use onedoor_natsauth::{Identity, Seed, connect_options};
use onedoor_testkit::bus::open_and_hand_off;
use onedoor_testkit::deploy_cluster::{CLUSTER_NAME, set_env};
use onedoor_testkit::natsd::{ClusterSpec, NatsServer};
use onedoor_testkit::{DEADLINE, DeployCluster, FRONT, code, eventually, shipped_registry};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

/// Long enough for the server's TLS handshake timeout (2 s in cluster-common.conf) to close a
/// connection that never starts TLS.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_deploy_cluster_refuses_plain_clients_unknown_keys_and_foreign_routes()
-> anyhow::Result<()> {
    let cluster = DeployCluster::start(&shipped_registry()).await?;
    cluster.check_configs()?;

    plain_text_client_is_refused(&cluster).await?;

    let stranger = Identity::Agency(code("MOIC"));
    let refused = connect_options(&stranger, &Seed::generate()?)
        .add_root_certificates(cluster.ca_pem().to_path_buf())
        .connect(cluster.urls().as_slice())
        .await;
    let err = refused
        .err()
        .context("a client with an nkey nats-auth.conf does not list was let in")?;
    assert_eq!(
        err.kind(),
        async_nats::ConnectErrorKind::AuthorizationViolation,
        "{err}"
    );

    // The operator, with its own key over TLS, is let in.
    cluster.connect(&Identity::Operator).await?.flush().await?;

    foreign_route_is_refused(&cluster).await
}

/// A client that talks plain NATS protocol (no TLS) is told TLS is required and cut off
/// without ever getting an answer to its PING.
async fn plain_text_client_is_refused(cluster: &DeployCluster) -> anyhow::Result<()> {
    let port = cluster.node(0)?.client_port();
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut reader = BufReader::new(stream);
    let mut info = String::new();
    reader.read_line(&mut info).await?;
    assert!(info.contains("\"tls_required\":true"), "{info}");
    reader
        .get_mut()
        .write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
        .await?;
    let mut rest = Vec::new();
    // The server ends the connection (EOF or reset) once the handshake fails.
    let _ = tokio::time::timeout(REFUSAL_DEADLINE, reader.read_to_end(&mut rest))
        .await
        .context("the server kept a plain-text client connected")?;
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        !rest.contains("PONG"),
        "a plain-text client was answered: {rest}"
    );
    Ok(())
}

/// A fourth nats-server from the same files, but whose route certificate comes from the
/// clients' CA, dials the three nodes and is refused: it never becomes a peer.
async fn foreign_route_is_refused(cluster: &DeployCluster) -> anyhow::Result<()> {
    let config = cluster.config_dir().join("cluster-node-rogue.conf");
    std::fs::write(
        &config,
        "server_name: onedoor-nats-rogue\ninclude ./cluster-common.conf\n",
    )?;
    let route_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = cluster.root_dir().join("rogue");
    let mut spec = cluster.node_spec(0)?.clone();
    spec.dir = dir.clone();
    spec.config_file = Some(config);
    spec.server_name = Some("onedoor-nats-rogue".to_owned());
    spec.cluster = Some(ClusterSpec {
        name: CLUSTER_NAME.to_owned(),
        port: route_port,
        routes: Vec::new(),
    });
    set_env(&mut spec, "CLIENT_LISTEN", "127.0.0.1:-1".to_owned());
    set_env(&mut spec, "MONITOR_LISTEN", "127.0.0.1:-1".to_owned());
    set_env(&mut spec, "STORE_DIR", dir.display().to_string());
    set_env(&mut spec, "ROUTE_LISTEN", format!("127.0.0.1:{route_port}"));
    // It trusts the routes' CA, so only the nodes' check of its certificate can stop it.
    let tls = &cluster.tls;
    set_env(
        &mut spec,
        "ROUTE_CERT",
        tls.server_cert.display().to_string(),
    );
    set_env(&mut spec, "ROUTE_KEY", tls.server_key.display().to_string());
    let rogue = NatsServer::start(spec).await?;

    // The proof that it tried and failed: node a logs a failed route handshake after the
    // rogue dialled it (Go's TLS client sends no certificate the server's CA list does not
    // name, so the log says the client provided none).
    let node_a_log = cluster.node(0)?.log_path();
    eventually("node a to refuse the rogue route", DEADLINE, || async {
        let log = std::fs::read_to_string(&node_a_log)?;
        let refused = log
            .lines()
            .find(|line| line.contains("TLS route handshake error"));
        Ok(refused.map(str::to_owned))
    })
    .await?;
    let routes: serde_json::Value = serde_json::from_str(&rogue.monitor("/routez").await?.body)?;
    assert_eq!(routes["num_routes"], 0, "the rogue has routes: {routes}");
    let routes = cluster.node(0)?.monitor("/routez").await?.body;
    assert!(
        !routes.contains("onedoor-nats-rogue"),
        "node a routes to the rogue: {routes}"
    );
    Ok(())
}

#[tokio::test]
async fn an_r3_stream_on_the_deploy_cluster_stays_writable_with_its_leader_killed()
-> anyhow::Result<()> {
    let registry = shipped_registry();
    let mut cluster = DeployCluster::start(&registry).await?;
    // `sync_interval: always` took effect: every write is on disk before its ack.
    for index in 0..3 {
        let varz: serde_json::Value =
            serde_json::from_str(&cluster.node(index)?.monitor("/varz").await?.body)?;
        assert_eq!(
            varz["jetstream"]["config"]["sync_always"], true,
            "node {index}"
        );
    }
    let operator = jetstream::new(cluster.connect(&Identity::Operator).await?);
    ensure_stream(&operator, &StreamSettings::production()).await?;
    let stream_info = || async {
        let stream = operator.get_stream(onedoor_bus::STREAM_NAME).await?;
        anyhow::Ok(stream.cached_info().clone())
    };
    assert_eq!(stream_info().await?.config.num_replicas, 3);

    let _reader = cluster.start_reader(None).await?;
    let front = jetstream::new(cluster.connect(&Identity::Agency(code(FRONT))).await?);
    let log = CaseLog::through_reader(front, code(FRONT), std::time::Duration::from_secs(5));
    open_and_hand_off(&log, &registry, "MOIC").await?;

    let leader = eventually("the stream to elect a leader", DEADLINE, || async {
        Ok(stream_info().await?.cluster.and_then(|c| c.leader))
    })
    .await?;
    let index = cluster
        .index_of(&leader)
        .with_context(|| format!("leader {leader} is not a deploy node"))?;
    cluster.kill(index)?;

    let killed = Instant::now();
    eventually("a write after the leader was killed", DEADLINE, || async {
        Ok(open_and_hand_off(&log, &registry, "MOF")
            .await
            .map_err(|e| e.to_string()))
    })
    .await?;
    println!(
        "first write after killing {leader} took {:?}",
        killed.elapsed()
    );

    cluster.restart(index).await?;
    let messages = stream_info().await?.state.messages;
    assert_eq!(messages, 4, "two cases opened and handed off");
    Ok(())
}
