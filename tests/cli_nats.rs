//! The `onedoor` binary reaching NATS as an operator runs it: an adapter that starts before
//! its NATS waits and says why, a wrong seed stops it at once, and the tracker, its
//! subcommands and `audit verify` work against a secured server with only their own seed.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use onedoor_natsauth::{CredentialSet, Identity};
use onedoor_testkit::{FRONT, SecuredBus, TestBus, eventually, eventually_blocking};
use support::{DEADLINE, onedoor, terminate};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A refusal ends the start at once; this is far below the 60 s start-up deadline.
const FAIL_FAST: Duration = Duration::from_secs(15);

/// A `onedoor` process whose stdout and stderr go to one log file.
struct Logged {
    child: Child,
    log: PathBuf,
}

impl Logged {
    fn spawn(args: &[&str], log: PathBuf) -> Logged {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file handle");
        let child = onedoor()
            .args(args)
            .env_remove("ONEDOOR_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("onedoor starts");
        Logged { child, log }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log so far, or an error if the process has exited.
    fn running(&mut self) -> anyhow::Result<String> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!("exited early with {status}:\n{}", self.text());
        }
        Ok(self.text())
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `127.0.0.1:<port>` free a moment ago.
fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").to_string()
}

async fn health(address: &str) -> anyhow::Result<i32> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    let mut client = HealthClient::new(channel);
    let request = HealthCheckRequest {
        service: "onedoor.v1.AgencyGateway".into(),
    };
    Ok(client.check(request).await?.into_inner().status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_started_before_its_nats_says_why_it_waits_and_serves_once_nats_is_up()
-> anyhow::Result<()> {
    let mut bus = TestBus::start().await?;
    let url = bus.nats.url();
    bus.nats.kill()?;
    let dir = tempfile::tempdir()?;
    let listen = free_address();
    let args = [
        "adapter",
        "--agency",
        FRONT,
        "--nats-url",
        &url,
        "--listen",
        &listen,
    ];
    let mut adapter = Logged::spawn(&args, dir.path().join("adapter.log"));

    let waiting = "no NATS server answers yet; waiting";
    eventually(
        "the adapter to say twice that it waits, and why",
        DEADLINE,
        || {
            let log = adapter.running();
            let url = url.clone();
            async move {
                let log = log?;
                let lines = log
                    .lines()
                    .filter(|line| line.contains(waiting) && line.contains(&url))
                    .count();
                Ok(if lines >= 2 { Ok(()) } else { Err(log) })
            }
        },
    )
    .await?;
    let log = adapter.text();
    assert!(
        log.contains("Connection refused"),
        "the error is named:\n{log}"
    );

    bus.nats.restart().await?;
    let serving = ServingStatus::Serving as i32;
    eventually("the adapter to serve once NATS is up", DEADLINE, || {
        let running = adapter.running();
        let listen = listen.clone();
        async move {
            running?;
            Ok(health(&listen)
                .await
                .ok()
                .filter(|status| *status == serving))
        }
    })
    .await?;
    assert!(
        terminate(&mut adapter.child).success(),
        "{}",
        adapter.text()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_or_tracker_with_a_seed_the_server_does_not_know_stops_at_once_saying_so()
-> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    let other = tempfile::tempdir()?;
    let strangers = CredentialSet::generate(&other.path().join("creds"), &bus.registry)?;
    let seed = |identity: &Identity| {
        let path = strangers.seed_file(identity).expect("a seed");
        path.to_str().expect("utf-8 path").to_owned()
    };
    let moic = seed(&Identity::Agency(onedoor_case::AgencyCode::parse("MOIC")?));
    let tracker = seed(&Identity::Tracker);
    let url = bus.nats.url();
    let listen = free_address();
    let data = other.path().join("data");
    let data = data.to_str().expect("utf-8 path");
    let runs: [(&str, Vec<&str>); 2] = [
        (
            "adapter",
            vec![
                "adapter",
                "--agency",
                "MOIC",
                "--listen",
                &listen,
                "--nats-seed",
                &moic,
            ],
        ),
        (
            "tracker",
            vec![
                "tracker",
                "--data-dir",
                data,
                "--listen",
                "127.0.0.1:0",
                "--web-listen",
                "127.0.0.1:0",
                "--nats-seed",
                &tracker,
            ],
        ),
    ];
    for (what, mut args) in runs {
        args.extend(["--nats-url", &url]);
        let started = Instant::now();
        let mut process = Logged::spawn(&args, other.path().join(format!("{what}.log")));
        let status = eventually_blocking(&format!("the {what} to stop"), DEADLINE, || {
            Ok(process.child.try_wait()?)
        })?;
        let took = started.elapsed();
        let log = process.text();
        assert!(!status.success(), "{what}: {log}");
        assert!(
            took < FAIL_FAST,
            "{what} stopped only after {took:?}:\n{log}"
        );
        assert!(log.contains("authorization violation"), "{what}: {log}");
        assert!(log.contains("refused this identity"), "{what}: {log}");
        assert!(
            !log.contains("waiting"),
            "{what}: a refusal is not retried:\n{log}"
        );
    }
    Ok(())
}

/// `onedoor ARGS`, to completion.
fn run(args: &[&str]) -> Output {
    onedoor()
        .args(args)
        .env_remove("ONEDOOR_LOG")
        .output()
        .expect("onedoor runs")
}

fn seed_of(bus: &SecuredBus, identity: &Identity) -> String {
    let path: &Path = bus.credentials.seed_file(identity).expect("a seed");
    path.to_str().expect("utf-8 path").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracker_its_subcommands_and_audit_verify_work_with_only_their_own_seed()
-> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    bus.case_handed_to("MOIC").await?;
    let url = bus.nats.url();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8 path");
    let tracker_seed = seed_of(&bus, &Identity::Tracker);
    let nats = [
        "--data-dir",
        data,
        "--nats-url",
        &url,
        "--nats-seed",
        &tracker_seed,
    ];

    // Nothing made the tracker's consumer: it makes its own, and projects the case.
    let mut args = vec![
        "tracker",
        "--listen",
        "127.0.0.1:0",
        "--web-listen",
        "127.0.0.1:0",
    ];
    args.extend(nats);
    let mut tracker = Logged::spawn(&args, dir.path().join("tracker.log"));
    eventually_blocking("the tracker to show the case", DEADLINE, || {
        let log = tracker.running()?;
        let stats = run(&["tracker", "stats", "--json", "--data-dir", data]);
        let text = String::from_utf8_lossy(&stats.stdout).into_owned();
        let opened = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|stats| stats["days"][0]["opened"].as_u64());
        Ok(if opened == Some(1) {
            Ok(())
        } else {
            Err(format!("{text}\n{log}"))
        })
    })?;
    assert!(
        terminate(&mut tracker.child).success(),
        "{}",
        tracker.text()
    );

    // Rebuild deletes and makes again the tracker's consumer, and replays through its own.
    let mut rebuild = vec!["tracker", "rebuild"];
    rebuild.extend(nats);
    let out = run(&rebuild);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("rebuilt: 2 messages"), "{stdout}");

    let mut stuck = vec!["tracker", "stuck", "--json"];
    stuck.extend(nats);
    let out = run(&stuck);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The auditor reads every event (unsigned here, so the audit itself reports them).
    let auditor_seed = seed_of(&bus, &Identity::Auditor);
    let out = run(&[
        "audit",
        "verify",
        "--all",
        "--data-dir",
        data,
        "--nats-url",
        &url,
        "--nats-seed",
        &auditor_seed,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("(2 messages read)"), "{stdout}{stderr}");
    assert!(!stderr.contains("authorization"), "{stderr}");
    Ok(())
}
