//! Secrets stay out of logs: a full run of `onedoor up --demo` at debug level, plus the CLI
//! commands staff and operators run, never print a token (agencies' or the tracker's
//! supervisor's), a signing seed, an nkey seed or a private key.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{onedoor, spawn_up_logged, terminate, wait_for_endpoints};

/// Every secret the run created: development tokens, signing seeds, TLS private keys.
fn secrets(data_dir: &Path, endpoints: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    for agency in endpoints["agencies"]
        .as_object()
        .expect("agencies")
        .values()
    {
        found.push(agency["token"].as_str().expect("token").to_owned());
    }
    found.push(
        endpoints["tracker"]["supervisor_token"]
            .as_str()
            .expect("the tracker's supervisor token")
            .to_owned(),
    );
    for dir in ["keys", "tls/clients", "nats-credentials"] {
        for entry in std::fs::read_dir(data_dir.join(dir)).expect("secrets dir") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if name.ends_with(".seed") || name.ends_with(".nk") {
                found.push(
                    std::fs::read_to_string(&path)
                        .expect("seed")
                        .trim()
                        .to_owned(),
                );
            }
            if name.ends_with("-key.pem") {
                // The key's base64 body, line by line: a log would not keep the PEM framing.
                let pem = std::fs::read_to_string(&path).expect("key");
                found.extend(
                    pem.lines()
                        .filter(|l| !l.starts_with("-----") && l.len() > 20)
                        .map(str::to_owned),
                );
            }
        }
    }
    assert!(
        found.len() > 50,
        "the run made secrets to look for: {}",
        found.len()
    );
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_appears_in_the_logs_of_a_full_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("up.log");
    let data = dir.path().join("data");
    let mut child = spawn_up_logged(&data, &log);
    let endpoints = wait_for_endpoints(&mut child, &data);

    // The demo runs inside `up`; wait for its last line, then exercise the read commands too.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("resolved: approved")
    {
        assert!(Instant::now() < deadline, "the demo did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut outputs = String::new();
    for args in [
        &["demo"][..],
        &["audit", "verify", "--all"],
        &["case", "list"],
    ] {
        let out = onedoor()
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .env("ONEDOOR_LOG", "debug")
            .output()
            .expect("runs");
        outputs.push_str(&String::from_utf8_lossy(&out.stdout));
        outputs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let secrets = secrets(&data, &endpoints);
    assert!(terminate(&mut child).success());

    let logs = std::fs::read_to_string(&log).expect("log") + &outputs;
    assert!(
        logs.len() > 1000,
        "the run logged something to search: {} bytes",
        logs.len()
    );
    let leaked: Vec<&String> = secrets
        .iter()
        .filter(|secret| logs.contains(secret.as_str()))
        .collect();
    assert!(
        leaked.is_empty(),
        "{} secret(s) found in the logs",
        leaked.len()
    );
}
