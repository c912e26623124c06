//! [`ReferenceWorker`]: a gRPC reference worker of `examples/` (`grpc-python/worker.py` with
//! grpcio, `grpc-node/worker.js` with @grpc/grpc-js, as `scripts/setup.sh` installs them) as a
//! child process, and the JSON line it prints for each inbox item.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::eventually::DEADLINE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerLanguage {
    Python,
    Node,
}

/// Where the worker connects, as whom: `--adapter`, `--token`, `--agency`, and the CA when the
/// adapter serves TLS (checked for the name `localhost`, as `onedoor up`'s certificate has).
pub struct WorkerTarget<'a> {
    pub adapter: &'a str,
    pub token: &'a str,
    pub agency: &'a str,
    pub ca: Option<&'a Path>,
}

pub struct ReferenceWorker {
    pub child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The command running `language`'s worker; fails when setup.sh has not installed it.
fn command(language: WorkerLanguage) -> anyhow::Result<Command> {
    let (program, script, installed) = match language {
        WorkerLanguage::Python => (
            root().join(".tools/venv/bin/python"),
            "examples/grpc-python/worker.py",
            root().join(".tools/venv/bin/python"),
        ),
        WorkerLanguage::Node => (
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

impl ReferenceWorker {
    /// Starts `language`'s worker against `target` with `extra` flags (`--hand-on MOF`,
    /// `--state FILE`, ...); killed on drop.
    pub fn start(
        language: WorkerLanguage,
        target: &WorkerTarget<'_>,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let mut command = command(language)?;
        command
            .args(["--adapter", target.adapter, "--token", target.token])
            .args(["--agency", target.agency]);
        if let Some(ca) = target.ca {
            command
                .arg("--ca")
                .arg(ca)
                .args(["--tls-server-name", "localhost"]);
        }
        command
            .args(extra)
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("the worker has no stdout"))?;
        Ok(ReferenceWorker {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// The next JSON line it prints (`{"event": id, "kind": …, "writes": […]}`,
    /// `{"duplicate": id}`); fails after [`DEADLINE`] or when it exits.
    pub async fn next(&mut self) -> anyhow::Result<serde_json::Value> {
        let line = tokio::time::timeout(DEADLINE, self.lines.next_line())
            .await
            .map_err(|_| anyhow::anyhow!("the worker printed nothing within {DEADLINE:?}"))??
            .ok_or_else(|| anyhow::anyhow!("the worker exited"))?;
        Ok(serde_json::from_str(&line)?)
    }

    /// Reads lines until the one about an item of `kind` (`NEW_TASK`, ...) on `case_id`.
    pub async fn until(&mut self, case_id: &str, kind: &str) -> anyhow::Result<serde_json::Value> {
        loop {
            let line = self.next().await?;
            if line["case"] == case_id && line["kind"] == kind {
                return Ok(line);
            }
        }
    }
}
