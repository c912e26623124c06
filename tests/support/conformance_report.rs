//! Reading `onedoor conformance --json`'s report, for its tests.

#![allow(dead_code)] // each test binary uses a different part

/// The check named `name` in `report`.
pub fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name:?} in {report}"))
}

/// The names of the failed checks.
pub fn failed(report: &serde_json::Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}
