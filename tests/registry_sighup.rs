//! SIGHUP on a real `onedoor reader`: it reads its `--registry` file again and moves to it only
//! when the file is valid and later than the registry it runs; a bad file or an older one is
//! logged and the process keeps running on what it has.

mod support;

use std::path::Path;
use std::process::{Child, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use onedoor_bus::{StreamSettings, ensure_stream};
use onedoor_testkit::registry::shipped_text;
use onedoor_testkit::{TestNats, eventually};
use support::{DEADLINE, onedoor, terminate};

/// Sends SIGHUP and waits until the log holds `expected` `count` times.
async fn hang_up(child: &Child, log: &Path, expected: &str, count: usize) -> anyhow::Result<()> {
    kill(Pid::from_raw(i32::try_from(child.id())?), Signal::SIGHUP)?;
    eventually(expected, DEADLINE, || async {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let seen = text.matches(expected).count();
        Ok((seen >= count).then_some(()).ok_or(text))
    })
    .await
}

#[tokio::test]
async fn the_reader_moves_to_a_later_registry_file_on_sighup_and_refuses_others()
-> anyhow::Result<()> {
    let nats = TestNats::start().await?;
    ensure_stream(&nats.jetstream().await?, &StreamSettings::development()).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("registry.toml");
    std::fs::write(&file, shipped_text("lao-2021.toml"))?;
    let log = dir.path().join("reader.log");
    let mut child = onedoor()
        .args(["reader", "--nats-url", &nats.url()])
        .arg("--registry")
        .arg(&file)
        .env("ONEDOOR_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    eventually("the reader answers", DEADLINE, || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        Ok(text
            .contains("case reader answering")
            .then_some(())
            .ok_or(text))
    })
    .await?;

    std::fs::write(&file, "[registry]\nname = 1\n")?;
    hang_up(&child, &log, "SIGHUP: registry file refused", 1).await?;
    std::fs::write(&file, shipped_text("lao-2025.toml"))?;
    hang_up(&child, &log, "SIGHUP: moved to the registry file", 1).await?;
    std::fs::write(&file, shipped_text("lao-2021.toml"))?;
    hang_up(&child, &log, "SIGHUP: registry file refused", 2).await?;
    let text = std::fs::read_to_string(&log)?;
    assert!(text.contains("does not follow the old one"), "{text}");
    assert!(child.try_wait()?.is_none(), "the reader stopped: {text}");
    assert!(terminate(&mut child).success());
    Ok(())
}
