//! `onedoor case show --office` at a district office whose link to the capital is cut: the
//! real binary asks the office's adapter, which marks the steps still waiting for the link.

mod support;

use onedoor_testkit::{District, FRONT, token_for};
use support::onedoor;

/// `onedoor case show --office URL --token T ARGS CASE`, off the async threads.
async fn show_at_office(url: &str, case_id: &str, json: bool) -> anyhow::Result<String> {
    let mut command = onedoor();
    command.args([
        "case",
        "show",
        "--office",
        url,
        "--token",
        &token_for(FRONT),
    ]);
    if json {
        command.arg("--json");
    }
    command.arg(case_id);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(output.status.success(), "case show failed: {stderr}");
    Ok(String::from_utf8(output.stdout)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_show_at_a_cut_office_marks_the_steps_waiting_for_the_link() -> anyhow::Result<()> {
    let district = District::start().await?;
    let (adapter, mut front, online) = district.office_adapter().await?;
    let url = adapter.address.clone();

    district.link.cut();
    let handed = front.hand_off(&online.case_id, "MOIC").await?;
    assert!(handed.awaiting_link, "{handed:?}");

    let json: serde_json::Value =
        serde_json::from_str(&show_at_office(&url, &online.case_id, true).await?)?;
    let timeline = json["timeline"].as_array().cloned().unwrap_or_default();
    assert_eq!(timeline.len(), 2, "{json}");
    // Opened with the link up: delivered. The hand-off waits at the office.
    assert_eq!(timeline[0].get("awaiting_link"), None, "{json}");
    assert_eq!(timeline[1]["awaiting_link"], true, "{json}");
    let text = show_at_office(&url, &online.case_id, false).await?;
    assert_eq!(text.matches("WAITING FOR THE LINK").count(), 1, "{text}");
    adapter.stop().await;
    Ok(())
}
