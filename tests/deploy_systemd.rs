//! The systemd units under `deploy/systemd/` parse, point at binaries that exist, and keep
//! their hardening: `systemd-analyze verify` (with `--recursive-errors=yes`, without which it
//! exits 0 on errors) and `systemd-analyze security --offline` under an exposure threshold.

use std::path::{Path, PathBuf};
use std::process::Command;

const SYSTEMD_ANALYZE: &str = "/usr/bin/systemd-analyze";

/// Exposure in tenths, as `--threshold` counts it: 2.0 is the top of systemd's "OK" band. The
/// units score 1.4 (adapter, tracker) and 1.7 (nats-server) with systemd 252.
const EXPOSURE_THRESHOLD: &str = "20";

/// Each unit file and the instance name it is checked as (templates need one).
const UNITS: [(&str, &str); 4] = [
    ("onedoor-adapter@.service", "onedoor-adapter@moic.service"),
    ("onedoor-tracker.service", "onedoor-tracker.service"),
    ("onedoor-reader.service", "onedoor-reader.service"),
    ("nats-server@.service", "nats-server@a.service"),
];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd")
}

/// Runs `systemd-analyze ARGS… unit`; the output when it fails.
fn analyze(args: &[&str], unit: &Path) -> anyhow::Result<Result<(), String>> {
    let output = Command::new(SYSTEMD_ANALYZE)
        .args(args)
        .arg(unit)
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    Ok(if output.status.success() {
        Ok(())
    } else {
        Err(text)
    })
}

#[test]
fn systemd_units_verify_and_stay_hardened() -> anyhow::Result<()> {
    if !Path::new(SYSTEMD_ANALYZE).exists() {
        eprintln!("SKIPPED: {SYSTEMD_ANALYZE} is not installed, the units cannot be checked");
        return Ok(());
    }
    // The units name the installed paths; verify wants ExecStart's binary to exist, so the
    // copies point at this build's onedoor and the pinned nats-server.
    let nats_server = onedoor_testkit::binary::nats_server()?.path;
    let dir = tempfile::tempdir()?;
    for (file, instance) in UNITS {
        let text = std::fs::read_to_string(deploy_dir().join(file))?
            .replace("/usr/local/bin/onedoor", env!("CARGO_BIN_EXE_onedoor"))
            .replace(
                "/usr/local/bin/nats-server",
                &nats_server.display().to_string(),
            );
        std::fs::write(dir.path().join(file), text)?;
        let unit = dir.path().join(instance);
        if let Err(text) = analyze(&["verify", "--recursive-errors=yes"], &unit)? {
            panic!("{file}: systemd-analyze verify:\n{text}");
        }
        let threshold = format!("--threshold={EXPOSURE_THRESHOLD}");
        if let Err(text) = analyze(&["security", "--offline=yes", &threshold], &unit)? {
            panic!("{file}: exposure above {EXPOSURE_THRESHOLD} tenths:\n{text}");
        }
    }
    Ok(())
}
