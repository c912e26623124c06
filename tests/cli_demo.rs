//! `onedoor up` with the 2021 government (17 ministries) serves every agency at once, and
//! `onedoor demo` takes a construction permit through the parallel reviews of that shape.

mod support;

use support::{onedoor, spawn_up, terminate, wait_for_endpoints};

#[tokio::test(flavor = "multi_thread")]
async fn up_with_the_2021_registry_serves_every_agency_and_the_demo_completes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/registry/lao-2021.toml"
    );
    let mut child = spawn_up(dir.path(), &[("ONEDOOR_REGISTRY", registry.to_owned())]);
    let endpoints = wait_for_endpoints(&mut child, dir.path());

    let agencies = endpoints["agencies"].as_object().expect("agencies");
    let count = |kind: &str| agencies.values().filter(|a| a["kind"] == kind).count();
    assert_eq!(count("ministry"), 17);
    assert_eq!(count("ministerial-body"), 3);
    assert!(count("front-office") >= 5);
    assert!(
        agencies.contains_key("MONRE") && !agencies.contains_key("MAE"),
        "the 2021 shape"
    );

    let demo = onedoor()
        .args(["demo", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("demo runs");
    let out = String::from_utf8_lossy(&demo.stdout);
    assert!(
        demo.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(
        out.contains("→ MONRE") && out.contains("→ MPWT") && out.contains("→ MOPS"),
        "{out}"
    );
    assert!(out.contains("resolved: approved"), "{out}");

    let audit = onedoor()
        .args(["audit", "verify", "--all", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("audit runs");
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stdout)
    );
    assert!(terminate(&mut child).success());
}
