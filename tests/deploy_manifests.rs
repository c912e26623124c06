//! The Kubernetes manifests (`deploy/k8s/`) and the compose file (`deploy/compose/`) stay valid
//! and set only variables something reads: nats-server every one `cluster-common.conf` reads,
//! onedoor only ones its commands list in their help. Validity:
//! every manifest against the Kubernetes 1.37 schemas with `kubernetes-validate --strict` (an
//! unknown field fails, not only a wrong type), the kustomization renders with `kubectl
//! kustomize` and lists every manifest, and the compose file against the compose
//! specification with `dclint`. `scripts/setup.sh` installs both validators into `.tools/`; a
//! missing one skips its test loudly, and fails it under CI.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The validator at `.tools/<relative>`, or `None` (and why) when a local run lacks it.
fn tool(relative: &str) -> Option<PathBuf> {
    let path = repo().join(".tools").join(relative);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: scripts/setup.sh installs it",
        path.display()
    );
    eprintln!(
        "SKIPPED: {} is missing (bash scripts/setup.sh installs it)",
        path.display()
    );
    None
}

/// Runs `command`; its output, and whether it succeeded.
fn run(command: &mut Command) -> anyhow::Result<(bool, String)> {
    let output = command.output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    Ok((output.status.success(), text))
}

fn k8s_manifests() -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(repo().join("deploy/k8s"))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[test]
fn kubernetes_manifests_match_the_schemas() -> anyhow::Result<()> {
    let Some(validate) = tool("venv/bin/kubernetes-validate") else {
        return Ok(());
    };
    let files = k8s_manifests()?;
    assert!(files.len() >= 5, "manifests: {files:?}");
    let (ok, text) = run(Command::new(validate)
        .args(["--strict", "--quiet", "--kubernetes-version", "1.37.0"])
        .args(&files))?;
    assert!(ok, "kubernetes-validate:\n{text}");
    Ok(())
}

#[test]
fn the_kustomization_renders_every_manifest() -> anyhow::Result<()> {
    let kubectl = Path::new("/usr/bin/kubectl");
    if !kubectl.exists() {
        eprintln!("SKIPPED: {} is not installed", kubectl.display());
        return Ok(());
    }
    let kustomization = std::fs::read_to_string(repo().join("deploy/k8s/kustomization.yaml"))?;
    for file in k8s_manifests()? {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert!(
            kustomization.contains(&format!("- {name}")),
            "kustomization.yaml does not list {name}"
        );
    }
    let (ok, text) = run(Command::new(kubectl)
        .arg("kustomize")
        .arg(repo().join("deploy/k8s")))?;
    assert!(ok, "kubectl kustomize:\n{text}");
    for kind in [
        "StatefulSet",
        "Deployment",
        "Job",
        "NetworkPolicy",
        "Service",
    ] {
        assert!(
            text.contains(&format!("kind: {kind}\n")),
            "no {kind} rendered"
        );
    }
    Ok(())
}

#[test]
fn the_compose_file_matches_the_compose_specification() -> anyhow::Result<()> {
    let Some(dclint) = tool("npm/node_modules/.bin/dclint") else {
        return Ok(());
    };
    // --quiet reports errors only: schema violations, not dclint's ordering preferences.
    let (ok, text) = run(Command::new(dclint)
        .arg("--quiet")
        .arg(repo().join("deploy/compose/compose.yaml")))?;
    assert!(ok && !text.contains("error"), "dclint:\n{text}");
    Ok(())
}

/// The `$ONEDOOR_NATSD_*` variables `cluster-common.conf` reads.
fn nats_server_variables() -> anyhow::Result<Vec<String>> {
    let config = std::fs::read_to_string(repo().join("deploy/nats/cluster-common.conf"))?;
    let mut names: Vec<String> = config
        .split('$')
        .skip(1)
        .filter(|rest| rest.starts_with("ONEDOOR_NATSD_"))
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect()
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

#[test]
fn every_way_to_run_nats_sets_every_variable_the_config_reads() -> anyhow::Result<()> {
    let names = nats_server_variables()?;
    assert!(names.len() >= 10, "variables found: {names:?}");
    for file in [
        "deploy/nats/nats.env.example",
        "deploy/k8s/nats.yaml",
        "deploy/compose/compose.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join(file))?;
        for name in &names {
            let set = text.matches(&format!("{name}:")).count()
                + text.matches(&format!("{name}=")).count()
                + text.matches(&format!("name: {name},")).count();
            assert!(set > 0, "{file} does not set {name}");
        }
    }
    Ok(())
}

/// Every `ONEDOOR_*` variable in `text`, but nats-server's own and compose's user ids.
fn onedoor_variables(text: &str) -> Vec<String> {
    text.split("ONEDOOR_")
        .skip(1)
        .map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            format!("ONEDOOR_{name}")
        })
        .filter(|name| {
            !name.starts_with("ONEDOOR_NATSD_")
                && !["ONEDOOR_UID", "ONEDOOR_GID"].contains(&&**name)
        })
        .collect()
}

#[test]
fn deploy_files_set_only_variables_onedoor_reads() -> anyhow::Result<()> {
    // What the commands the deploy files run say they read (`[env: NAME=]` in their help).
    let mut help = String::new();
    for command in ["adapter", "tracker", "reader", "health", "provision"] {
        let (_, text) = run(Command::new(env!("CARGO_BIN_EXE_onedoor")).args([command, "--help"]))?;
        help.push_str(&text);
    }
    let mut files = k8s_manifests()?;
    for file in ["deploy/compose/compose.yaml", "Dockerfile"] {
        files.push(repo().join(file));
    }
    for entry in std::fs::read_dir(repo().join("deploy/systemd"))? {
        files.push(entry?.path());
    }
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for name in onedoor_variables(&text) {
            assert!(
                help.contains(&name),
                "{} sets {name}, which no onedoor command reads",
                file.display()
            );
        }
    }
    Ok(())
}

/// The onedoor command lines in a deploy file: JSON-style arrays after `command:`, `args:` or
/// `test:` (compose, Kubernetes) and systemd's `ExecStart=`, without the program name.
fn onedoor_command_lines(text: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let mut lines = Vec::new();
    for key in ["command: [", "args: [", "test: ["] {
        for (start, _) in text.match_indices(key) {
            let array = &text[start + key.len() - 1..];
            let end = array.find(']').map_or(array.len(), |i| i + 1);
            let words: Vec<String> = serde_json::from_str(&array[..end])?;
            lines.push(words);
        }
    }
    for line in text.lines() {
        if let Some(command) = line.strip_prefix("ExecStart=") {
            lines.push(command.split_whitespace().map(str::to_owned).collect());
        }
    }
    // The image's entrypoint is onedoor: its containers' arrays start at the subcommand.
    const SUBCOMMANDS: [&str; 4] = ["adapter", "tracker", "provision", "health"];
    Ok(lines
        .into_iter()
        .filter_map(|words| {
            let program = words
                .iter()
                .position(|w| w == "onedoor" || w.ends_with("/onedoor"));
            match (program, words.first()) {
                (Some(i), _) => Some(words[i + 1..].to_vec()),
                (None, Some(first)) if SUBCOMMANDS.contains(&first.as_str()) => Some(words),
                _ => None,
            }
        })
        .collect())
}

#[test]
fn deploy_files_run_onedoor_with_flags_it_has() -> anyhow::Result<()> {
    let mut files = k8s_manifests()?;
    files.push(repo().join("deploy/compose/compose.yaml"));
    for entry in std::fs::read_dir(repo().join("deploy/systemd"))? {
        files.push(entry?.path());
    }
    let mut checked = 0;
    for file in files {
        for args in onedoor_command_lines(&std::fs::read_to_string(&file)?)? {
            // Clap refuses an unknown subcommand, flag or bad value before it prints help.
            let (ok, text) = run(Command::new(env!("CARGO_BIN_EXE_onedoor"))
                .args(&args)
                .arg("--help"))?;
            assert!(
                ok,
                "{}: onedoor {}:\n{text}",
                file.display(),
                args.join(" ")
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} onedoor command lines found");
    Ok(())
}
