//! [`Worker`]: the ministry's worker, run as `sh -c COMMAND` in its own process group so that
//! conformance can end it and everything it started (a wrapper script, an interpreter), on
//! success, failure or Ctrl-C alike. The last lines of its stderr are kept for the report.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

/// Lines of the worker's output kept for the report.
const TAIL_LINES: usize = 20;
/// Lines of it shown in a failed check.
const LAST_WORDS: usize = 3;
/// How long the worker has to stop after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// What the command's `{placeholders}` become (also given as environment variables).
pub struct Placeholders<'a> {
    pub adapter: &'a str,
    pub token: &'a str,
    pub agency: &'a str,
}

impl Placeholders<'_> {
    fn pairs(&self) -> [(&'static str, &str, &'static str); 4] {
        [
            ("{adapter}", self.adapter, "ONEDOOR_ADAPTER"),
            ("{http}", self.adapter, "ONEDOOR_HTTP"),
            ("{token}", self.token, "ONEDOOR_TOKEN"),
            ("{agency}", self.agency, "ONEDOOR_AGENCY"),
        ]
    }

    /// `template` with every placeholder replaced.
    pub fn fill(&self, template: &str) -> String {
        self.pairs()
            .iter()
            .fold(template.to_owned(), |text, (name, value, _)| {
                text.replace(name, value)
            })
    }
}

pub struct Worker {
    group: Pid,
    exited: watch::Receiver<Option<String>>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Worker {
    pub fn start(template: &str, values: &Placeholders<'_>) -> anyhow::Result<Worker> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(values.fill(template))
            .process_group(0)
            .stdin(Stdio::null())
            // What it prints for itself is not conformance's output; its errors are kept.
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (_, value, variable) in values.pairs() {
            command.env(variable, value);
        }
        let mut child = command.spawn().context("starting the worker command")?;
        let pid = child.id().context("the worker has no process id")?;
        let group = Pid::from_raw(i32::try_from(pid)?);
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(err) = child.stderr.take() {
            tokio::spawn(keep_tail(err, tail.clone()));
        }
        let (exit_tx, exited) = watch::channel(None);
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => status.to_string(),
                Err(error) => error.to_string(),
            };
            let _ = exit_tx.send(Some(status));
        });
        Ok(Worker {
            group,
            exited,
            tail,
        })
    }

    /// How the worker's command ended (`exit status: 1`), while it has not.
    pub fn exit(&self) -> Option<String> {
        self.exited.borrow().clone()
    }

    /// Resolves once the command has ended.
    pub async fn ended(&self) {
        let _ = self.exited.clone().wait_for(Option::is_some).await;
    }

    /// The last lines the worker wrote to stderr, for a report.
    pub fn last_words(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        let skip = tail.len().saturating_sub(LAST_WORDS);
        let words: Vec<&str> = tail.iter().skip(skip).map(String::as_str).collect();
        words.join(" | ")
    }

    /// SIGTERM to the whole group, SIGKILL to what is left after a grace period.
    pub async fn stop(self) {
        let _ = killpg(self.group, Signal::SIGTERM);
        let _ = tokio::time::timeout(STOP_GRACE, self.ended()).await;
        // Drop sends SIGKILL to the group: whatever the command started dies with it.
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = killpg(self.group, Signal::SIGKILL);
    }
}

async fn keep_tail(output: impl AsyncRead + Unpin, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(output).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.chars().take(300).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_and_other_braces_stay() {
        let values = Placeholders {
            adapter: "http://127.0.0.1:1",
            token: "t",
            agency: "MOIC",
        };
        assert_eq!(
            values.fill("w --adapter {adapter} --url {http} --token {token} {agency} ${HOME}"),
            "w --adapter http://127.0.0.1:1 --url http://127.0.0.1:1 --token t MOIC ${HOME}"
        );
    }
}
