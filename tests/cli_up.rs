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

    // Every agency's adapter answers on its own port with its own token.
    let front = &endpoints["agencies"]["ODSC-VTE-SAYSETTHA"];
    let moic = &endpoints["agencies"]["MOIC"];
    assert_eq!(front["kind"], "front-office");
    assert!(
        endpoints["agencies"]["MAF"].is_object(),
        "merged-away agencies keep an adapter for their open tasks"
    );
    let receipt = open_case(
        front["grpc"].as_str().expect("grpc"),
        front["token"].as_str().expect("token"),
    )
    .await;
    assert_eq!(receipt.case_version, 1);
    let wrong_token = open_case_result(
        moic["grpc"].as_str().expect("grpc"),
        front["token"].as_str().expect("token"),
    )
    .await;
    assert_eq!(
        wrong_token.expect_err("another agency's token").code(),
        tonic::Code::Unauthenticated
    );

    let metrics_url = endpoints["metrics_url"].as_str().expect("metrics_url");
    let metrics = http_get(metrics_url).await;
    assert!(metrics.contains("onedoor_adapter_rpc_total"), "{metrics}");

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

async fn open_case_result(
    address: &str,
    token: &str,
) -> Result<onedoor_proto::v1::Receipt, tonic::Status> {
    use onedoor_proto::v1;
    let channel = tonic::transport::Channel::from_shared(address.to_owned())
        .expect("valid address")
        .connect()
        .await
        .expect("adapter reachable");
    let mut client = v1::agency_gateway_client::AgencyGatewayClient::new(channel);
    let mut request = tonic::Request::new(v1::OpenCaseRequest {
        service: "enterprise-registration".into(),
        citizen_ref: "R-1".into(),
        idempotency_key: "cli-up-test".into(),
        ..Default::default()
    });
    let bearer = format!("Bearer {token}").parse().expect("ascii token");
    request.metadata_mut().insert("authorization", bearer);
    client
        .open_case(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn open_case(address: &str, token: &str) -> onedoor_proto::v1::Receipt {
    open_case_result(address, token)
        .await
        .expect("open case through the adapter")
}

/// A plain HTTP/1.0 GET, enough for a loopback `/metrics`.
async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("path");
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("metrics reachable");
    stream
        .write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut body = String::new();
    stream.read_to_string(&mut body).await.expect("read");
    body
}
