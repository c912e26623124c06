//! Drain and revoke, as `registry apply NEW --execute` does them against a live bus:
//! `onedoor up` on the 2021 registry, MPI works a case to its end and reads its inbox empty;
//! then `--execute` deletes the ended agencies' inboxes and writes the NATS configuration
//! without their users. After nats-server reloads it, MPI's nkey is refused, the front office
//! still connects, and `audit verify --all` still verifies what MPI signed (under 2021 and
//! under the new registry).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::{
    Agency, DEADLINE, copy_credentials, nats_as, onedoor, reload_nats, shipped_registry_file,
    terminate, up_on_shipped,
};

const FRONT: &str = "ODSC-VTE-SAYSETTHA";

fn shipped(name: &str) -> PathBuf {
    shipped_registry_file(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The 2025 registry listing `operator`'s key, and that key's seed file.
fn new_registry_with_operator(dir: &Path) -> (PathBuf, PathBuf) {
    let operator = onedoor_bus::Signer::from_seed("OPERATOR-2026-01", [9; 32]);
    let key_file = dir.join("operator.key");
    std::fs::write(&key_file, operator.seed_file_text()).expect("write key");
    let shipped_2025 = std::fs::read_to_string(shipped("lao-2025.toml")).expect("shipped");
    let with_key = format!(
        "{shipped_2025}\n[[operator.key]]\nid = \"OPERATOR-2026-01\"\npublic_key = \"{}\"\nvalid_from = 2026-01-01\n",
        operator.public_key_base64()
    );
    let new = dir.join("lao-2025-operator.toml");
    std::fs::write(&new, with_key).expect("write registry");
    (new, key_file)
}

fn audit(data: &Path, registry: Option<&Path>) -> Output {
    let mut command = onedoor();
    command
        .args(["audit", "verify", "--all", "--data-dir"])
        .arg(data);
    if let Some(registry) = registry {
        command.arg("--registry").arg(registry);
    }
    command.output().expect("runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn execute_drains_the_old_inboxes_and_a_reload_refuses_the_old_user() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut up, data, endpoints) = up_on_shipped(dir.path(), "lao-2021.toml");

    // MPI signs history: it accepts and completes a case, reading its inbox empty.
    let mut front = Agency::connect(&endpoints, FRONT).await;
    let case_id = front.open_case("revoke-mpi").await.case_id;
    let mut mpi = Agency::connect(&endpoints, "MPI").await;
    let mut inbox = mpi.inbox().await;
    front.hand_off(&case_id, "MPI", "revoke-mpi-to").await;
    mpi.receive(&mut inbox, &case_id).await;
    mpi.accept(&case_id, "revoke-mpi-accept").await;
    mpi.complete(&case_id, "revoke-mpi-complete").await;

    let (new, key_file) = new_registry_with_operator(dir.path());
    let auth_dir = dir.path().join("nats-auth");
    copy_credentials(&data, &auth_dir);
    let out = onedoor()
        .args(["registry", "apply"])
        .arg(&new)
        .arg("--data-dir")
        .arg(&data)
        .args(["--execute", "--operator-key-id", "OPERATOR-2026-01"])
        .arg("--operator-key")
        .arg(&key_file)
        .args(["--drain-timeout", "20", "--nats-auth-out"])
        .arg(&auth_dir)
        .output()
        .expect("runs");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for expected in [
        "inbox deleted: inbox-MPI (read empty)",
        "inbox deleted: inbox-MONRE (read empty)",
        "with no user for ",
        "to do: copy ",
        "set revoked = true on every [[agency.token]] of ",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in:\n{stdout}");
    }
    let operator = nats_as(&endpoints, &data, "operator").await;
    let stream = async_nats::jetstream::new(operator)
        .get_stream("ONEDOOR")
        .await
        .expect("stream");
    assert!(stream.consumer_info("inbox-MPI").await.is_err(), "deleted");
    assert!(stream.consumer_info("inbox-MOF").await.is_ok(), "kept");

    let auth = std::fs::read_to_string(auth_dir.join("nats-auth.conf")).expect("written");
    assert!(auth.contains("# No user (revoked): "), "{auth}");
    assert!(!auth.contains("# MPI: "), "{auth}");
    nats_as(&endpoints, &data, "MPI").await; // still a user until the reload
    reload_nats(&data, &auth);

    let url = endpoints["nats"]["url"].as_str().expect("url").to_owned();
    let seed = data.join("nats-credentials").join("MPI.nk");
    onedoor_testkit::eventually("the server to refuse MPI's nkey", DEADLINE, || async {
        let options = onedoor_natsauth::connect_options_from_file(
            &onedoor_natsauth::Identity::parse("MPI")?,
            &seed,
        )?;
        Ok(options.connect(&url).await.is_err().then_some(()))
    })
    .await
    .expect("MPI refused after the reload");
    nats_as(&endpoints, &data, FRONT).await;

    for registry in [None, Some(new.as_path())] {
        let out = audit(&data, registry);
        assert!(
            out.status.success(),
            "audit under {registry:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    terminate(&mut up);
}
