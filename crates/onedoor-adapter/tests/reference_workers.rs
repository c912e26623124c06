//! The gRPC reference workers of `examples/grpc-python/` (grpcio) and `examples/grpc-node/`
//! (@grpc/grpc-js), each run as a process against real adapters on a real nats-server: a
//! worker accepts a new task, hands the case on and completes its own task, the next agency's
//! worker completes that one, and every item ends acknowledged; a worker that crashes between
//! taking an item in and acknowledging it does not act on the redelivery again.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use onedoor_bus::InboxSettings;
use onedoor_testkit::registry::token_for;
use onedoor_testkit::{DEADLINE, FRONT, TestBus};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

#[derive(Clone, Copy, Debug)]
enum Language {
    Python,
    Node,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The command running `language`'s worker, with what `scripts/setup.sh` installed.
fn worker_command(language: Language) -> anyhow::Result<Command> {
    let (program, script, installed) = match language {
        Language::Python => (
            root().join(".tools/venv/bin/python"),
            "examples/grpc-python/worker.py",
            root().join(".tools/venv/bin/python"),
        ),
        Language::Node => (
            PathBuf::from("node"),
            "examples/grpc-node/worker.js",
            root().join("examples/grpc-node/node_modules/@grpc/grpc-js"),
        ),
    };
    anyhow::ensure!(
        installed.exists(),
        "{} is missing: run `bash scripts/setup.sh`",
        installed.display()
    );
    let mut command = Command::new(program);
    command.arg(root().join(script));
    Ok(command)
}

/// A worker process for one agency and the JSON lines it prints (one per inbox item).
struct Worker {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    fn start(
        language: Language,
        bus: &TestBus,
        agency: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let mut command = worker_command(language)?;
        command
            .args(["--adapter", &bus.address(agency)])
            .args(["--token", &token_for(agency), "--agency", agency])
            .args(extra)
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("the worker has no stdout"))?;
        Ok(Worker {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// The next line it prints; fails after [`DEADLINE`] or when it exits.
    async fn next(&mut self) -> anyhow::Result<Value> {
        let line = tokio::time::timeout(DEADLINE, self.lines.next_line())
            .await
            .map_err(|_| anyhow::anyhow!("the worker printed nothing within {DEADLINE:?}"))??
            .ok_or_else(|| anyhow::anyhow!("the worker exited"))?;
        Ok(serde_json::from_str(&line)?)
    }

    /// Reads lines until one about `event_id`'s case of `kind`.
    async fn until(&mut self, case_id: &str, kind: &str) -> anyhow::Result<Value> {
        loop {
            let line = self.next().await?;
            if line["case"] == case_id && line["kind"] == kind {
                return Ok(line);
            }
        }
    }
}

/// The agencies' writes on the case, in order, as `AGENCY:kind`.
async fn history(bus: &TestBus, case_id: &str) -> anyhow::Result<Vec<String>> {
    let view = bus.agency(FRONT).await?.get_case(case_id).await?;
    Ok(view
        .events
        .iter()
        .map(|e| format!("{}:{}", e.from_agency, e.kind().unwrap_or_default()))
        .collect())
}

async fn hands_on_and_the_next_worker_completes(language: Language) -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC", "MOF"]).await?;
    let mut front = bus.agency(FRONT).await?;
    let case_id = front.open_case("enterprise-registration").await?.case_id;
    let handed = front.hand_off(&case_id, "MOIC").await?;

    let mut moic = Worker::start(language, &bus, "MOIC", &["--hand-on", "MOF"])?;
    let mut mof = Worker::start(language, &bus, "MOF", &[])?;
    let first = moic.until(&case_id, "NEW_TASK").await?;
    assert_eq!(first["event"], handed.event_id.as_str(), "{first}");
    assert_eq!(first["attempt"], 1, "{first}");
    assert_eq!(
        first["writes"],
        serde_json::json!(["accepted", "handed_off", "completed"]),
        "{first}"
    );
    // The item's trace is the case's: the worker can log it beside its own request ids.
    assert!(
        first["trace"]
            .as_str()
            .is_some_and(|t| t.contains(&handed.trace_id)),
        "{first}"
    );
    let second = mof.until(&case_id, "NEW_TASK").await?;
    assert_eq!(
        second["writes"],
        serde_json::json!(["accepted", "completed"]),
        "{second}"
    );
    // MOIC handed MOF the task, so MOF's completion lands in MOIC's inbox, and is noted.
    let noted = moic.until(&case_id, "TASK_COMPLETED").await?;
    assert_eq!(noted["writes"], serde_json::json!([]), "{noted}");

    let events = history(&bus, &case_id).await?;
    let by = |agency: &str| -> Vec<&str> {
        events
            .iter()
            .filter_map(|e| e.strip_prefix(&format!("{agency}:")))
            .collect()
    };
    assert_eq!(events.len(), 7, "{events:?}");
    assert_eq!(
        by("MOIC"),
        ["accepted", "handed_off", "completed"],
        "{events:?}"
    );
    assert_eq!(by("MOF"), ["accepted", "completed"], "{events:?}");
    for agency in ["MOIC", "MOF"] {
        bus.wait_until_inbox_drained(agency).await?;
    }
    Ok(())
}

async fn a_redelivery_after_a_crash_is_not_acted_on_again(
    language: Language,
) -> anyhow::Result<()> {
    // A short ack deadline, so the crashed worker's item comes back promptly.
    let bus = TestBus::start_configured(&[FRONT, "MOIC"], |config| {
        config.inbox = InboxSettings {
            max_deliver: 5,
            backoff: vec![Duration::from_secs(1); 4],
            ..InboxSettings::default()
        };
    })
    .await?;
    let mut front = bus.agency(FRONT).await?;
    let case_id = front.open_case("enterprise-registration").await?.case_id;
    let handed = front.hand_off(&case_id, "MOIC").await?;
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("handled").display().to_string();

    let mut crashing = Worker::start(
        language,
        &bus,
        "MOIC",
        &["--state", &state, "--crash-before-ack"],
    )?;
    let taken = crashing.until(&case_id, "NEW_TASK").await?;
    assert_eq!(
        taken["writes"],
        serde_json::json!(["accepted", "completed"]),
        "{taken}"
    );
    let status = tokio::time::timeout(DEADLINE, crashing.child.wait()).await??;
    assert_eq!(status.code(), Some(3), "the worker did not crash as told");

    // The same store, a new process: the item is delivered again and only acknowledged.
    let mut restarted = Worker::start(language, &bus, "MOIC", &["--state", &state])?;
    let again = restarted.next().await?;
    assert_eq!(again["duplicate"], handed.event_id.as_str(), "{again}");
    assert!(again["attempt"].as_u64().is_some_and(|n| n >= 2), "{again}");
    bus.wait_until_inbox_drained("MOIC").await?;
    let events = history(&bus, &case_id).await?;
    assert_eq!(
        events,
        [
            format!("{FRONT}:opened"),
            format!("{FRONT}:handed_off"),
            "MOIC:accepted".to_owned(),
            "MOIC:completed".to_owned(),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn python_worker_hands_on_and_the_next_worker_completes() -> anyhow::Result<()> {
    hands_on_and_the_next_worker_completes(Language::Python).await
}

#[tokio::test]
async fn python_worker_does_not_act_on_a_redelivery_after_a_crash() -> anyhow::Result<()> {
    a_redelivery_after_a_crash_is_not_acted_on_again(Language::Python).await
}

#[tokio::test]
async fn node_worker_hands_on_and_the_next_worker_completes() -> anyhow::Result<()> {
    hands_on_and_the_next_worker_completes(Language::Node).await
}

#[tokio::test]
async fn node_worker_does_not_act_on_a_redelivery_after_a_crash() -> anyhow::Result<()> {
    a_redelivery_after_a_crash_is_not_acted_on_again(Language::Node).await
}
