//! Secrets and stores on disk are the owner's alone: after `onedoor up` every file under the
//! data dir is 0600 and every directory 0700, and a long-running command refuses to start from a
//! secret file others can read, saying the `chmod` that fixes it.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use support::{Agency, onedoor, spawn_up, terminate, wait_for_endpoints};

/// Every file and directory under `dir` (not following links), with its permission bits.
fn walk(dir: &Path, found: &mut Vec<(PathBuf, bool, u32)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.path().symlink_metadata()?;
        let mode = metadata.permissions().mode() & 0o777;
        if metadata.is_dir() {
            found.push((entry.path(), true, mode));
            walk(&entry.path(), found)?;
        } else if metadata.is_file() {
            found.push((entry.path(), false, mode));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_up_every_file_is_0600_and_every_directory_0700() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("bus");
    let mut child = spawn_up(&data, &[]);
    let endpoints = wait_for_endpoints(&mut child, &data);
    // A write makes the stores grow (JetStream blocks, the tracker's SQLite and its WAL).
    let mut front = Agency::connect(&endpoints, "ODSC-VTE-SAYSETTHA").await;
    front.open_case("file-modes-1").await;

    let mut found = Vec::new();
    walk(&data, &mut found).expect("walk the data dir");
    let names: Vec<String> = found
        .iter()
        .map(|(path, _, _)| path.display().to_string())
        .collect();
    for wanted in ["endpoints.json", "tracker.db", "nats-credentials", "keys"] {
        assert!(
            names.iter().any(|n| n.contains(wanted)),
            "{wanted} is under the data dir: {names:#?}"
        );
    }
    let top = std::fs::metadata(&data)
        .expect("data dir")
        .permissions()
        .mode()
        & 0o777;
    let loose: Vec<String> = found
        .iter()
        .filter(|(_, is_dir, mode)| *mode != if *is_dir { 0o700 } else { 0o600 })
        .map(|(path, _, mode)| format!("{mode:03o} {}", path.display()))
        .collect();
    // Early, just after endpoints.json appeared: up catches SIGTERM from before it wrote it.
    let status = terminate(&mut child);
    assert!(status.success(), "up stops cleanly: {status}");
    assert_eq!(top, 0o700, "the data dir itself");
    assert!(loose.is_empty(), "not owner-only:\n{}", loose.join("\n"));
}

/// `onedoor adapter` for MOIC with `seed`, against a NATS that is not there (it gives up after
/// a second): whether it failed, and what it said.
fn adapter_with_seed(seed: &Path) -> (bool, String) {
    let out = onedoor()
        .args(["adapter", "--agency", "MOIC"])
        .args([
            "--nats-url",
            "nats://127.0.0.1:1",
            "--nats-connect-timeout",
            "1",
        ])
        .arg("--nats-seed")
        .arg(seed)
        .output()
        .expect("onedoor adapter runs");
    (
        !out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_adapter_refuses_a_seed_others_can_read_and_names_the_chmod() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("moic.seed");
    let text = "SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4\n";
    std::fs::write(&seed, text).expect("write the seed");
    std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (refused, stderr) = adapter_with_seed(&seed);
    assert!(refused, "refused: {stderr}");
    let hint = format!("chmod 600 {}", seed.display());
    assert!(stderr.contains(&hint), "{hint:?} missing from:\n{stderr}");
    assert!(
        stderr.contains("mode 644"),
        "says the mode found:\n{stderr}"
    );

    // Owner-only, the same seed gets past the check (and fails later, on the absent NATS).
    std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (_, stderr) = adapter_with_seed(&seed);
    assert!(!stderr.contains("chmod 600"), "the check passes:\n{stderr}");
}
