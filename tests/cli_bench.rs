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

/// `onedoor bench` with `flags` written as on a command line (words split on spaces).
fn bench_with(flags: &str) -> Output {
    onedoor_bench(&flags.split_whitespace().collect::<Vec<_>>())
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
    assert_eq!(report["mode"], "development");
    assert_eq!(report["pattern"], "spread");
    assert_eq!(report["signing"], true);
    // Counted by the server: a hand-off cannot cost its sender less than one publish and its
    // receiver less than one delivery.
    let msgs = &report["nats_msgs_per_handoff"];
    assert!(msgs["sending"]["to_nats"].as_f64() >= Some(1.0), "{report}");
    assert!(
        msgs["receiving"]["from_nats"].as_f64() >= Some(1.0),
        "{report}"
    );
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
    assert_eq!(report["pattern"], "hot");
    assert_eq!(report["sendbacks"], 66, "{report}");
}

#[test]
fn the_case_length_mode_grows_every_case_first_and_measures_the_steps_after() {
    let output = bench_with("--case-length 10 --concurrency 4 --count 8 --raw-count 1000");
    let report = json_line(&output);
    assert_complete_and_exact(&report);
    assert_eq!(report["pattern"], "case-length");
    assert_eq!(report["case_length"], 10);
    // 1 opening + 5 rounds (hand-off, send-back) before the first measured hand-off; two
    // measured rounds per case.
    assert_eq!(report["case_events_from"], 11, "{report}");
    assert_eq!(report["case_events_to"], 13, "{report}");
    assert_eq!(report["count"], 8, "{report}");
    assert_eq!(report["sendbacks"], 4 * 7, "{report}");
}

#[test]
fn the_production_mode_runs_on_the_deploy_cluster_with_tls_and_nkeys() {
    let output = bench_with(
        "--production --count 60 --warmup 10 --concurrency 4 --rate 200 --raw-count 1000",
    );
    let report = json_line(&output);
    assert_complete_and_exact(&report);
    assert_eq!(report["mode"], "production");
    assert_eq!(report["offered_rate"], 200.0);
    assert!(report["raw_per_s"].as_f64() > Some(0.0), "{report}");
}

#[test]
fn the_up_rss_mode_reports_the_memory_of_a_whole_up_idle_and_under_load() {
    let output = onedoor_bench(&[
        "--up-rss", "--count", "100", "--warmup", "10", "--rate", "100",
    ]);
    let report = json_line(&output);
    assert_eq!(report["mode"], "up-rss", "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicated"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    // `up` runs every agency of the 2025 registry.
    assert!(report["adapters"].as_u64() > Some(10), "{report}");
    for key in ["up_idle_rss_mb", "up_load_rss_max_mb", "nats_idle_rss_mb"] {
        assert!(report[key].as_f64() > Some(0.0), "{key} in {report}");
    }
}

/// A refused run prints no JSON and names the flag.
fn assert_refused(args: &[&str], names: &str) {
    let output = onedoor_bench(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{args:?} ran: {stderr}");
    assert!(output.stdout.is_empty(), "{args:?} printed a report");
    assert!(stderr.contains(names), "{args:?}: {stderr}");
}

#[test]
fn malformed_and_conflicting_mode_flags_are_refused_naming_the_flag() {
    assert_refused(&["--case-length", "0"], "--case-length");
    assert_refused(&["--case-length", "1000001"], "--case-length");
    assert_refused(&["--case-length", "ten"], "--case-length");
    assert_refused(&["--case-length", "5", "--hot-cases", "2"], "--hot-cases");
    assert_refused(
        &["--production", "--nats-url", "nats://127.0.0.1:1"],
        "--nats-url",
    );
    assert_refused(&["--up-rss", "--production"], "--production");
    assert_refused(&["--count", "0"], "--count");
}
