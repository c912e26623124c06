//! `--config FILE` for the long-running commands: the file is the lowest layer, under the
//! environment and the flags; an unknown key or a wrong type is refused naming the file and the
//! key; the examples under deploy/config load.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::onedoor;

/// `onedoor ARGS --print-config` with no ONEDOOR_* setting from the test's own environment.
fn print_config(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command: Command = onedoor();
    for (key, _) in std::env::vars() {
        if key.starts_with("ONEDOOR_") && key != "ONEDOOR_NATS_SERVER" {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .arg("--print-config")
        .envs(env.iter().copied());
    command.output().expect("onedoor runs")
}

fn settings(output: &Output) -> toml::Table {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    toml::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not TOML ({e}):\n{stdout}"))
}

/// `nats_url` as printed: always a list.
fn urls(settings: &toml::Table) -> Vec<&str> {
    settings["nats_url"]
        .as_array()
        .unwrap_or_else(|| panic!("nats_url is a list: {settings:?}"))
        .iter()
        .filter_map(toml::Value::as_str)
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config file");
    path
}

fn example(role: &str) -> String {
    format!(
        "{}/../../deploy/config/{role}.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn every_example_in_deploy_config_loads_and_says_what_it_sets() {
    let adapter = settings(&print_config(
        &["adapter", "--config", &example("adapter")],
        &[],
    ));
    assert_eq!(adapter["agency"].as_str(), Some("MOIC"));
    assert_eq!(adapter["listen"].as_str(), Some("0.0.0.0:50051"));
    assert_eq!(
        adapter["client_cert_sha256"].as_array().map(Vec::len),
        Some(1)
    );

    let tracker = settings(&print_config(
        &["tracker", "--config", &example("tracker")],
        &[],
    ));
    assert_eq!(tracker["web_listen"].as_str(), Some("0.0.0.0:8443"));
    assert_eq!(tracker["client_certs"].as_array().map(Vec::len), Some(1));
    // The database URL may carry a password: it is never printed.
    assert_eq!(tracker["database_url"].as_str(), Some("(secret)"));

    assert_eq!(urls(&adapter).len(), 3, "every node of the cluster");
    assert_eq!(urls(&tracker).len(), 3, "every node of the cluster");

    let up = settings(&print_config(&["up", "--config", &example("up")], &[]));
    assert_eq!(up["data_dir"].as_str(), Some(".onedoor"));
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "adapter.toml",
        "agency = \"MOF\"\nlisten = \"127.0.0.1:1111\"\nnats_url = \"nats://file:4222\"\n\
         metrics_listen = \"127.0.0.1:9999\"\n",
    );
    let file = file.to_str().expect("utf-8 path");
    let out = print_config(
        &[
            "adapter",
            "--config",
            file,
            "--nats-url",
            "nats://flag:4222",
        ],
        &[
            ("ONEDOOR_LISTEN", "127.0.0.1:2222"),
            ("ONEDOOR_NATS_URL", "nats://env:4222"),
            ("ONEDOOR_AGENCY_TOKEN", "token-from-the-environment-0123"),
        ],
    );
    let settings = settings(&out);
    assert_eq!(settings["agency"].as_str(), Some("MOF"), "from the file");
    assert_eq!(settings["metrics_listen"].as_str(), Some("127.0.0.1:9999"));
    assert_eq!(
        settings["listen"].as_str(),
        Some("127.0.0.1:2222"),
        "env over file"
    );
    assert_eq!(urls(&settings), ["nats://flag:4222"], "flag over env");
    assert_eq!(settings["token"].as_str(), Some("(secret)"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("token-from-the-environment"));
}

#[test]
fn an_unknown_key_or_a_wrong_type_is_refused_naming_the_file_and_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let typo = write(
        dir.path(),
        "typo.toml",
        "agency = \"MOF\"\nnats_url = \"nats://127.0.0.1:4222\"\nlisen = \"0.0.0.0:1\"\n",
    );
    let out = print_config(&["adapter", "--config", typo.to_str().expect("utf-8")], &[]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("`lisen`"), "{message}");
    assert!(message.contains("typo.toml"), "{message}");
    assert!(
        message.contains("listen"),
        "the known keys are listed: {message}"
    );

    let wrong = write(dir.path(), "wrong.toml", "nats_port = \"four\"\n");
    let out = print_config(&["up", "--config", wrong.to_str().expect("utf-8")], &[]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("wrong.toml"), "{message}");
    assert!(message.contains("nats_port"), "{message}");

    let missing = dir.path().join("absent.toml");
    let out = print_config(
        &["tracker", "--config", missing.to_str().expect("utf-8")],
        &[],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("absent.toml"), "{}", stderr(&out));
}

#[test]
fn settings_that_go_together_are_checked_once_every_layer_is_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let half = write(
        dir.path(),
        "half.toml",
        "agency = \"MOF\"\nnats_url = \"nats://127.0.0.1:4222\"\ntls_cert = \"/x.pem\"\n",
    );
    let half = half.to_str().expect("utf-8");
    let out = print_config(&["adapter", "--config", half], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("tls_key"), "{}", stderr(&out));
    // The missing half may come from another layer.
    let out = print_config(&["adapter", "--config", half, "--tls-key", "/y.pem"], &[]);
    assert_eq!(settings(&out)["tls_key"].as_str(), Some("/y.pem"));

    let out = print_config(&["adapter", "--nats-url", "nats://127.0.0.1:4222"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("ONEDOOR_AGENCY"), "{}", stderr(&out));
}

#[test]
fn nats_urls_come_as_a_list_a_comma_separated_string_or_repeated_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let one = "nats://127.0.0.1:4222";
    let three = ["nats://a:4222", "nats://b:4222", "tls://c:4222"];
    for (name, text) in [
        ("list.toml", format!("nats_url = {three:?}\n")),
        (
            "commas.toml",
            format!("nats_url = \"{}\"\n", three.join(",")),
        ),
    ] {
        let file = write(dir.path(), name, &format!("agency = \"MOF\"\n{text}"));
        let out = print_config(&["adapter", "--config", file.to_str().expect("utf-8")], &[]);
        assert_eq!(urls(&settings(&out)), three, "{name}");
    }
    let mut args = vec!["tracker"];
    for url in three {
        args.extend(["--nats-url", url]);
    }
    assert_eq!(urls(&settings(&print_config(&args, &[]))), three);
    let out = print_config(&["tracker"], &[("ONEDOOR_NATS_URL", &three.join(","))]);
    assert_eq!(urls(&settings(&out)), three, "the environment splits too");

    // --nats-nkey is --nats-seed by another name; a seed and a creds file do not mix.
    let adapter = |nats: &[&str]| {
        let mut args = vec!["adapter", "--agency", "MOF"];
        args.extend(nats);
        print_config(&args, &[])
    };
    let out = adapter(&["--nats-url", one, "--nats-nkey", "/s.nk"]);
    assert_eq!(settings(&out)["nats_seed"].as_str(), Some("/s.nk"));
    let out = adapter(&[
        "--nats-url",
        one,
        "--nats-seed",
        "/s.nk",
        "--nats-creds",
        "/u.creds",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nats_creds"), "{}", stderr(&out));
    let out = adapter(&["--nats-url", "127.0.0.1:4222"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nats://"), "{}", stderr(&out));
}
