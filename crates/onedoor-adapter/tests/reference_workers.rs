//! The gRPC reference workers of `examples/grpc-python/` (grpcio) and `examples/grpc-node/`
//! (@grpc/grpc-js), each run as a process against real adapters on a real nats-server: a
//! worker accepts a new task, hands the case on and completes its own task, the next agency's
//! worker completes that one, and every item ends acknowledged; a worker that crashes between
//! taking an item in and acknowledging it does not act on the redelivery again; a task taken
//! back before the worker reached it is closed, not worked.

use std::time::Duration;

use onedoor_bus::InboxSettings;
use onedoor_testkit::registry::token_for;
use onedoor_testkit::{DEADLINE, FRONT, ReferenceWorker, TestBus, WorkerLanguage, WorkerTarget};

/// `language`'s worker for `agency`, on the bus's adapter (no TLS).
fn worker(
    language: WorkerLanguage,
    bus: &TestBus,
    agency: &str,
    extra: &[&str],
) -> anyhow::Result<ReferenceWorker> {
    let target = WorkerTarget {
        adapter: &bus.address(agency),
        token: &token_for(agency),
        agency,
        ca: None,
    };
    ReferenceWorker::start(language, &target, extra)
}

/// The agencies' writes on the case, in order, as `AGENCY:kind`.
async fn history(bus: &TestBus, case_id: &str) -> anyhow::Result<Vec<String>> {
    let view = bus.agency(FRONT).await?.get_case(case_id).await?;
    Ok(view
        .events
        .iter()
        .map(|e| format!("{}:{}", e.from_agency, e.kind().unwrap_or_default()))
        .collect())
}

async fn hands_on_and_the_next_worker_completes(language: WorkerLanguage) -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC", "MOF"]).await?;
    let mut front = bus.agency(FRONT).await?;
    let case_id = front.open_case("enterprise-registration").await?.case_id;
    let handed = front.hand_off(&case_id, "MOIC").await?;

    let mut moic = worker(language, &bus, "MOIC", &["--hand-on", "MOF"])?;
    let mut mof = worker(language, &bus, "MOF", &[])?;
    let first = moic.until(&case_id, "NEW_TASK").await?;
    assert_eq!(first["event"], handed.event_id.as_str(), "{first}");
    assert_eq!(first["attempt"], 1, "{first}");
    assert_eq!(
        first["writes"],
        serde_json::json!(["accepted", "handed_off", "completed"]),
        "{first}"
    );
    // The item's trace is the case's: the worker can log it beside its own request ids.
    assert!(
        first["trace"]
            .as_str()
            .is_some_and(|t| t.contains(&handed.trace_id)),
        "{first}"
    );
    let second = mof.until(&case_id, "NEW_TASK").await?;
    assert_eq!(
        second["writes"],
        serde_json::json!(["accepted", "completed"]),
        "{second}"
    );
    // MOIC handed MOF the task, so MOF's completion lands in MOIC's inbox, and is noted.
    let noted = moic.until(&case_id, "TASK_COMPLETED").await?;
    assert_eq!(noted["writes"], serde_json::json!([]), "{noted}");

    let events = history(&bus, &case_id).await?;
    let by = |agency: &str| -> Vec<&str> {
        events
            .iter()
            .filter_map(|e| e.strip_prefix(&format!("{agency}:")))
            .collect()
    };
    assert_eq!(events.len(), 7, "{events:?}");
    assert_eq!(
        by("MOIC"),
        ["accepted", "handed_off", "completed"],
        "{events:?}"
    );
    assert_eq!(by("MOF"), ["accepted", "completed"], "{events:?}");
    for agency in ["MOIC", "MOF"] {
        bus.wait_until_inbox_drained(agency).await?;
    }
    Ok(())
}

async fn a_redelivery_after_a_crash_is_not_acted_on_again(
    language: WorkerLanguage,
) -> anyhow::Result<()> {
    // A short ack deadline, so the crashed worker's item comes back promptly.
    let bus = TestBus::start_configured(&[FRONT, "MOIC"], |config| {
        config.inbox = InboxSettings {
            max_deliver: 5,
            backoff: vec![Duration::from_secs(1); 4],
            ..InboxSettings::default()
        };
    })
    .await?;
    let mut front = bus.agency(FRONT).await?;
    let case_id = front.open_case("enterprise-registration").await?.case_id;
    let handed = front.hand_off(&case_id, "MOIC").await?;
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("handled").display().to_string();

    let mut crashing = worker(
        language,
        &bus,
        "MOIC",
        &["--state", &state, "--crash-before-ack"],
    )?;
    let taken = crashing.until(&case_id, "NEW_TASK").await?;
    assert_eq!(
        taken["writes"],
        serde_json::json!(["accepted", "completed"]),
        "{taken}"
    );
    let status = tokio::time::timeout(DEADLINE, crashing.child.wait()).await??;
    assert_eq!(status.code(), Some(3), "the worker did not crash as told");

    // The same store, a new process: the item is delivered again and only acknowledged.
    let mut restarted = worker(language, &bus, "MOIC", &["--state", &state])?;
    let again = restarted.next().await?;
    assert_eq!(again["duplicate"], handed.event_id.as_str(), "{again}");
    assert!(again["attempt"].as_u64().is_some_and(|n| n >= 2), "{again}");
    bus.wait_until_inbox_drained("MOIC").await?;
    let events = history(&bus, &case_id).await?;
    assert_eq!(
        events,
        [
            format!("{FRONT}:opened"),
            format!("{FRONT}:handed_off"),
            "MOIC:accepted".to_owned(),
            "MOIC:completed".to_owned(),
        ]
    );
    Ok(())
}

/// The front office takes MOIC's task back before MOIC's worker runs: the worker's Accept of
/// the new task is refused (noted, acknowledged), and the TASK_TAKEN_BACK item closes the task.
async fn a_task_taken_back_is_closed_not_worked(language: WorkerLanguage) -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC"]).await?;
    let mut front = bus.agency(FRONT).await?;
    let case_id = front.open_case("enterprise-registration").await?.case_id;
    front.hand_off(&case_id, "MOIC").await?;
    let recall = onedoor_proto::v1::RecallTaskRequest {
        case_id: case_id.clone(),
        holder_agency: "MOIC".into(),
        reason: "sent to the wrong ministry".into(),
        idempotency_key: onedoor_testkit::key(),
        actor: String::new(),
    };
    front.client.recall_task(recall).await?;

    let mut moic = worker(language, &bus, "MOIC", &[])?;
    let late = moic.until(&case_id, "NEW_TASK").await?;
    assert_eq!(late["refused"]["code"], "FAILED_PRECONDITION", "{late}");
    let closed = moic.until(&case_id, "TASK_TAKEN_BACK").await?;
    assert_eq!(closed["closed_task"], case_id.as_str(), "{closed}");
    assert_eq!(closed["writes"], serde_json::json!([]), "{closed}");
    bus.wait_until_inbox_drained("MOIC").await?;
    let events = history(&bus, &case_id).await?;
    assert_eq!(events.len(), 3, "the worker wrote nothing: {events:?}");
    Ok(())
}

#[tokio::test]
async fn python_worker_closes_a_task_taken_back() -> anyhow::Result<()> {
    a_task_taken_back_is_closed_not_worked(WorkerLanguage::Python).await
}

#[tokio::test]
async fn node_worker_closes_a_task_taken_back() -> anyhow::Result<()> {
    a_task_taken_back_is_closed_not_worked(WorkerLanguage::Node).await
}

#[tokio::test]
async fn python_worker_hands_on_and_the_next_worker_completes() -> anyhow::Result<()> {
    hands_on_and_the_next_worker_completes(WorkerLanguage::Python).await
}

#[tokio::test]
async fn python_worker_does_not_act_on_a_redelivery_after_a_crash() -> anyhow::Result<()> {
    a_redelivery_after_a_crash_is_not_acted_on_again(WorkerLanguage::Python).await
}

#[tokio::test]
async fn node_worker_hands_on_and_the_next_worker_completes() -> anyhow::Result<()> {
    hands_on_and_the_next_worker_completes(WorkerLanguage::Node).await
}

#[tokio::test]
async fn node_worker_does_not_act_on_a_redelivery_after_a_crash() -> anyhow::Result<()> {
    a_redelivery_after_a_crash_is_not_acted_on_again(WorkerLanguage::Node).await
}
