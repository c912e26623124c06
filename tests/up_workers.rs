//! The reference workers of `examples/` against `onedoor up`, as a ministry developer runs them
//! from `endpoints.json`: `curl` opens a case and hands it off through the JSON face; the
//! HTTP/JSON worker (Python `requests`) opens a case and hands it
//! off through the JSON face, reads the ministry's inbox as Server-Sent Events and acknowledges;
//! the Python and Node gRPC workers take tasks over TLS with the development CA; agencies
//! configured with `--webhooks` get their items POSTed to the reference webhook receiver, and an
//! item whose receiver keeps refusing it becomes stuck and is listed by `ListStuck`.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;

use onedoor_adapter::webhook::WebhookSecret;
use onedoor_proto::v1;
use onedoor_testkit::{
    DEADLINE, ReferenceReceiver, ReferenceWorker, WorkerLanguage, WorkerTarget, eventually,
};
use support::{Agency, onedoor, spawn_up, terminate, wait_for_endpoints};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// `examples/http/worker.py` against the running bus; the summary line it prints.
async fn json_worker(data_dir: &Path) -> anyhow::Result<serde_json::Value> {
    let python = root().join(".tools/venv/bin/python");
    anyhow::ensure!(python.exists(), "run `bash scripts/setup.sh`");
    let mut worker = tokio::process::Command::new(python);
    worker
        .arg(root().join("examples/http/worker.py"))
        .arg("--endpoints")
        .arg(data_dir.join("endpoints.json"))
        .args(["--front", "ODSC-VTE-SAYSETTHA", "--ministry", "MOIC"])
        .kill_on_drop(true);
    let out = tokio::time::timeout(support::DEADLINE * 2, worker.output()).await??;
    anyhow::ensure!(
        out.status.success(),
        "the JSON worker failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// One call of an adapter's JSON face with `curl`, as `docs/http-json.md` shows it: the
/// response body, which must be JSON.
async fn curl(
    endpoints: &serde_json::Value,
    agency: &str,
    method: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let entry = &endpoints["agencies"][agency];
    let base = entry["json"].as_str().unwrap_or_default();
    let token = entry["token"].as_str().unwrap_or_default();
    let mut call = tokio::process::Command::new("curl");
    call.args(["-sS", "--fail-with-body", "--max-time", "20"])
        .arg(format!("{base}/v1/{method}"))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", "Content-Type: application/json"])
        .args(["-d", &body.to_string()])
        .kill_on_drop(true);
    if let Some(ca) = endpoints["tls_ca_cert"].as_str() {
        call.args(["--cacert", ca]);
    }
    let out = call.output().await?;
    anyhow::ensure!(
        out.status.success(),
        "curl {method} as {agency}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// `curl` with the front office's token opens a case and hands it to MOIC through the JSON
/// face; MOIC's inbox receives the hand-off.
async fn curl_opens_and_hands_off(endpoints: &serde_json::Value) -> anyhow::Result<()> {
    let front = "ODSC-VTE-SAYSETTHA";
    let opened = curl(
        endpoints,
        front,
        "OpenCase",
        serde_json::json!({"service": "enterprise-registration", "citizenRef": "R-curl",
            "summary": "opened with curl", "idempotencyKey": "curl-open"}),
    )
    .await?;
    let case_id = opened["caseId"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!case_id.is_empty(), "OpenCase answered {opened}");
    let handed = curl(
        endpoints,
        front,
        "HandOff",
        serde_json::json!({"caseId": case_id, "toAgency": "MOIC",
            "instructions": "check the name", "idempotencyKey": "curl-hand"}),
    )
    .await?;
    let mut moic = Agency::connect(endpoints, "MOIC").await;
    let mut inbox = moic.inbox().await;
    let item = moic.receive(&mut inbox, &case_id).await;
    let event = item.event.unwrap_or_default();
    assert_eq!(
        event.event_id,
        handed["eventId"].as_str().unwrap_or_default()
    );
    assert_eq!(item.citizen_ref, "R-curl");
    Ok(())
}

/// A case the front office opens over gRPC and hands to `to`, whose `language` worker (over
/// TLS) accepts and completes it.
async fn grpc_worker_takes_a_task(
    endpoints: &serde_json::Value,
    language: WorkerLanguage,
    to: &str,
) -> anyhow::Result<()> {
    let mut front = Agency::connect(endpoints, "ODSC-VTE-SAYSETTHA").await;
    let case_id = front.open_case(&format!("open-{to}")).await.case_id;
    let handed = front.hand_off(&case_id, to, &format!("hand-{to}")).await;
    let entry = &endpoints["agencies"][to];
    let ca = endpoints["tls_ca_cert"].as_str().map(Path::new);
    let target = WorkerTarget {
        adapter: entry["grpc"].as_str().unwrap_or_default(),
        token: entry["token"].as_str().unwrap_or_default(),
        agency: to,
        ca,
    };
    let mut worker = ReferenceWorker::start(language, &target, &[])?;
    let line = worker.until(&case_id, "NEW_TASK").await?;
    assert_eq!(line["event"], handed.event_id.as_str(), "{line}");
    assert_eq!(
        line["writes"],
        serde_json::json!(["accepted", "completed"]),
        "{line}"
    );
    // The front office hears of it in its own inbox.
    let mut inbox = front.inbox().await;
    let item = front.receive(&mut inbox, &case_id).await;
    assert_eq!(item.event.map(|e| e.from_agency), Some(to.to_owned()));
    Ok(())
}

// Several threads: `terminate` blocks this one while the gRPC connections' tasks must still run
// to close their streams, or `up`'s graceful stop waits for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_workers_hand_off_and_ack_through_up() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut up = spawn_up(dir.path(), &[]);
    let endpoints = wait_for_endpoints(&mut up, dir.path());

    curl_opens_and_hands_off(&endpoints).await?;
    let summary = json_worker(dir.path()).await?;
    assert_eq!(
        summary["status"], "CASE_STATUS_AT_FRONT_OFFICE",
        "{summary}"
    );
    assert_eq!(summary["outcome"], "approved", "{summary}");
    assert_eq!(summary["events"], 4, "{summary}");

    grpc_worker_takes_a_task(&endpoints, WorkerLanguage::Python, "MOF").await?;
    grpc_worker_takes_a_task(&endpoints, WorkerLanguage::Node, "MOPS").await?;
    assert!(terminate(&mut up).success());
    Ok(())
}

/// The webhooks file: MOIC pushes to `good`, MOF to `refusing` (which knows another secret),
/// giving up after two attempts one second apart; both sign with `secret`.
fn webhooks_file(
    dir: &Path,
    secret: &WebhookSecret,
    good: &str,
    refusing: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let secrets = dir.join("webhook.secrets");
    std::fs::write(&secrets, secret.expose())?;
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600))?;
    let secrets = secrets.display();
    let file = dir.join("webhooks.toml");
    std::fs::write(
        &file,
        format!(
            "[MOIC]\nurl = \"{good}\"\nsecrets = \"{secrets}\"\n\n[MOF]\nurl = \"{refusing}\"\n\
             secrets = \"{secrets}\"\nmax_deliver = 2\nretry_first = 1\n"
        ),
    )?;
    Ok(file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_under_up_deliver_signed_items_and_a_refused_one_becomes_stuck()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let secret = WebhookSecret::generate();
    let mut good = ReferenceReceiver::start(&secret.expose()).await?;
    let mut refusing = ReferenceReceiver::start(&WebhookSecret::generate().expose()).await?;
    let webhooks = webhooks_file(dir.path(), &secret, &good.url, &refusing.url)?;
    let data_dir = dir.path().join("bus");
    let mut up = onedoor()
        .arg("up")
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--webhooks")
        .arg(&webhooks)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let endpoints = wait_for_endpoints(&mut up, &data_dir);
    let mut front = Agency::connect(&endpoints, "ODSC-VTE-SAYSETTHA").await;

    let to_moic = front.open_case("open-moic").await.case_id;
    let handed = front.hand_off(&to_moic, "MOIC", "hand-moic").await;
    let line = good.next().await?;
    assert_eq!(line["accepted"], handed.event_id.as_str(), "{line}");

    let to_mof = front.open_case("open-mof").await.case_id;
    let refused = front.hand_off(&to_mof, "MOF", "hand-mof").await;
    for _attempt in 1..=2 {
        let line = refusing.next().await?;
        assert_eq!(line["rejected"], refused.event_id.as_str(), "{line}");
    }
    let mof = Agency::connect(&endpoints, "MOF").await;
    let stuck = eventually("MOF's refused item to be listed as stuck", DEADLINE, || {
        let request = mof.request(v1::ListStuckRequest {});
        let mut client = mof.client.clone();
        let case_id = to_mof.clone();
        async move {
            let items = client.list_stuck(request).await?.into_inner().items;
            Ok(items.into_iter().find(|i| i.case_id == case_id))
        }
    })
    .await?;
    assert_eq!(stuck.event_id, refused.event_id);
    assert_eq!(stuck.deliveries, 2, "{stuck:?}");
    drop(mof);
    assert!(terminate(&mut up).success());
    Ok(())
}
