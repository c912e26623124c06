//! The registry feed on a real nats-server: a process following the bucket moves to a later
//! registry an operator key of its own registry signed, answers what it did, and refuses
//! (counting, logging, running on) whatever else is published there.

use std::sync::Arc;

use futures::StreamExt as _;
use onedoor_bus::Signer;
use onedoor_bus::registry_feed::{
    ACK_SUBJECT_PREFIX, Ack, Follower, LiveRegistry, Publication, follow, publish,
};
use onedoor_testkit::registry::{key_file, shipped_text, with_key_file};
use onedoor_testkit::{DEADLINE, TestNats, eventually};

struct Setup {
    _nats: TestNats,
    js: async_nats::jetstream::Context,
    operator: Signer,
    keys: String,
    live: LiveRegistry,
    follower: Follower,
    acks: async_nats::Subscriber,
}

/// A process on the 2021 registry (with an operator key in its key file), following the feed.
async fn on_2021() -> anyhow::Result<Setup> {
    let nats = TestNats::start().await?;
    let js = nats.jetstream().await?;
    let operator = Signer::generate("OPERATOR-TEST-01");
    let mof = Signer::generate("MOF-TEST-01");
    let keys = key_file(&[("MOF", &mof)], Some(&operator));
    let live = LiveRegistry::new(Arc::new(with_key_file(
        &shipped_text("lao-2021.toml"),
        &keys,
    )));
    let acks = js
        .client()
        .subscribe(format!("{ACK_SUBJECT_PREFIX}.>"))
        .await?;
    let follower = follow(js.clone(), live.clone(), "MOF");
    Ok(Setup {
        _nats: nats,
        js,
        operator,
        keys,
        live,
        follower,
        acks,
    })
}

async fn next_ack(acks: &mut async_nats::Subscriber) -> anyhow::Result<(String, Ack)> {
    let message = tokio::time::timeout(DEADLINE, acks.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("ack subscription ended"))?;
    Ok((
        message.subject.to_string(),
        serde_json::from_slice(&message.payload)?,
    ))
}

fn version(live: &LiveRegistry) -> String {
    live.current().version.to_string()
}

#[tokio::test]
async fn a_later_registry_the_operator_signed_replaces_the_running_one() -> anyhow::Result<()> {
    let mut setup = on_2021().await?;
    let held = setup.live.current();
    let publication =
        Publication::signed(&shipped_text("lao-2025.toml"), &setup.keys, &setup.operator);
    let revision = publish(&setup.js, &publication).await?;

    let (subject, ack) = next_ack(&mut setup.acks).await?;
    assert_eq!(subject, "onedoor.v1.registry.ack.MOF");
    assert_eq!(ack.revision, revision);
    assert_eq!(ack.outcome, "moved");
    assert_eq!(ack.running, "2025-03");
    assert_eq!(version(&setup.live), "2025-03");
    assert_eq!(setup.live.generation(), 1);
    assert_eq!(setup.follower.counts.moved(), 1);
    // What a check took before the swap stays whole.
    assert_eq!(held.version.to_string(), "2021-10");
    // The merged ministry's successor is known now: MPI's work is MOF's.
    let mpi = onedoor_testkit::registry::code("MPI");
    assert_eq!(
        setup
            .live
            .current()
            .successor_of(&mpi)
            .map(|c| c.to_string()),
        Some("MOF".to_owned())
    );

    // A second process started later on 2021 walks the kept history to the same place.
    let late = LiveRegistry::new(held);
    let _late_follower = follow(setup.js.clone(), late.clone(), "MOIC");
    eventually("the late process moves to 2025-03", DEADLINE, || {
        let now = version(&late);
        async move { Ok((now == "2025-03").then_some(()).ok_or(now)) }
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn unsigned_foreign_tampered_and_older_registries_are_refused() -> anyhow::Result<()> {
    let mut setup = on_2021().await?;
    let new_text = shipped_text("lao-2025.toml");
    let agency = Signer::generate("MOF-TEST-01");

    let mut unsigned = Publication::signed(&new_text, &setup.keys, &setup.operator);
    unsigned.signature.clear();
    let foreign = Publication::signed(&new_text, &setup.keys, &agency);
    let mut tampered = Publication::signed(&new_text, &setup.keys, &setup.operator);
    tampered.registry_toml = tampered
        .registry_toml
        .replace("13 ministries", "14 ministries");
    let older = Publication::signed(&shipped_text("lao-2021.toml"), "", &setup.operator);
    let invalid = Publication::signed("[registry]\nname = 1\n", "", &setup.operator);
    let cases = [
        (unsigned.encode(), "the publication is not signed"),
        (
            foreign.encode(),
            "is not an operator key of the registry running here",
        ),
        (tampered.encode(), "the signature does not match"),
        (older.encode(), "does not follow the old one"),
        (invalid.encode(), "the published registry is invalid"),
        (b"not json".to_vec(), "not a registry publication"),
    ];
    let store = onedoor_bus::registry_feed::ensure_registry_bucket(&setup.js).await?;
    for (count, (value, why)) in cases.into_iter().enumerate() {
        let revision = store.put("current", value.into()).await?;
        let (_, ack) = next_ack(&mut setup.acks).await?;
        assert_eq!(ack.revision, revision);
        assert!(ack.outcome.starts_with("refused: "), "{}", ack.outcome);
        assert!(ack.outcome.contains(why), "{why}: {}", ack.outcome);
        assert_eq!(ack.running, "2021-10");
        assert_eq!(setup.follower.counts.refused(), count as u64 + 1);
        assert_eq!(version(&setup.live), "2021-10");
    }
    assert_eq!(setup.live.generation(), 0);

    // Still following: the real one is taken.
    let good = Publication::signed(&new_text, &setup.keys, &setup.operator);
    publish(&setup.js, &good).await?;
    let (_, ack) = next_ack(&mut setup.acks).await?;
    assert_eq!(ack.outcome, "moved");
    assert_eq!(version(&setup.live), "2025-03");
    Ok(())
}
