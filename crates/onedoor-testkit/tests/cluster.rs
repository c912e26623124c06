//! A three-node JetStream cluster: a replicated stream keeps accepting and serving messages
//! when its leader is killed, and the killed node catches up when it comes back.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use onedoor_testkit::TestCluster;

const STREAM: &str = "CASES";

/// Publishes with a message id and retries (same id, so the stream de-duplicates) until the
/// deadline: while a new stream leader is elected, publishes time out or find no responder.
async fn publish_until_stored(
    js: &jetstream::Context,
    subject: &str,
    id: &str,
    deadline: Instant,
) -> anyhow::Result<jetstream::publish::PublishAck> {
    loop {
        let attempt = async {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id);
            js.publish_with_headers(subject.to_owned(), headers, id.to_owned().into())
                .await?
                .await
                .map_err(anyhow::Error::from)
        };
        match attempt.await {
            Ok(ack) => return Ok(ack),
            Err(err) if Instant::now() < deadline => {
                eprintln!("publish {id} not stored yet ({err}); retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => return Err(err.context(format!("publishing {id}"))),
        }
    }
}

async fn stream_leader(js: &jetstream::Context, deadline: Instant) -> anyhow::Result<String> {
    loop {
        let leader = match js.get_stream(STREAM).await {
            Ok(mut stream) => stream
                .info()
                .await
                .ok()
                .and_then(|info| info.cluster.as_ref()?.leader.clone()),
            Err(_) => None,
        };
        match leader {
            Some(leader) => return Ok(leader),
            None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            None => anyhow::bail!("stream {STREAM} has no leader"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_elects_a_leader_for_a_three_replica_stream_and_survives_one_node_being_killed()
-> anyhow::Result<()> {
    let started = Instant::now();
    let mut cluster = TestCluster::start(3).await?;
    eprintln!("cluster formed in {:?}", started.elapsed());
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(cluster.client().await?);

    let stream = js
        .create_stream(stream::Config {
            name: STREAM.to_owned(),
            subjects: vec!["cases.>".to_owned()],
            storage: stream::StorageType::File,
            num_replicas: 3,
            ..Default::default()
        })
        .await?;
    let cluster_info = stream.cached_info().cluster.clone();
    assert_eq!(
        cluster_info.as_ref().map(|c| c.replicas.len()),
        Some(2),
        "a leader and two followers: {cluster_info:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(15);
    for i in 1..=3 {
        publish_until_stored(&js, "cases.a", &format!("m{i}"), deadline).await?;
    }

    let old_leader = stream_leader(&js, deadline).await?;
    let killed = cluster
        .index_of(&old_leader)
        .ok_or_else(|| anyhow::anyhow!("leader {old_leader} is not a cluster node"))?;
    cluster.kill(killed)?;
    let killed_at = Instant::now();

    for i in 4..=6 {
        publish_until_stored(&js, "cases.a", &format!("m{i}"), deadline).await?;
    }
    eprintln!(
        "publishing resumed {:?} after the leader was killed",
        killed_at.elapsed()
    );
    let new_leader = stream_leader(&js, deadline).await?;
    assert_ne!(new_leader, old_leader);

    let mut stream = js.get_stream(STREAM).await?;
    assert_eq!(
        stream.info().await?.state.messages,
        6,
        "no message lost, none doubled by the retries"
    );
    for seq in 1..=6u64 {
        let message = stream.get_raw_message(seq).await?;
        assert_eq!(&message.payload[..], format!("m{seq}").as_bytes());
    }

    // The killed node comes back on its ports and store and catches up. Its /healthz (which
    // `restart` waits for) turns green before its replica has every message, so poll the
    // node's own view of the stream.
    let restarting = Instant::now();
    cluster.restart(killed).await?;
    eprintln!("restarted node healthy after {:?}", restarting.elapsed());
    let catch_up_deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let held = messages_on_node(&cluster, killed).await?;
        if held == 6 {
            eprintln!("restarted node caught up after {:?}", restarting.elapsed());
            break;
        }
        assert!(
            Instant::now() < catch_up_deadline,
            "restarted node holds {held} of 6 messages"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("whole test took {:?}", started.elapsed());
    Ok(())
}

/// How many messages node `index`'s own replica of the stream holds, from its `/jsz`.
async fn messages_on_node(cluster: &TestCluster, index: usize) -> anyhow::Result<u64> {
    let response = cluster
        .node(index)?
        .monitor("/jsz?accounts=true&streams=true")
        .await?;
    let jsz: serde_json::Value = serde_json::from_str(&response.body)?;
    let streams = jsz["account_details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten());
    for detail in streams {
        if detail["name"] == STREAM {
            return detail["state"]["messages"]
                .as_u64()
                .ok_or_else(|| anyhow::anyhow!("no message count in {detail}"));
        }
    }
    anyhow::bail!("node {index} has no replica of {STREAM}: {jsz}")
}
