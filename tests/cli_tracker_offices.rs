//! `onedoor tracker offices`: the real binary asks the national tracker which district offices
//! it hears from. A connected office is listed connected; cut its link and it is listed
//! disconnected since about the cut; only a supervisor may ask. `--office-silence` is checked
//! and shown by `onedoor tracker --print-config`.

mod support;

use std::time::Duration;

use onedoor_testkit::{DEADLINE, District, FRONT, SUPERVISOR_TOKEN, eventually, token_for};
use support::onedoor;
use time::OffsetDateTime;

/// `onedoor tracker offices --tracker URL --token T [--json]`: (success, stdout, stderr).
async fn offices(url: &str, token: &str, json: bool) -> anyhow::Result<(bool, String, String)> {
    let mut command = onedoor();
    command.args(["tracker", "offices", "--tracker", url, "--token", token]);
    if json {
        command.arg("--json");
    }
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    Ok((
        output.status.success(),
        String::from_utf8(output.stdout)?,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// The office's entry once `wanted` holds of it, from `--json`.
async fn listed(
    url: &str,
    what: &str,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<serde_json::Value> {
    eventually(what, DEADLINE, || async {
        let (ok, stdout, stderr) = offices(url, SUPERVISOR_TOKEN, true).await?;
        anyhow::ensure!(ok, "tracker offices failed: {stderr}");
        let json: serde_json::Value = serde_json::from_str(&stdout)?;
        let office = json["offices"]
            .as_array()
            .and_then(|all| all.iter().find(|o| o["office"] == FRONT))
            .filter(|o| wanted(o))
            .cloned();
        Ok(office.ok_or(stdout))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracker_offices_lists_an_office_connected_then_disconnected_since_the_cut()
-> anyhow::Result<()> {
    let district = District::start().await?;
    let tracker = district.national_tracker(Duration::from_secs(11)).await?;
    let url = tracker.grpc.clone();
    let (adapter, _front, _) = district.office_adapter().await?;
    let up = listed(&url, "the office listed connected", |o| {
        o["connected"] == true
    })
    .await?;
    assert_eq!(up["pending"], 0, "{up}");
    let (_, text, _) = offices(&url, SUPERVISOR_TOKEN, false).await?;
    assert!(text.contains("0 of 1 disconnected"), "{text}");
    assert!(text.contains("(silent for more than 11 s)"), "{text}");

    district.link.cut();
    let cut_at = OffsetDateTime::now_utc();
    let down = listed(&url, "the office listed disconnected", |o| {
        o["connected"] == false
    })
    .await?;
    let last_heard = OffsetDateTime::parse(
        down["last_heard"].as_str().unwrap_or_default(),
        &time::format_description::well_known::Rfc3339,
    )?;
    // A status in flight at the cut may land a moment after it.
    assert!(
        last_heard <= cut_at + time::Duration::seconds(1),
        "{down} cut at {cut_at}"
    );
    let (ok, text, _) = offices(&url, SUPERVISOR_TOKEN, false).await?;
    assert!(ok);
    assert!(text.contains("1 of 1 disconnected"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains(FRONT) && l.contains("DISCONNECTED since")),
        "{text}"
    );

    // An agency's own token reads its cases, not the offices; a wrong token nothing.
    let (ok, _, stderr) = offices(&url, &token_for(FRONT), false).await?;
    assert!(!ok, "an agency listed the offices");
    assert!(stderr.contains("refused this caller"), "{stderr}");
    let (ok, _, stderr) = offices(&url, "not-a-token-of-anyone-0123456789", true).await?;
    assert!(!ok, "a wrong token listed the offices");
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    adapter.stop().await;
    tracker.stop().await
}

#[test]
fn the_office_silence_is_a_tracker_setting_within_bounds() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let output = onedoor()
        .args(["tracker", "--office-silence", "30", "--print-config"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()?;
    let stdout = String::from_utf8(output.stdout)?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("office_silence = 30"), "{stdout}");
    // Below the office's 5 s status interval every office would flap.
    let output = onedoor()
        .args(["tracker", "--office-silence", "4", "--print-config"])
        .output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("office-silence"), "{stderr}");
    Ok(())
}
