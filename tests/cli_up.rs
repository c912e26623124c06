//! `onedoor up` as a user runs it: the real binary starts a real nats-server on ports it picks,
//! sets up the stream, publishes its addresses, and cleans up on SIGTERM.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const DEADLINE: Duration = Duration::from_secs(30);

fn spawn_up(data_dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .arg("up")
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("onedoor up starts")
}

/// Polls until `up` has written endpoints.json (or exited, or the deadline passed).
fn wait_for_endpoints(child: &mut Child, data_dir: &Path) -> serde_json::Value {
    let start = Instant::now();
    let path = data_dir.join("endpoints.json");
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            return serde_json::from_str(&text).expect("endpoints.json is JSON");
        }
        if let Some(status) = child.try_wait().expect("poll child") {
            panic!("onedoor up exited early with {status}");
        }
        assert!(
            start.elapsed() < DEADLINE,
            "endpoints.json did not appear within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
    kill(pid, Signal::SIGTERM).expect("send SIGTERM");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            return status;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "onedoor up did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn up_starts_nats_with_the_contract_stream_and_cleans_up_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = spawn_up(dir.path());
    let endpoints = wait_for_endpoints(&mut child, dir.path());

    let url = endpoints["nats"]["url"]
        .as_str()
        .expect("nats.url")
        .to_owned();
    assert_ne!(
        url, "nats://127.0.0.1:4222",
        "up must not assume the well-known port"
    );
    assert_eq!(endpoints["pid"].as_u64(), Some(u64::from(child.id())));

    let client = async_nats::connect(&url)
        .await
        .expect("NATS from endpoints.json answers");
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream
        .get_stream("ONEDOOR")
        .await
        .expect("stream exists");
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.config.subjects, vec!["onedoor.v1.case.>".to_owned()]);
    assert!(info.config.duplicate_window >= Duration::from_secs(24 * 3600));

    // A second `up` on the same data dir refuses rather than fighting over it.
    let second = Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .args(["up", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("second up runs");
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"));

    let status = terminate(&mut child);
    assert!(status.success(), "up exits cleanly on SIGTERM: {status}");
    assert!(
        !dir.path().join("endpoints.json").exists(),
        "endpoints.json is removed on shutdown"
    );
    let gone = async_nats::connect(&url).await;
    assert!(gone.is_err(), "nats-server stopped with up");
}

#[test]
fn up_refuses_an_invalid_registry_before_starting_anything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = dir.path().join("bad.toml");
    std::fs::write(&registry, "[registry]\nname = 1\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .args(["up", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--registry")
        .arg(&registry)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"));
    assert!(
        !dir.path().join("data/nats").exists(),
        "no nats-server was started"
    );
}
