//! The checked-in configurations under `deploy/nats/` stay valid for the pinned nats-server.

use std::path::Path;
use std::process::Command;

#[test]
fn deploy_nats_configs_are_valid_for_the_pinned_nats_server() -> anyhow::Result<()> {
    let binary = onedoor_testkit::binary::nats_server()?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats");
    for name in [
        "dev.conf",
        "cluster-node-a.conf",
        "cluster-node-b.conf",
        "cluster-node-c.conf",
    ] {
        // `-t` parses the file (and its includes) and exits; nothing is started.
        let output = Command::new(&binary.path)
            .arg("-t")
            .arg("-c")
            .arg(dir.join(name))
            .output()?;
        let text = String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && text.contains("is valid"),
            "{name}: {text}"
        );
    }
    Ok(())
}
