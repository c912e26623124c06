//! `onedoor up` as a user runs it: the real binary starts a real nats-server on ports it picks,
//! sets up the stream, starts every agency's adapter, publishes its addresses, and cleans up on
//! SIGTERM.

mod support;

use std::time::Duration;

use support::{Agency, onedoor, spawn_up, terminate, wait_for_endpoints};

/// A plain HTTP/1.0 GET, enough for a loopback `/metrics`.
async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("path");
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("metrics reachable");
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut body = String::new();
    stream.read_to_string(&mut body).await.expect("read");
    body
}

/// The first bytes a server sends back to a plain HTTP/1.1 request ("" when it just closes).
async fn http_get_status(host: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(host).await else {
        return String::new();
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn up_starts_nats_the_stream_and_every_adapter_and_cleans_up_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = spawn_up(dir.path(), &[]);
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
    assert!(
        async_nats::connect(&url).await.is_err(),
        "NATS refuses anonymous clients"
    );
    let client = support::nats_as(&endpoints, dir.path(), "auditor").await;
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream
        .get_stream("ONEDOOR")
        .await
        .expect("stream exists");
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.config.subjects, vec!["onedoor.v1.case.>".to_owned()]);
    assert!(info.config.duplicate_window >= Duration::from_secs(24 * 3600));

    // Every agency's adapter answers on its own port with its own token.
    assert_eq!(
        endpoints["agencies"]["ODSC-VTE-SAYSETTHA"]["kind"],
        "front-office"
    );
    assert!(
        endpoints["agencies"]["MAF"].is_object(),
        "merged-away agencies keep an adapter for their open tasks"
    );
    let mut front = Agency::connect(&endpoints, "ODSC-VTE-SAYSETTHA").await;
    assert_eq!(front.open_case("cli-up-test").await.case_version, 1);
    let mut moic_with_front_token = Agency::connect(&endpoints, "MOIC").await;
    moic_with_front_token.token = front.token.clone();
    let body = onedoor_proto::v1::GetCaseRequest {
        case_id: "x".into(),
    };
    let refused = moic_with_front_token
        .client
        .get_case(moic_with_front_token.request(body))
        .await;
    assert_eq!(
        refused.expect_err("another agency's token").code(),
        tonic::Code::Unauthenticated
    );

    // gRPC is TLS: an agency's own client certificate authenticates without a token, another
    // agency's is refused.
    let with_cert = |agency: &str| {
        let entry = &endpoints["agencies"][agency];
        let read = |key: &str| {
            std::fs::read_to_string(entry[key].as_str().expect("path")).expect("PEM file")
        };
        tonic::transport::Identity::from_pem(read("client_cert"), read("client_key"))
    };
    let ca =
        std::fs::read_to_string(endpoints["tls_ca_cert"].as_str().expect("CA path")).expect("CA");
    let front_url = endpoints["agencies"]["ODSC-VTE-SAYSETTHA"]["grpc"]
        .as_str()
        .expect("grpc")
        .to_owned();
    assert!(front_url.starts_with("https://"), "{front_url}");
    for (agency, expected) in [
        ("ODSC-VTE-SAYSETTHA", tonic::Code::NotFound),
        ("MOIC", tonic::Code::PermissionDenied),
    ] {
        let tls = tonic::transport::ClientTlsConfig::new()
            .domain_name("localhost")
            .ca_certificate(tonic::transport::Certificate::from_pem(&ca))
            .identity(with_cert(agency));
        let channel = tonic::transport::Channel::from_shared(front_url.clone())
            .expect("uri")
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("TLS handshake");
        let mut client =
            onedoor_proto::v1::agency_gateway_client::AgencyGatewayClient::new(channel);
        let unknown = onedoor_proto::v1::GetCaseRequest {
            case_id: "01JD8X3Q6V9K2M4N5P7R8S9T0V".into(),
        };
        let status = client
            .get_case(unknown)
            .await
            .expect_err("no such case, or not this agency's certificate");
        assert_eq!(
            status.code(),
            expected,
            "{agency}'s certificate: {}",
            status.message()
        );
    }

    // The tracker: gRPC and the web page over TLS, a supervisor token (owner-only file) that
    // `onedoor case` uses by default, and agencies confined to their own cases.
    let tracker = &endpoints["tracker"];
    let grpc = tracker["grpc"].as_str().expect("tracker.grpc");
    let web = tracker["web"].as_str().expect("tracker.web");
    assert!(grpc.starts_with("https://"), "{grpc}");
    assert!(web.starts_with("https://"), "{web}");
    let supervisor = tracker["supervisor_token"]
        .as_str()
        .expect("supervisor token");
    let token_file = tracker["supervisor_token_file"]
        .as_str()
        .expect("supervisor token file");
    assert_eq!(
        std::fs::read_to_string(token_file).expect("token file"),
        supervisor
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(token_file)
            .expect("token file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "owner-only: {mode:o}");
    }
    let opened = front.open_case("cli-up-tracker").await.case_id;
    let case_list = |token: Option<&str>| {
        let mut command = onedoor();
        command
            .args(["case", "list", "--json", "--data-dir"])
            .arg(dir.path());
        if let Some(token) = token {
            command.args(["--token", token]);
        }
        let out = command.output().expect("case list runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        json["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .filter_map(|c| c["case_id"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !case_list(None).contains(&opened) {
        assert!(
            std::time::Instant::now() < deadline,
            "the supervisor's `case list` shows the new case"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let front_token = endpoints["agencies"]["ODSC-VTE-SAYSETTHA"]["token"]
        .as_str()
        .expect("token");
    let moic_token = endpoints["agencies"]["MOIC"]["token"]
        .as_str()
        .expect("token");
    assert!(case_list(Some(front_token)).contains(&opened));
    assert!(
        !case_list(Some(moic_token)).contains(&opened),
        "MOIC is not part of the front office's new case"
    );
    let out = onedoor()
        .args(["case", "show", &opened, "--token", moic_token, "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("case show runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("no case {opened}")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Plain HTTP to the HTTPS web page gets no page.
    let web_address = web
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let plain = tokio::time::timeout(
        Duration::from_secs(10),
        http_get_status(&web_address, "/healthz"),
    )
    .await
    .expect("the server answers or closes in time");
    assert!(
        !plain.starts_with("HTTP/1.1 200"),
        "plain HTTP must not be served: {plain:?}"
    );

    let metrics = http_get(endpoints["metrics_url"].as_str().expect("metrics_url")).await;
    assert!(metrics.contains("onedoor_adapter_rpc_total"), "{metrics}");

    // Signing keys: private seeds owner-only, public keys in a file other commands load.
    use std::os::unix::fs::PermissionsExt as _;
    let seed = dir.path().join("keys/MOIC.seed");
    assert_eq!(
        std::fs::metadata(&seed)
            .expect("seed file")
            .permissions()
            .mode()
            & 0o077,
        0
    );
    assert!(dir.path().join("keys/public-keys.toml").exists());

    // Staff tools read through the tracker's NATS identity that `up` made, not anonymously
    // (which the secured server refuses).
    let stuck = onedoor()
        .args(["tracker", "stuck", "--json", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("tracker stuck runs");
    assert!(
        stuck.status.success(),
        "{}",
        String::from_utf8_lossy(&stuck.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&stuck.stdout).expect("tracker stuck --json prints JSON");
    assert!(report["stuck"].is_array(), "{report}");

    // A second `up` on the same data dir refuses rather than fighting over it.
    let second = onedoor()
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
    assert!(
        async_nats::connect(&url).await.is_err(),
        "nats-server stopped with up"
    );
}

#[test]
fn up_refuses_an_invalid_registry_before_starting_anything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = dir.path().join("bad.toml");
    std::fs::write(&registry, "[registry]\nname = 1\n").expect("write");
    let out = onedoor()
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
