//! `onedoor registry apply` as an operator runs it against a live bus: `onedoor up` on the 2021
//! registry (real nats-server, adapters, tracker), cases handed to agencies the 2025 merger
//! removes, then the dry run for the real merger and for a registry that would orphan a task,
//! and `case show` naming the old agencies as they were, with their successors today.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::{Agency, DEADLINE, onedoor, shipped_registry_file, terminate, up_on_shipped};

const FRONT: &str = "ODSC-VTE-SAYSETTHA";

fn shipped(name: &str) -> PathBuf {
    shipped_registry_file(name)
}

fn apply(data_dir: &Path, new: &Path, extra: &[&str]) -> Output {
    onedoor()
        .args(["registry", "apply"])
        .arg(new)
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .output()
        .expect("runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The 2025 registry with MPI retired instead of merged into MOF.
fn orphaning_registry(dir: &Path) -> PathBuf {
    let shipped = std::fs::read_to_string(shipped("lao-2025.toml")).expect("shipped");
    let text = shipped.replacen("merged_into = \"MOF\"", "retired = true", 1);
    assert_ne!(text, shipped, "the edit applies");
    let path = dir.join("orphaning.toml");
    std::fs::write(&path, text).expect("write");
    path
}

/// Runs the dry run until the tracker has projected `case_id` (it reads the stream a moment
/// after the adapter's receipt), returning that output.
fn plan_listing(data_dir: &Path, new: &Path, case_id: &str) -> Output {
    onedoor_testkit::eventually_blocking("the plan to list the case", DEADLINE, || {
        let out = apply(data_dir, new, &[]);
        Ok(text(&out.stdout).contains(case_id).then_some(out))
    })
    .unwrap_or_else(|error| panic!("{error:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_apply_dry_run_plans_the_merger_and_refuses_to_orphan_a_task() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut up, data, endpoints) = up_on_shipped(dir.path(), "lao-2021.toml");

    let mut front = Agency::connect(&endpoints, FRONT).await;
    let at_mpi = front.open_case("apply-mpi").await.case_id;
    front.hand_off(&at_mpi, "MPI", "apply-mpi-to").await;
    let at_monre = front.open_case("apply-monre").await.case_id;
    front.hand_off(&at_monre, "MONRE", "apply-monre-to").await;
    let mut mpi = Agency::connect(&endpoints, "MPI").await;
    mpi.accept(&at_mpi, "apply-mpi-accept").await;

    let out = plan_listing(&data, &shipped("lao-2025.toml"), &at_monre);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for expected in [
        "plan: version 2021-10 to 2025-03, effective 2025-05-01 (dry run: nothing is changed)"
            .to_owned(),
        format!("task move: case {at_mpi} held by MPI (accepted, since "),
        format!("from {FRONT}) to MOF by a signed transfer event, due time unchanged"),
        format!("task move: case {at_monre} held by MONRE (pending, since "),
        "nats user add: MAE (agency permissions:".to_owned(),
        "nats user add: MCT (".to_owned(),
        "inbox create: inbox-MAE".to_owned(),
        "inbox create: inbox-MCT".to_owned(),
        "inbox drain: inbox-MPI (".to_owned(),
        "nats user revoke: MPI from 2025-05-01, once its open tasks have moved".to_owned(),
        "nats user revoke: MICT from 2025-05-01".to_owned(),
        "credentials revoke: MOHA bearer tokens and TLS client certificates from 2025-05-01"
            .to_owned(),
        "summary: 2 NATS users added, 6 revoked; 2 inboxes created, 6 drained and deleted; "
            .to_owned(),
    ] {
        assert!(
            stdout.contains(&expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("; 2 open tasks to move; 0 refused") && !stdout.contains("refused:"),
        "{stdout}"
    );

    // The same bus, a registry that retires MPI with the case still at MPI: refused, naming it.
    let orphaning = orphaning_registry(dir.path());
    let out = apply(&data, &orphaning, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("refused: MPI ends with no successor but holds 1 open task(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("refused task: case {at_mpi} held by MPI since 20"))
            && stdout.contains(&format!("(from {FRONT})")),
        "{stdout}"
    );
    assert!(text(&out.stderr).contains("would orphan open tasks"));

    // Unauthorised: a wrong tracker token is refused, and nothing is planned.
    let out = apply(
        &data,
        &shipped("lao-2025.toml"),
        &["--token", "not-the-supervisor-token-000000000"],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("refused the credentials"),
        "{}",
        text(&out.stderr)
    );

    // Malformed: a NEW that does not load, and a NEW no later than what runs.
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[registry]\nname = \"x\"\n").expect("write");
    let out = apply(&data, &broken, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("broken.toml"),
        "{}",
        text(&out.stdout)
    );
    let out = apply(&data, &shipped("lao-2021.toml"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("does not follow the old one"));

    // History keeps its names: under the 2025 registry the case still names MPI as the
    // Ministry of Planning and Investment, and says who does its work today.
    let show = |extra: &[&str]| {
        let out = onedoor()
            .args(["case", "show", &at_mpi, "--json", "--data-dir"])
            .arg(&data)
            .args(extra)
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        json["agencies"]
            .as_array()
            .expect("agencies listed")
            .clone()
    };
    let registry_2025 = shipped("lao-2025.toml").display().to_string();
    let agencies = show(&["--registry", &registry_2025]);
    let mpi = agencies
        .iter()
        .find(|a| a["code"] == "MPI")
        .expect("MPI named");
    assert_eq!(mpi["name_en"], "Ministry of Planning and Investment");
    assert_eq!(mpi["name_lo"], "ກະຊວງແຜນການ ແລະ ການລົງທຶນ");
    assert_eq!(mpi["now"], "MOF Ministry of Finance (ກະຊວງການເງິນ)");
    assert_eq!(agencies[0]["code"], FRONT, "the origin first");
    assert!(agencies[0].get("now").is_none());
    // By the registry the bus runs (2021), MPI is current: no successor.
    let agencies = show(&[]);
    let mpi = agencies.iter().find(|a| a["code"] == "MPI").expect("MPI");
    assert!(mpi.get("now").is_none(), "{mpi}");

    terminate(&mut up);

    // The bus is gone: the dry run says so, and plans nothing.
    let out = apply(&data, &shipped("lao-2025.toml"), &[]);
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("no running bus in") && text(&out.stderr).contains("--current"),
        "{}",
        text(&out.stderr)
    );
    let registry_2021 = shipped("lao-2021.toml").display().to_string();
    let out = apply(
        &data,
        &shipped("lao-2025.toml"),
        &[
            "--current",
            &registry_2021,
            "--tracker",
            "http://127.0.0.1:9",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("cannot reach the tracker at http://127.0.0.1:9"),
        "{}",
        text(&out.stderr)
    );
}

/// `--execute` signs with the operator key the new registry lists, or does nothing: a transfer
/// signed with any other key would be quarantined by every reader. Checked before the bus is
/// touched, so no bus runs here.
#[test]
fn execute_refuses_an_operator_key_the_new_registry_does_not_list() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("operator.key");
    let held = onedoor_bus::Signer::from_seed("OPERATOR-2026-01", [7; 32]);
    std::fs::write(&key_file, held.seed_file_text()).expect("write key");
    let listed = onedoor_bus::Signer::from_seed("OPERATOR-2026-01", [8; 32]);
    let shipped_2025 = std::fs::read_to_string(shipped("lao-2025.toml")).expect("shipped");
    let with_key = format!(
        "{shipped_2025}\n[[operator.key]]\nid = \"OPERATOR-2026-01\"\npublic_key = \"{}\"\nvalid_from = 2026-01-01\n",
        listed.public_key_base64()
    );
    let new = dir.path().join("lao-2025-operator.toml");
    std::fs::write(&new, with_key).expect("write registry");
    let current = shipped("lao-2021.toml").display().to_string();
    let key = key_file.display().to_string();
    let execute = ["--current", &current, "--execute", "--operator-key", &key];

    let unlisted = apply(
        dir.path(),
        &shipped("lao-2025.toml"),
        &[&execute[..], &["--operator-key-id", "OPERATOR-2026-01"]].concat(),
    );
    assert!(!unlisted.status.success());
    assert!(
        text(&unlisted.stderr).contains("lists no operator key \"OPERATOR-2026-01\""),
        "{}",
        text(&unlisted.stderr)
    );

    let other = apply(
        dir.path(),
        &new,
        &[&execute[..], &["--operator-key-id", "OPERATOR-2026-01"]].concat(),
    );
    assert!(!other.status.success());
    assert!(
        text(&other.stderr).contains("is not the key the new registry lists"),
        "{}",
        text(&other.stderr)
    );

    let no_id = apply(dir.path(), &new, &execute);
    assert!(!no_id.status.success());
    assert!(
        text(&no_id.stderr).contains("--operator-key-id"),
        "{}",
        text(&no_id.stderr)
    );
}
