//! The readiness deadline: a server that never gets ready is killed and reported.
//!
//! Alone in its own test binary on purpose: it writes an executable script, and a concurrent
//! fork in another test thread could briefly hold the file open for writing, making the exec
//! fail with ETXTBSY.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use onedoor_natsd::{NatsBinary, NatsServer, NatsdError, Origin, ServerSpec, Version};

#[tokio::test]
async fn a_server_that_never_becomes_ready_is_killed_at_the_deadline_and_reported_with_its_log()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Stands in for a server that hangs while starting: it logs a line and never gets ready.
    let fake = dir.path().join("nats-server");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'pretending to start'\nexec sleep 30\n",
    )?;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755))?;
    let binary = NatsBinary {
        path: fake,
        origin: Origin::EnvVar,
        version: Version::new(2, 15, 1),
    };
    let mut spec = ServerSpec::new(binary, dir.path().join("store"));
    spec.ready_timeout = Duration::from_millis(300);

    let started = Instant::now();
    let err = NatsServer::start(spec).await.expect_err("never ready");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let NatsdError::NotReady { pid, log_tail, .. } = &err else {
        panic!("expected NotReady, got: {err}");
    };
    assert!(log_tail.contains("pretending to start"), "{err}");
    // The hung process was killed (and reaped), not left running.
    let raw_pid = nix::unistd::Pid::from_raw(i32::try_from(*pid)?);
    assert_eq!(
        nix::sys::signal::kill(raw_pid, None),
        Err(nix::errno::Errno::ESRCH),
        "pid {pid} still exists"
    );
    Ok(())
}
