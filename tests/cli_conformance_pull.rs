//! `onedoor conformance --agency X --worker-cmd CMD`: passes against the reference pull workers
//! (`examples/grpc-python`, `examples/grpc-node`, `examples/http --serve`), fails naming the
//! problem and its fix against deliberately broken ones (`tests/support/broken_worker.py`), and
//! leaves no process behind, on failure and on Ctrl-C alike.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use onedoor_testkit::{DEADLINE, eventually};
use tokio::process::Command;

#[path = "support/conformance_report.rs"]
mod conformance_report;
use conformance_report::{check, failed};

/// Each run holds a nats-server, two adapters and a worker on a 2-core machine: one at a time,
/// so that the ack waits it measures are not stretched by the others.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A whole run: the worker's start, seven checks with two ack waits, the bus's stop.
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> String {
    root().join(".tools/venv/bin/python").display().to_string()
}

fn grpc_flags() -> &'static str {
    "--adapter {adapter} --token {token} --agency {agency}"
}

fn python_worker() -> String {
    let script = root().join("examples/grpc-python/worker.py");
    format!("{} {} {}", python(), script.display(), grpc_flags())
}

fn node_worker() -> String {
    let script = root().join("examples/grpc-node/worker.js");
    format!("node {} {}", script.display(), grpc_flags())
}

fn json_worker() -> String {
    let script = root().join("examples/http/worker.py");
    format!(
        "{} {} --serve --ministry-url {{http}} --ministry-token {{token}} --ministry {{agency}}",
        python(),
        script.display()
    )
}

fn broken_worker(faults: &str) -> String {
    let script = root().join("tests/support/broken_worker.py");
    format!(
        "BROKEN={faults} {} {} {}",
        python(),
        script.display(),
        grpc_flags()
    )
}

/// `onedoor conformance` for MOIC with `worker`, every process it starts marked with `mark`
/// in its environment (see [`marked`]).
fn command(worker: &str, mark: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onedoor"));
    command
        .args(["conformance", "--agency", "MOIC", "--worker-cmd", worker])
        .args(extra)
        .env("ONEDOOR_TEST_MARK", mark)
        .kill_on_drop(true);
    command
}

/// Runs conformance to its end: its success and its JSON report.
async fn conformance(worker: &str, mark: &str) -> anyhow::Result<(bool, serde_json::Value)> {
    let output =
        tokio::time::timeout(RUN_LIMIT, command(worker, mark, &["--json"]).output()).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout).map_err(|e| {
        anyhow::anyhow!("{e}: {stdout} {}", String::from_utf8_lossy(&output.stderr))
    })?;
    Ok((output.status.success(), report))
}

/// The processes whose environment carries `ONEDOOR_TEST_MARK=mark`: everything a run
/// started (nats-server, the worker's shell and interpreter) inherits it.
fn marked(mark: &str) -> Vec<i32> {
    let needle = format!("ONEDOOR_TEST_MARK={mark}\0");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(Path::new("/proc").join(pid.to_string()).join("environ"))
                .is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .collect()
}

async fn nothing_left(mark: &str) -> anyhow::Result<()> {
    eventually("every process of the run to be gone", DEADLINE, || async {
        let left = marked(mark);
        Ok(left.is_empty().then_some(()))
    })
    .await
}

fn mark() -> String {
    format!("conformance-{}", ulid::Ulid::generate())
}

fn says(report: &serde_json::Value, name: &str, field: &str, words: &str) -> bool {
    check(report, name)[field]
        .as_str()
        .is_some_and(|text| text.contains(words))
}

async fn passes_every_check(worker: &str) -> anyhow::Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mark = mark();
    let (passed, report) = conformance(worker, &mark).await?;
    assert!(passed, "{report:#}");
    assert!(failed(&report).is_empty(), "{report:#}");
    assert_eq!(
        report["checks"].as_array().map(Vec::len),
        Some(8),
        "{report:#}"
    );
    // The faults really happened: a lost ack brought the item back, a delivery was doubled.
    let redelivered = "redelivery after a lost ack: acked, not acted on again";
    assert!(
        says(&report, redelivered, "saw", "attempts 1, 2"),
        "{report:#}"
    );
    let twice = "same event id twice: acked twice, acted on once";
    assert!(says(&report, twice, "saw", "delivered 2x"), "{report:#}");
    assert!(
        says(&report, "new task acknowledged", "saw", "Accept, Complete"),
        "{report:#}"
    );
    nothing_left(&mark).await
}

#[tokio::test]
async fn the_python_grpc_worker_passes_every_check() -> anyhow::Result<()> {
    passes_every_check(&python_worker()).await
}

#[tokio::test]
async fn the_node_grpc_worker_passes_every_check() -> anyhow::Result<()> {
    passes_every_check(&node_worker()).await
}

#[tokio::test]
async fn the_json_worker_passes_every_check() -> anyhow::Result<()> {
    passes_every_check(&json_worker()).await
}

#[tokio::test]
async fn a_worker_that_acts_again_on_a_repeated_item_fails_saying_so() -> anyhow::Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mark = mark();
    let (passed, report) = conformance(&broken_worker("act-twice"), &mark).await?;
    assert!(!passed);
    let repeated = [
        "redelivery after a lost ack: acked, not acted on again",
        "same event id twice: acked twice, acted on once",
        "ack later than the ack wait: redelivery tolerated",
    ];
    assert_eq!(failed(&report), repeated, "{report:#}");
    for name in repeated {
        assert!(
            says(&report, name, "saw", "repeated: Accept 2x"),
            "{report:#}"
        );
        assert!(
            says(&report, name, "fix", "work was done again"),
            "{report:#}"
        );
    }
    nothing_left(&mark).await
}

#[tokio::test]
async fn a_worker_that_never_acks_a_task_it_cannot_act_on_is_named() -> anyhow::Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mark = mark();
    let (passed, report) = conformance(&broken_worker("stop-on-refusal"), &mark).await?;
    assert!(!passed);
    // What follows may fail too: the worker backs off longer after each refusal.
    let withdrawn = "withdrawal before its task: both acked";
    assert!(failed(&report).iter().any(|f| f == withdrawn), "{report:#}");
    assert!(says(&report, withdrawn, "saw", "acked 0x"), "{report:#}");
    assert!(
        says(&report, withdrawn, "fix", "FAILED_PRECONDITION"),
        "{report:#}"
    );
    nothing_left(&mark).await
}

#[tokio::test]
async fn a_worker_that_crashes_on_long_fields_is_named() -> anyhow::Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mark = mark();
    let (passed, report) = conformance(&broken_worker("crash-on-large"), &mark).await?;
    assert!(!passed);
    let large = "fields at the contract's limits handled";
    assert_eq!(
        failed(&report),
        [large, "worker still running"],
        "{report:#}"
    );
    assert!(
        says(&report, large, "saw", "too long for my column"),
        "{report:#}"
    );
    assert!(says(&report, large, "fix", "4096 bytes"), "{report:#}");
    nothing_left(&mark).await
}

#[tokio::test]
async fn a_worker_with_a_wrong_token_fails_at_its_inbox() -> anyhow::Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mark = mark();
    let worker = python_worker().replace("{token}", "not-the-token");
    let (passed, report) = conformance(&worker, &mark).await?;
    assert!(!passed);
    assert_eq!(failed(&report), ["worker opens its inbox"], "{report:#}");
    assert!(
        says(&report, "worker opens its inbox", "saw", "exited"),
        "{report:#}"
    );
    nothing_left(&mark).await
}

#[tokio::test]
async fn bad_arguments_are_refused_before_anything_starts() -> anyhow::Result<()> {
    let mark = mark();
    let unknown = Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .args(["conformance", "--agency", "NOPE", "--worker-cmd", "true"])
        .env("ONEDOOR_TEST_MARK", &mark)
        .output()
        .await?;
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("not in the registry"), "{stderr}");
    let both = Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .args(["conformance", "--agency", "MOIC", "--worker-cmd", "true"])
        .args(["--target", "http://127.0.0.1:9/"])
        .output()
        .await?;
    assert_eq!(both.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&both.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    nothing_left(&mark).await
}

#[tokio::test]
async fn ctrl_c_stops_the_worker_and_the_bus() -> anyhow::Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let mark = mark();
    let mut run = command(&python_worker(), &mark, &[]).spawn()?;
    let pid = Pid::from_raw(i32::try_from(run.id().unwrap_or_default())?);
    // Under way: nats-server and the worker's shell and interpreter run beside conformance.
    eventually("the worker to run", DEADLINE, || async {
        Ok((marked(&mark).len() >= 4).then_some(()))
    })
    .await?;
    kill(pid, Signal::SIGINT)?;
    let status = tokio::time::timeout(DEADLINE, run.wait()).await??;
    assert_eq!(status.code(), Some(130));
    nothing_left(&mark).await
}
