//! `onedoor tracker bench` at tiny sizes, as a script runs it: stdout is one JSON line with
//! every figure, and the counts agree with what was asked. Speed is never asserted here.

use std::process::Output;

use serde_json::Value;

fn tracker_bench(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .args(["tracker", "bench"])
        .args(args)
        .output()
        .expect("onedoor tracker bench runs")
}

/// The only stdout line, parsed; fails the test with both streams if it is not JSON.
fn json_line(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tracker bench failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "stdout is one JSON line, got:\n{stdout}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {}", lines[0]))
}

const NUMBERS: [&str; 12] = [
    "events",
    "stream_cases",
    "publish_s",
    "projection_sqlite_events_per_s",
    "projection_sqlite_s",
    "rebuild_events",
    "rebuild_s",
    "rebuild_events_per_s",
    "cases",
    "overdue_cases",
    "listing_fill_s",
    "queries",
];

const FILTERS: [&str; 7] = [
    "all",
    "agency",
    "overdue",
    "overdue_agency",
    "service",
    "text",
    "deep",
];

fn assert_complete(report: &Value) {
    for key in NUMBERS {
        assert!(report[key].is_number(), "{key} is not a number in {report}");
    }
    for filter in FILTERS {
        for quantile in ["p50", "p90", "p99", "max"] {
            let key = format!("list_{filter}_{quantile}_ms");
            assert!(
                report[&key].is_number(),
                "{key} is not a number in {report}"
            );
        }
    }
    assert!(report["uptime_load"].is_string(), "{report}");
    assert!(
        report["projection_pg_events_per_s"].is_number()
            || report["projection_pg_events_per_s"].is_null()
    );
}

#[test]
fn a_tiny_tracker_bench_prints_every_figure_and_consistent_counts() {
    let mut args = vec![
        "--events",
        "800",
        "--cases",
        "300",
        "--queries",
        "10",
        "--pages",
        "4",
        "--page-size",
        "10",
    ];
    // PostgreSQL is measured when the machine has it; CI always does.
    let with_postgres =
        std::env::var_os("CI").is_some() || std::net::TcpStream::connect("127.0.0.1:5432").is_ok();
    if !with_postgres {
        eprintln!("*** PostgreSQL unreachable: the bench runs with --no-postgres ***");
        args.push("--no-postgres");
    }
    let report = json_line(&tracker_bench(&args));
    assert_complete(&report);
    assert_eq!(report["events"], 800, "{report}");
    assert_eq!(report["rebuild_events"], 800, "{report}");
    assert_eq!(report["cases"], 300, "{report}");
    assert_eq!(report["queries"], 10, "{report}");
    let stream_cases = report["stream_cases"].as_u64().unwrap_or(0);
    assert!(
        (1..=800).contains(&stream_cases),
        "every case has at least one event: {report}"
    );
    let overdue = report["overdue_cases"].as_u64().unwrap_or(u64::MAX);
    assert!(
        overdue > 0 && overdue < 300,
        "some cases, not all, are overdue: {report}"
    );
    if with_postgres {
        assert!(report["projection_pg_events_per_s"].is_number(), "{report}");
    }
}

#[test]
fn zero_events_are_refused_before_anything_starts() {
    // Asking for no events at all is refused before anything starts.
    let output = tracker_bench(&["--events", "0", "--no-postgres"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--events"), "{stderr}");
}
