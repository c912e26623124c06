//! The development configuration under `deploy/nats/` stays valid for the pinned nats-server.
//! The cluster files need certificates, credentials and their environment: `deploy_cluster.rs`
//! checks them with `nats-server -t` on the cluster it starts from them.

use std::process::Command;

#[test]
fn deploy_nats_dev_config_is_valid_for_the_pinned_nats_server() -> anyhow::Result<()> {
    check("dev.conf")
}

#[test]
fn the_district_office_config_is_valid_for_the_pinned_nats_server() -> anyhow::Result<()> {
    check("district-office.conf")
}

fn check(name: &str) -> anyhow::Result<()> {
    let binary = onedoor_testkit::binary::nats_server()?;
    let file = onedoor_testkit::deploy_cluster::deploy_nats_dir().join(name);
    // `-t` parses the file (and its includes) and exits; nothing is started.
    let output = Command::new(&binary.path)
        .arg("-t")
        .arg("-c")
        .arg(&file)
        .env("ONEDOOR_OFFICE_DOMAIN", "odsc-vte-saysettha")
        .output()?;
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && text.contains("is valid"),
        "{text}"
    );
    Ok(())
}
