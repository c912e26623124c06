//! Schemathesis (the PyPI package, installed by `scripts/setup.sh`) against a real adapter's
//! `/openapi.json`, with the agency's token: requests generated from the document itself, valid
//! and not, and every answer checked to be no server error and to match the document.

use std::path::Path;
use std::time::Duration;

use onedoor_testkit::registry::token_for;
use onedoor_testkit::{FRONT, TestBus};

/// Schemathesis's own time budget; the test allows a minute more for its start and its report.
const BUDGET_SECONDS: u64 = 60;

#[tokio::test]
async fn generated_requests_get_no_server_error_and_answers_that_match_the_document()
-> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    let st = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/st");
    anyhow::ensure!(
        st.exists(),
        "{} is missing: run `bash scripts/setup.sh`",
        st.display()
    );
    let scratch = tempfile::tempdir()?;
    let document = format!("{}/openapi.json", bus.address(FRONT));
    let mut run = tokio::process::Command::new(&st);
    run.args(["run", &document])
        .args([
            "--header",
            &format!("Authorization: Bearer {}", token_for(FRONT)),
        ])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        // The inbox is a stream that stays open: nothing to check on its end.
        .args(["--exclude-path", "/v1/Inbox"])
        // Fuzzing repeats until --max-time is spent (about 10 000 requests here).
        .args(["--max-examples", "25", "--seed", "19", "--workers", "2"])
        .args(["--max-time", &BUDGET_SECONDS.to_string()])
        .args(["--request-timeout", "10", "--generation-database", "none"])
        .arg("--no-color")
        // Its caches and reports go to a temporary directory, not the source tree.
        .current_dir(scratch.path())
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .kill_on_drop(true);
    let limit = Duration::from_secs(BUDGET_SECONDS + 60);
    let out = tokio::time::timeout(limit, run.output()).await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A run that tested nothing would pass too: every selected operation must have been run.
    let count = |label: &str| -> Option<u32> {
        let line = stdout.lines().find_map(|l| l.trim().strip_prefix(label))?;
        line.trim().split('/').next()?.parse().ok()
    };
    let (selected, tested) = (count("Selected:"), count("Tested:"));
    assert!(
        selected.is_some_and(|n| n >= 12) && tested == selected,
        "selected {selected:?}, tested {tested:?}:\n{stdout}"
    );
    Ok(())
}
