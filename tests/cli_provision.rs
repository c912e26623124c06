//! `onedoor provision` as an operator runs it: the real binary, the operator's own nkey seed,
//! a secured nats-server (one node, or the three-node cluster from `deploy/nats/` with TLS),
//! against which it creates, checks and repairs the stream, the consumers and the bucket.

use std::path::PathBuf;

use async_nats::jetstream;
use onedoor_natsauth::Identity;
use onedoor_testkit::registry::shipped_registry;
use onedoor_testkit::{DEADLINE, DeployCluster, FRONT, SecuredBus, eventually};
use tokio::process::Command;

/// Where `onedoor provision` connects, as which seed, trusting which CA.
struct Target {
    urls: Vec<String>,
    seed: PathBuf,
    ca: Option<PathBuf>,
}

/// One finished `onedoor provision`.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Target {
    fn secured(bus: &SecuredBus) -> Target {
        Target {
            urls: vec![bus.nats.url()],
            seed: operator_seed(&bus.credentials),
            ca: None,
        }
    }

    fn cluster(cluster: &DeployCluster) -> Target {
        Target {
            urls: cluster.urls(),
            seed: operator_seed(&cluster.credentials),
            ca: Some(cluster.ca_pem().to_owned()),
        }
    }

    /// `onedoor provision` with `extra` flags, bounded by [`DEADLINE`].
    async fn provision(&self, extra: &[&str]) -> anyhow::Result<Run> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_onedoor"));
        command
            .arg("provision")
            .arg("--nats-url")
            .arg(self.urls.join(","))
            .arg("--nats-seed")
            .arg(&self.seed)
            .args(["--nats-connect-timeout", "10"])
            .args(extra)
            .kill_on_drop(true);
        if let Some(ca) = &self.ca {
            command.arg("--nats-ca").arg(ca);
        }
        let output = tokio::time::timeout(DEADLINE, command.output()).await??;
        Ok(Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

fn operator_seed(credentials: &onedoor_natsauth::CredentialSet) -> PathBuf {
    credentials
        .seed_file(&Identity::Operator)
        .expect("the operator has a seed file")
        .to_owned()
}

/// The stream, one inbox per agency, the tracker's consumer, the bucket.
fn object_count() -> usize {
    shipped_registry().agencies.len() + 3
}

#[tokio::test]
async fn provisioning_twice_changes_nothing_the_second_time() -> anyhow::Result<()> {
    let bus = SecuredBus::start().await?;
    let target = Target::secured(&bus);

    let first = target.provision(&[]).await?;
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_eq!(first.lines().len(), object_count(), "{first:?}");
    assert!(
        first.lines().iter().all(|l| l.ends_with(": created")),
        "{first:?}"
    );
    for object in [
        "stream ONEDOOR",
        "consumer inbox-MOIC",
        "consumer tracker",
        "bucket ONEDOOR_STUCK",
    ] {
        assert!(
            first.stdout.contains(&format!("{object}: created")),
            "{first:?}"
        );
    }

    let second = target.provision(&[]).await?;
    assert_eq!(second.code, Some(0), "{second:?}");
    assert_eq!(second.lines().len(), object_count(), "{second:?}");
    assert!(
        second.lines().iter().all(|l| l.ends_with(": unchanged")),
        "{second:?}"
    );

    let check = target.provision(&["--check"]).await?;
    assert_eq!(check.code, Some(0), "{check:?}");
    assert!(
        check.lines().iter().all(|l| l.ends_with(": in sync")),
        "{check:?}"
    );
    Ok(())
}

#[tokio::test]
async fn check_names_what_was_changed_by_hand_and_provision_puts_it_back() -> anyhow::Result<()> {
    let bus = SecuredBus::start().await?;
    let target = Target::secured(&bus);
    let done = target.provision(&[]).await?;
    assert_eq!(done.code, Some(0), "{done:?}");

    // By hand, with the operator's rights: a smaller in-flight bound on MOIC's inbox, and
    // MOF's inbox deleted.
    let operator = bus.operator_js().await?;
    let stream = operator.get_stream(onedoor_bus::STREAM_NAME).await?;
    let mut moic = stream.consumer_info("inbox-MOIC").await?.config;
    let wanted = moic.max_ack_pending;
    moic.max_ack_pending = 3;
    stream.update_consumer(moic).await?;
    stream.delete_consumer("inbox-MOF").await?;

    let check = target.provision(&["--check"]).await?;
    assert_eq!(check.code, Some(1), "{check:?}");
    let moic_line = format!("consumer inbox-MOIC: differs (max_ack_pending: 3 → {wanted})");
    assert!(check.lines().contains(&moic_line.as_str()), "{check:?}");
    assert!(
        check.lines().contains(&"consumer inbox-MOF: missing"),
        "{check:?}"
    );
    assert!(check.stderr.contains("drift: 2 of"), "{check:?}");
    // --check changed nothing.
    assert_eq!(
        stream
            .consumer_info("inbox-MOIC")
            .await?
            .config
            .max_ack_pending,
        3
    );

    let repaired = target.provision(&[]).await?;
    assert_eq!(repaired.code, Some(0), "{repaired:?}");
    let updated = format!("consumer inbox-MOIC: updated (max_ack_pending: 3 → {wanted})");
    assert!(repaired.lines().contains(&updated.as_str()), "{repaired:?}");
    assert!(
        repaired.lines().contains(&"consumer inbox-MOF: created"),
        "{repaired:?}"
    );
    let unchanged = repaired
        .lines()
        .iter()
        .filter(|l| l.ends_with(": unchanged"))
        .count();
    assert_eq!(unchanged, object_count() - 2, "{repaired:?}");

    let check = target.provision(&["--check"]).await?;
    assert_eq!(check.code, Some(0), "{check:?}");
    Ok(())
}

#[tokio::test]
async fn a_change_jetstream_cannot_make_in_place_is_refused_naming_the_field() -> anyhow::Result<()>
{
    let bus = SecuredBus::start().await?;
    // Made by hand in memory: a restart would lose every event.
    let mut in_memory = onedoor_bus::StreamSettings::development().stream_config();
    in_memory.storage = jetstream::stream::StorageType::Memory;
    let operator = bus.operator_js().await?;
    operator.create_stream(in_memory).await?;
    let target = Target::secured(&bus);

    let refused = target.provision(&[]).await?;
    assert_eq!(refused.code, Some(2), "{refused:?}");
    for words in [
        "cannot change in place",
        "stream ONEDOOR storage: memory → file",
    ] {
        assert!(
            refused.stderr.contains(words),
            "{words:?} missing: {refused:?}"
        );
    }
    // Refused before anything was made: the inboxes are still missing.
    let check = target.provision(&["--check"]).await?;
    assert_eq!(check.code, Some(1), "{check:?}");
    assert!(
        check
            .lines()
            .contains(&"stream ONEDOOR: differs (storage: memory → file [cannot change in place])"),
        "{check:?}"
    );
    assert!(
        check.lines().contains(&"consumer inbox-MOIC: missing"),
        "{check:?}"
    );
    Ok(())
}

#[tokio::test]
async fn errors_exit_2_apart_from_drift() -> anyhow::Result<()> {
    let bus = SecuredBus::start().await?;
    // Not the operator's seed: the server refuses the connection.
    let wrong = Target {
        seed: bus
            .credentials
            .seed_file(&Identity::Auditor)
            .expect("auditor seed")
            .to_owned(),
        ..Target::secured(&bus)
    };
    let refused = wrong.provision(&["--check"]).await?;
    assert_eq!(refused.code, Some(2), "{refused:?}");
    assert!(refused.stderr.contains("error:"), "{refused:?}");
    Ok(())
}

/// Publishes one message as the front office, so the stream holds data.
async fn write_one_event(cluster: &DeployCluster) -> anyhow::Result<()> {
    let front = jetstream::new(
        cluster
            .connect(&Identity::Agency(onedoor_testkit::registry::code(FRONT)))
            .await?,
    );
    let subject = format!("onedoor.v1.case.01JDQ3Z6Y8K9M2N4P5R7S9T1V3.{FRONT}.MOIC");
    front.publish(subject, "event".into()).await?.await?;
    Ok(())
}

async fn replicas(cluster: &DeployCluster) -> anyhow::Result<usize> {
    let operator = jetstream::new(cluster.connect(&Identity::Operator).await?);
    let info = operator.get_stream(onedoor_bus::STREAM_NAME).await?;
    Ok(info.cached_info().config.num_replicas)
}

#[tokio::test]
async fn fewer_replicas_of_a_stream_with_events_need_force_on_the_cluster() -> anyhow::Result<()> {
    let cluster = DeployCluster::start(&shipped_registry()).await?;
    let target = Target::cluster(&cluster);

    let created = target.provision(&["--replicas", "3"]).await?;
    assert_eq!(created.code, Some(0), "{created:?}");
    assert_eq!(replicas(&cluster).await?, 3);
    write_one_event(&cluster).await?;

    let drift = target.provision(&["--replicas", "1", "--check"]).await?;
    assert_eq!(drift.code, Some(1), "{drift:?}");
    assert!(
        drift
            .lines()
            .contains(&"stream ONEDOOR: differs (replicas: 3 → 1 [needs --force])"),
        "{drift:?}"
    );

    let refused = target.provision(&["--replicas", "1"]).await?;
    assert_eq!(refused.code, Some(2), "{refused:?}");
    for why in ["stream ONEDOOR replicas: 3 → 1", "fewer copies", "--force"] {
        assert!(refused.stderr.contains(why), "{why:?} missing: {refused:?}");
    }
    assert_eq!(
        replicas(&cluster).await?,
        3,
        "a refused run changed the stream"
    );

    let forced = target.provision(&["--replicas", "1", "--force"]).await?;
    assert_eq!(forced.code, Some(0), "{forced:?}");
    assert!(
        forced
            .lines()
            .contains(&"stream ONEDOOR: updated (replicas: 3 → 1)"),
        "{forced:?}"
    );
    // The server reports the new count once the leader has applied it.
    eventually("the stream to report one replica", DEADLINE, || async {
        let now = replicas(&cluster).await?;
        Ok((now == 1).then_some(()).ok_or(format!("{now} replicas")))
    })
    .await?;
    let settled = target.provision(&["--replicas", "1", "--check"]).await?;
    assert_eq!(settled.code, Some(0), "{settled:?}");

    // Growing back needs no force: more copies lose nothing.
    let grown = target.provision(&["--replicas", "3"]).await?;
    assert_eq!(grown.code, Some(0), "{grown:?}");
    for line in [
        "stream ONEDOOR: updated (replicas: 1 → 3)",
        "bucket ONEDOOR_STUCK: updated (replicas: 1 → 3)",
    ] {
        assert!(grown.lines().contains(&line), "{line:?} missing: {grown:?}");
    }
    let operator = jetstream::new(cluster.connect(&Identity::Operator).await?);
    let stream = operator.get_stream(onedoor_bus::STREAM_NAME).await?;
    eventually(
        "inbox-MOIC to be replicated on three nodes",
        DEADLINE,
        || async {
            let info = stream.consumer_info("inbox-MOIC").await?;
            let copies = info.cluster.map_or(0, |c| c.replicas.len() + 1);
            Ok((copies == 3)
                .then_some(())
                .ok_or(format!("{copies} copies")))
        },
    )
    .await?;
    Ok(())
}

/// `onedoor adapter` for `agency` with only its own seed, on a free loopback port; returns
/// the process and the address its ready line names.
async fn start_adapter(
    bus: &SecuredBus,
    agency: &str,
) -> anyhow::Result<(tokio::process::Child, String)> {
    use tokio::io::AsyncBufReadExt as _;
    let identity = Identity::Agency(onedoor_testkit::registry::code(agency));
    let seed = bus.credentials.seed_file(&identity).expect("agency seed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .args(["adapter", "--agency", agency, "--listen", "127.0.0.1:0"])
        .arg("--nats-url")
        .arg(bus.nats.url())
        .arg("--nats-seed")
        .arg(seed)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let address = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await? {
            if line.contains("adapter serving")
                && let Some(address) = line.split("address=").nth(1)
            {
                return Ok(address
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned());
            }
        }
        anyhow::bail!("the adapter exited before serving")
    })
    .await??;
    // Keep draining its logs so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, address))
}

#[tokio::test]
async fn a_stand_alone_adapter_serves_after_provision_on_a_fresh_server() -> anyhow::Result<()> {
    let bus = SecuredBus::start().await?;
    let done = Target::secured(&bus).provision(&[]).await?;
    assert_eq!(done.code, Some(0), "{done:?}");

    let (mut adapter, address) = start_adapter(&bus, "MOIC").await?;
    let serving = eventually("the adapter to report SERVING", DEADLINE, || async {
        let output = Command::new(env!("CARGO_BIN_EXE_onedoor"))
            .args([
                "health",
                "--timeout",
                "3",
                "--service",
                "onedoor.v1.AgencyGateway",
            ])
            .arg("--address")
            .arg(format!("http://{address}"))
            .output()
            .await?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        Ok(if output.status.success() {
            Ok(text)
        } else {
            Err(text)
        })
    })
    .await?;
    assert_eq!(serving.trim(), "SERVING");
    assert!(adapter.try_wait()?.is_none(), "the adapter exited");
    Ok(())
}
