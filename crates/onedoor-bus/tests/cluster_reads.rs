//! Read-your-writes on a real three-node cluster with an R3 stream: an agency whose adapter is
//! connected to a follower acts on a hand-off the moment it is delivered, and reads back its
//! own step at once. A follower answers direct gets from its own copy, which may not yet hold
//! an event the leader has acknowledged; the case log must never refuse a valid step or show a
//! case without an event it knows about because of that.

use std::time::Duration;

use async_nats::jetstream;
use onedoor_bus::{CaseLog, StreamSettings, ensure_stream};
use onedoor_case::{Action, CaseId};
use onedoor_testkit::bus::{open_and_hand_off, write_request};
use onedoor_testkit::{TestCluster, registry_with_keys, stream_leader};
use time::OffsetDateTime;

async fn log_on(cluster: &TestCluster, node: usize) -> anyhow::Result<CaseLog> {
    let client = async_nats::connect(cluster.url(node)?).await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .build(client);
    Ok(CaseLog::open(js).await?)
}

/// The index of the node leading the ONEDOOR stream, and the two others.
async fn leader_and_followers(cluster: &TestCluster) -> anyhow::Result<(usize, Vec<usize>)> {
    let leader_name = stream_leader(&cluster.jetstream().await?, onedoor_bus::STREAM_NAME).await?;
    let leader = cluster
        .index_of(&leader_name)
        .ok_or_else(|| anyhow::anyhow!("unknown leader {leader_name}"))?;
    let followers = (0..cluster.size()).filter(|i| *i != leader).collect();
    Ok((leader, followers))
}

/// Cases opened and handed over while a follower is frozen: enough that, thawed, it takes a
/// moment to apply them (on loopback about 1 in 10 of the newest is still missing when read at
/// once), few enough to take a few seconds.
const CASES_WHILE_FROZEN: usize = 1_500;
/// The newest cases the ministry acts on through the thawed follower, newest first.
const CASES_ACTED_ON: usize = 100;

/// The ministry's adapter is connected to a follower that was frozen while the front office
/// opened and handed over many cases through the leader. The moment the follower thaws, the
/// ministry accepts the newest hand-offs (it was told of each delivery, as its inbox would):
/// none may be refused, and each read back must show the ministry's own accept. A raw direct
/// get through the same follower shows how often the follower was really behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_through_a_follower_that_is_catching_up_are_never_refused() -> anyhow::Result<()> {
    let cluster = TestCluster::start(3).await?;
    ensure_stream(&cluster.jetstream().await?, &StreamSettings::production()).await?;
    let (registry, _) = registry_with_keys();
    let (leader, followers) = leader_and_followers(&cluster).await?;
    let front = log_on(&cluster, leader).await?;
    let lagging = followers[0];
    let ministry = log_on(&cluster, lagging).await?;
    let raw = cluster_stream_on(&cluster, lagging).await?;

    cluster.freeze(lagging)?;
    let written = async {
        let mut handed = Vec::with_capacity(CASES_WHILE_FROZEN);
        for _ in 0..CASES_WHILE_FROZEN {
            handed.push(open_and_hand_off(&front, &registry, "MOF").await?);
        }
        anyhow::Ok(handed)
    }
    .await;
    // Thaw whatever happened: a frozen node would outlive the test's assertions.
    cluster.thaw(lagging)?;
    let handed = written?;

    let mut behind = 0;
    for (round, hand_off) in handed.iter().rev().take(CASES_ACTED_ON).enumerate() {
        let case_id = hand_off.event.case_id;
        let filter = format!("onedoor.v1.case.{case_id}.>");
        if raw
            .direct_get_last_for_subject(filter)
            .await
            .map_or(true, |m| m.sequence < hand_off.sequence)
        {
            behind += 1;
        }
        ministry.saw(case_id, hand_off.sequence);
        let accept = write_request(case_id, "MOF", Action::Accept, OffsetDateTime::now_utc());
        let accepted = ministry
            .execute(&accept, &registry)
            .await
            .map_err(|e| anyhow::anyhow!("round {round}: a valid accept was refused: {e}"))?;
        let history = ministry.load(case_id).await?;
        assert_eq!(
            history.last().map(|e| e.sequence),
            Some(accepted.sequence),
            "round {round}: the ministry's own accept is missing from its read"
        );
    }
    println!(
        "{CASES_ACTED_ON} newest cases read through the thawed follower: it was behind on {behind}; \
         the log asked the leader {} times",
        ministry.leader_reads()
    );
    // A case that does not exist is "not found" from the leader too.
    assert!(ministry.load(CaseId::generate()).await?.is_empty());
    Ok(())
}

/// The ONEDOOR stream through a plain connection to one node.
async fn cluster_stream_on(
    cluster: &TestCluster,
    node: usize,
) -> anyhow::Result<jetstream::stream::Stream> {
    let client = async_nats::connect(cluster.url(node)?).await?;
    Ok(jetstream::new(client)
        .get_stream(onedoor_bus::STREAM_NAME)
        .await?)
}
