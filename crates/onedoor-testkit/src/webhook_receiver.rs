//! [`ReferenceReceiver`]: the reference webhook receiver (`examples/webhook-receiver/
//! receiver.py`, Python standard library) as a child process on a free port, and the JSON line
//! it prints for each request.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::eventually::DEADLINE;

pub struct ReferenceReceiver {
    /// Where it listens: `http://127.0.0.1:<port>/`.
    pub url: String,
    lines: Lines<BufReader<ChildStdout>>,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl ReferenceReceiver {
    /// Starts the receiver accepting `secrets` (space-separated `whsec_…`), with its own
    /// store of handled ids; killed on drop.
    pub async fn start(secrets: &str) -> anyhow::Result<Self> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/webhook-receiver/receiver.py");
        Self::start_script(&script, secrets, &[]).await
    }

    /// Another receiver script that follows the same conventions (`WEBHOOK_SECRETS`, `PORT`,
    /// `DB`, a first line `listening on URL`), with `env` added: the deliberately broken
    /// receivers of the conformance tests.
    pub async fn start_script(
        script: &Path,
        secrets: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut child = Command::new("python3")
            .arg(script)
            .envs(env.iter().copied())
            .env("WEBHOOK_SECRETS", secrets)
            .env("PORT", "0")
            .env("DB", dir.path().join("handled.sqlite3"))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("the receiver has no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let first = next_line(&mut lines).await?;
        let url = first
            .strip_prefix("listening on ")
            .ok_or_else(|| anyhow::anyhow!("the receiver said {first:?}"))?
            .to_owned();
        Ok(ReferenceReceiver {
            url,
            lines,
            _child: child,
            _dir: dir,
        })
    }

    /// The next JSON line it prints (`{"accepted": id, …}`, `{"duplicate": id}`,
    /// `{"rejected": id, "why": …}`); fails after [`DEADLINE`].
    pub async fn next(&mut self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_str(&next_line(&mut self.lines).await?)?)
    }
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> anyhow::Result<String> {
    tokio::time::timeout(DEADLINE, lines.next_line())
        .await??
        .ok_or_else(|| anyhow::anyhow!("the receiver exited"))
}
