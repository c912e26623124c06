//! `onedoor registry check` run as a user would: the real binary on real files.

use std::path::PathBuf;
use std::process::Command;

fn onedoor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_onedoor"))
}

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/registry")
        .join(name)
}

#[test]
fn registry_check_prints_a_one_line_summary_for_each_shipped_registry() {
    for (file, ministries) in [
        ("lao-2025.toml", "13 ministries"),
        ("lao-2021.toml", "17 ministries"),
    ] {
        let out = onedoor()
            .args(["registry", "check"])
            .arg(shipped(file))
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{file}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        assert!(
            stdout.starts_with("ok ")
                && stdout.contains(ministries)
                && stdout.contains("6 services"),
            "{stdout}"
        );
    }
}

#[test]
fn registry_check_lists_every_problem_and_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(shipped("lao-2025.toml")).expect("shipped file");
    let broken = text
        .replacen("code = \"MOF\"", "code = \"MOIC\"", 1)
        .replacen("agency = \"MOPS\"", "agency = \"MOPZ\"", 1);
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, broken).expect("write");

    let out = onedoor()
        .args(["registry", "check"])
        .arg(&path)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("duplicate agency code MOIC"), "{stdout}");
    assert!(stdout.contains("unknown agency MOPZ"), "{stdout}");
    assert!(
        stdout.lines().all(|line| line.contains("broken.toml")),
        "every line names the file: {stdout}"
    );
}

#[test]
fn registry_check_on_a_missing_file_fails_with_its_path() {
    let out = onedoor()
        .args(["registry", "check", "/nonexistent/registry.toml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("/nonexistent/registry.toml"));
}
