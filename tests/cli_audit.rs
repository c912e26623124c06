//! `onedoor audit verify` against a bus started by `onedoor up`: the adapters sign with the
//! development keys `up` made, the histories verify, and a forged event is named.

mod support;

use std::process::Output;

use support::{Agency, onedoor, spawn_up, terminate, wait_for_endpoints};

fn verify(data_dir: &std::path::Path, target: &[&str]) -> Output {
    onedoor()
        .args(["audit", "verify"])
        .args(target)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("audit runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn histories_written_through_up_verify_and_a_forged_event_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = spawn_up(dir.path(), &[]);
    let endpoints = wait_for_endpoints(&mut child, dir.path());
    let mut front = Agency::connect(&endpoints, "ODSC-VTE-SAYSETTHA").await;
    let mut moic = Agency::connect(&endpoints, "MOIC").await;
    let case_id = front.open_case("audit-open").await.case_id;
    front.hand_off(&case_id, "MOIC", "audit-handoff").await;
    moic.accept(&case_id, "audit-accept").await;
    let other = front.open_case("audit-open-2").await.case_id;

    let one = verify(dir.path(), &[&case_id]);
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stdout)
    );
    let all = verify(dir.path(), &["--all"]);
    let out = String::from_utf8_lossy(&all.stdout);
    assert!(
        all.status.success() && out.contains("ok: 2 case(s), 4 event(s)"),
        "{out}"
    );

    // Someone with raw NATS access appends "MOF accepts" with a key the registry does not list.
    let url = endpoints["nats"]["url"]
        .as_str()
        .expect("nats url")
        .to_owned();
    // MOIC's own NATS credential used outside its adapter: allowed to write as MOIC, but it
    // cannot sign with MOIC's key.
    let _ = &url;
    let moic_js =
        async_nats::jetstream::new(support::nats_as(&endpoints, dir.path(), "MOIC").await);
    let log = onedoor_bus::CaseLog::through_reader(
        moic_js.clone(),
        onedoor_case::AgencyCode::parse("MOIC").expect("code"),
        std::time::Duration::from_secs(5),
    )
    .with_signer(onedoor_bus::Signer::generate("MOF-forged"));
    let registry = onedoor_case::Registry::from_toml(
        include_str!("../deploy/registry/lao-2025.toml"),
        "lao-2025.toml",
    )
    .expect("registry");
    let request = onedoor_bus::WriteRequest {
        case_id: case_id.parse().expect("case id"),
        event_id: onedoor_case::EventId::generate(),
        command: onedoor_case::Command {
            agency: onedoor_case::AgencyCode::parse("MOIC").expect("code"),
            actor: "intruder".into(),
            at: time::OffsetDateTime::now_utc(),
            action: onedoor_case::Action::Complete {
                outcome: "forged".into(),
                note: String::new(),
                documents: vec![],
            },
        },
        idempotency_key: "forged".into(),
        caller_trace: None,
    };
    let forged = log
        .execute(&request, &registry)
        .await
        .expect("raw NATS access can append");

    let bad = verify(dir.path(), &[&case_id]);
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(!bad.status.success(), "{out}");
    let forged_line = format!(
        "BAD case {case_id}: stream sequence {} (onedoor.v1.case.{case_id}.MOIC.ODSC-VTE-SAYSETTHA): signature:",
        forged.sequence
    );
    assert!(
        out.contains(&forged_line) && out.contains("MOF-forged"),
        "{out}"
    );
    // An undecodable message on the other case does not stop the audit of every case: both
    // bad messages are named, and it ends with the count.
    let garbage = moic_js
        .publish(
            format!("onedoor.v1.case.{other}.MOIC._"),
            "not protobuf".into(),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
    let all = verify(dir.path(), &["--all"]);
    let out = String::from_utf8_lossy(&all.stdout);
    let garbage_line = format!(
        "BAD case {other}: stream sequence {} (onedoor.v1.case.{other}.MOIC._): undecodable",
        garbage.sequence
    );
    assert!(
        !all.status.success()
            && out.contains(&forged_line)
            && out.contains(&garbage_line)
            && out.contains("2 bad message(s) in 2 case(s)"),
        "{out}"
    );

    let missing = verify(dir.path(), &[&onedoor_case::CaseId::generate().to_string()]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
    assert!(terminate(&mut child).success());
}
