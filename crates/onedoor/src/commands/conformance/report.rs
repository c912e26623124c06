//! [`Check`]: one row of the pass/fail table, and the table as printed.

use std::fmt::Write as _;
use std::process::ExitCode;

/// One check's result: what it saw, and when it failed, how to fix it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub saw: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn new(name: &'static str, saw: impl Into<String>) -> Self {
        Check {
            name,
            passed: false,
            saw: saw.into(),
            fix: None,
        }
    }

    pub fn pass(mut self) -> Self {
        self.passed = true;
        self
    }

    pub fn fail(mut self, fix: &str) -> Self {
        self.passed = false;
        self.fix = Some(fix.to_owned());
        self
    }
}

/// Prints the checks, as one JSON object (`fields`, `passed`, `checks`) or as `header` and the
/// table; success only when every check passed.
pub fn print<'a>(
    checks: &[Check],
    json: bool,
    header: &str,
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> ExitCode {
    let passed = checks.iter().all(|c| c.passed);
    if json {
        let mut report: serde_json::Map<String, serde_json::Value> = fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.into()))
            .collect();
        report.insert("passed".to_owned(), passed.into());
        report.insert("checks".to_owned(), serde_json::json!(checks));
        println!("{}", serde_json::Value::Object(report));
    } else {
        println!("{header}");
        print!("{}", table(checks));
    }
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The table: one row per check (`PASS`/`FAIL`, name, what was seen), each failure followed
/// by its fix, and a last line counting them.
pub fn table(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for check in checks {
        let result = if check.passed { "PASS" } else { "FAIL" };
        let _ = writeln!(out, "{result}  {:<width$}  {}", check.name, check.saw);
        if let Some(fix) = &check.fix {
            let _ = writeln!(out, "      {:<width$}  fix: {fix}", "");
        }
    }
    let passed = checks.iter().filter(|c| c.passed).count();
    let _ = writeln!(out, "{passed} of {} checks passed", checks.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_carries_its_fix_under_its_row() {
        let text = table(&[
            Check::new("one", "200").pass(),
            Check::new("second", "500").fail("answer 2xx"),
        ]);
        assert_eq!(
            text,
            "PASS  one     200\nFAIL  second  500\n              fix: answer 2xx\n1 of 2 checks passed\n"
        );
    }
}
