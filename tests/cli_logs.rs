//! What `onedoor up` and the CLI print at the default log level: an operator sees each server's
//! ready line, warnings and errors, then one summary block that stays the last thing on screen;
//! a command that prints a result prints nothing else on stdout.

mod support;

use std::path::Path;
use std::process::{Child, Output, Stdio};

use onedoor_testkit::eventually_blocking;
use support::{DEADLINE, onedoor, terminate};

/// The summary's first and last lines.
const SUMMARY_FIRST: &str = "onedoor is up";
const SUMMARY_LAST: &str = "Ctrl-C stops it.";

/// `onedoor up` at the default level (whatever the test's environment says), stdout and
/// stderr both written to `log` in the order they were printed.
fn spawn_up_default_level(data_dir: &Path, log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file handle");
    onedoor()
        .arg("up")
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("ONEDOOR_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("onedoor up starts")
}

/// Polls the log until the summary's last line is in it.
fn wait_for_summary(child: &mut Child, log: &Path) -> String {
    eventually_blocking("the summary of onedoor up", DEADLINE * 2, || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(SUMMARY_LAST) {
            return Ok(Some(text));
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("onedoor up exited early with {status}:\n{text}");
        }
        Ok(None)
    })
    .unwrap_or_else(|error| panic!("{error:#}"))
}

#[test]
fn up_prints_under_forty_lines_then_its_summary_last_and_case_list_prints_only_its_result() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("up.log");
    let data_dir = dir.path().join("bus");
    let mut child = spawn_up_default_level(&data_dir, &log);
    let text = wait_for_summary(&mut child, &log);

    let lines: Vec<&str> = text.lines().collect();
    let first = lines
        .iter()
        .position(|line| line.starts_with(SUMMARY_FIRST))
        .expect("the summary starts with its first line");
    eprintln!(
        "onedoor up: {first} lines before the summary, {} in it",
        lines.len() - first
    );
    assert!(
        first < 40,
        "{first} lines before the summary at the default level:\n{text}"
    );
    assert!(
        !text.contains("async_nats"),
        "NATS connection chatter belongs at DEBUG:\n{text}"
    );
    let summary = lines[first..].join("\n");
    for expected in ["tracker", "web page", "endpoints.json", "CA", "supervisor"] {
        assert!(
            summary.contains(expected),
            "summary lacks {expected}:\n{summary}"
        );
    }

    // A read against the running bus prints its result alone: stdout parses as JSON, no log
    // line anywhere; and `up` prints nothing more for it.
    let out = onedoor()
        .args(["case", "list", "--json", "--data-dir"])
        .arg(&data_dir)
        .env_remove("ONEDOOR_LOG")
        .env_remove("RUST_LOG")
        .output()
        .expect("onedoor case list runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON alone");
    assert!(json["cases"].is_array(), "{stdout}");
    assert!(
        stderr.is_empty(),
        "a successful command logs nothing: {stderr}"
    );

    levels_and_formats_of_a_command_that_prints_a_result(&data_dir);

    let after = std::fs::read_to_string(&log).expect("log");
    assert_eq!(
        after.lines().last(),
        Some(SUMMARY_LAST),
        "the summary stays last:\n{after}"
    );
    assert!(terminate(&mut child).success());
}

/// `onedoor ARGS` against the bus in `data_dir`, with `ONEDOOR_LOG` set only as given.
fn run(args: &[&str], data_dir: &Path, onedoor_log: Option<&str>) -> Output {
    let mut command = onedoor();
    command
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("ONEDOOR_LOG")
        .env_remove("RUST_LOG");
    if let Some(filter) = onedoor_log {
        command.env("ONEDOOR_LOG", filter);
    }
    command.output().expect("onedoor runs")
}

/// `audit verify` connects to NATS: silent on stderr by default; `--log-level` (over
/// `ONEDOOR_LOG`) shows async-nats's connection lines, on stderr only, as JSON objects with
/// `--log-format json`; a level that is no level is refused by name.
fn levels_and_formats_of_a_command_that_prints_a_result(data_dir: &Path) {
    let verify = ["audit", "verify", "--all"];
    let result_only = |out: &Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("ok: "), "{stdout}");
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
    };

    let out = run(&verify, data_dir, None);
    result_only(&out);
    assert!(
        out.stderr.is_empty(),
        "a successful command logs nothing: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(
        &[&verify[..], &["--log-level", "info"]].concat(),
        data_dir,
        None,
    );
    result_only(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("async_nats"), "INFO shows NATS: {stderr}");

    let out = run(
        &[
            &verify[..],
            &["--log-level", "info", "--log-format", "json"],
        ]
        .concat(),
        data_dir,
        None,
    );
    result_only(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.is_empty());
    for line in stderr.lines() {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(object["level"].is_string(), "{line}");
    }

    let out = run(
        &[&verify[..], &["--log-level", "warn"]].concat(),
        data_dir,
        Some("debug"),
    );
    result_only(&out);
    assert!(out.stderr.is_empty(), "the flag wins over ONEDOOR_LOG");

    let out = run(
        &[&verify[..], &["--log-level", "verbose"]].concat(),
        data_dir,
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"verbose\" is not a log level"),
        "{stderr}"
    );
}
