//! `onedoor bench` with a tiny count, as a script runs it: stdout is one JSON line with every
//! figure, and every hand-off arrived exactly once. Speed is never asserted here: the machine
//! is shared and the numbers belong in the benchmark's own runs.

use std::process::Output;

use serde_json::Value;

fn onedoor_bench(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .arg("bench")
        .args(args)
        .output()
        .expect("onedoor bench runs")
}

/// The last stdout line, parsed; fails the test with both streams if it is not JSON.
fn json_line(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "stdout is one JSON line, got:\n{stdout}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {}", lines[0]))
}

const KEYS: [&str; 11] = [
    "handoffs_per_s",
    "raw_per_s",
    "ratio",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "offered_rate",
    "lost",
    "duplicated",
    "adapter_cpu_s_per_1000",
    "peak_rss_mb",
];

fn assert_complete_and_exact(report: &Value) {
    for key in KEYS {
        assert!(report.get(key).is_some(), "no {key} in {report}");
    }
    for key in KEYS.iter().filter(|k| **k != "offered_rate") {
        assert!(
            report[*key].is_number(),
            "{key} is not a number in {report}"
        );
    }
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicated"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["mismatched"], 0, "{report}");
    assert_eq!(report["unacked_at_end"], 0, "{report}");
    assert_eq!(
        report["stored_events"], report["expected_events"],
        "{report}"
    );
}

#[test]
fn a_tiny_bench_prints_one_json_line_and_every_hand_off_arrives_exactly_once() {
    let output = onedoor_bench(&[
        "--count",
        "150",
        "--warmup",
        "30",
        "--concurrency",
        "8",
        "--raw-count",
        "2000",
    ]);
    let report = json_line(&output);
    assert_complete_and_exact(&report);
    assert!(report["offered_rate"].is_null(), "{report}");
    assert_eq!(report["mode"], "spread");
    assert_eq!(report["signing"], true);
}

#[test]
fn the_hot_case_mode_at_an_offered_rate_also_loses_and_doubles_nothing() {
    let output = onedoor_bench(&[
        "--count",
        "60",
        "--warmup",
        "6",
        "--hot-cases",
        "2",
        "--rate",
        "200",
        "--raw-count",
        "1000",
    ]);
    let report = json_line(&output);
    assert_complete_and_exact(&report);
    assert_eq!(report["offered_rate"], 200.0);
    assert_eq!(report["mode"], "hot");
    assert_eq!(report["sendbacks"], 66, "{report}");
}
