//! `onedoor keys` and `onedoor certs`, run as a ministry's IT team and the operator would: the
//! files and their modes, the token shown once, the registry lines that make an adapter (a real
//! `onedoor adapter` process on a secured nats-server) accept the token, its TLS certificate
//! and its signatures, and rotation keeping old signatures verifiable.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use onedoor_case::Registry;

fn onedoor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .args(args)
        .output()
        .expect("onedoor runs")
}

/// Stdout of a run that must succeed.
fn succeeds(args: &[&str]) -> String {
    let output = onedoor(args);
    assert!(
        output.status.success(),
        "onedoor {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Stderr of a run that must fail.
fn fails(args: &[&str]) -> String {
    let output = onedoor(args);
    assert!(
        !output.status.success(),
        "onedoor {args:?} succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).expect("utf-8 output")
}

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `keys new --agency AGENCY --out OUT` and `extra`.
fn keys_new<'a>(agency: &'a str, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let args = ["keys", "new", "--agency", agency, "--out", text(out)];
    [&args[..], extra].concat()
}

/// `certs client --ca CA --out OUT --agency AGENCY`.
fn certs_client<'a>(ca: &'a Path, out: &'a Path, agency: &'a str) -> Vec<&'a str> {
    let args = ["certs", "client", "--ca", text(ca), "--out", text(out)];
    [&args[..], &["--agency", agency]].concat()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// What `keys new` / `keys rotate` printed, taken apart.
struct Printed {
    stdout: String,
    token: Option<String>,
    /// The `[[agency.key]]` / `[[agency.token]]` lines.
    registry_lines: String,
    nats_public_key: Option<String>,
    /// The adapter settings block, as TOML.
    settings: toml::Table,
}

impl Printed {
    fn parse(stdout: String) -> Printed {
        let lines: Vec<&str> = stdout.lines().collect();
        let after = |prefix: &str| {
            lines
                .iter()
                .position(|l| l.starts_with(prefix))
                .map(|i| lines[i + 1].trim().to_owned())
        };
        let section = |from: usize, prefixes: &[&str]| {
            (from..lines.len())
                .find(|&i| prefixes.iter().any(|p| lines[i].starts_with(p)))
                .unwrap_or(lines.len())
        };
        let start = section(0, &["[[agency."]);
        let end = section(start, &["NATS:", "Adapter settings", "Retiring"]);
        let registry_lines = lines[start..end].join("\n").trim().to_owned();
        // Settings are printed when a key file was made; a token rotation makes none.
        let settings_at = section(0, &["Adapter settings"]);
        let settings_end = section(settings_at, &["Retiring"]);
        let settings =
            toml::from_str(&lines[(settings_at + 1).min(settings_end)..settings_end].join("\n"))
                .expect("TOML");
        Printed {
            token: after("Bearer token"),
            registry_lines,
            nats_public_key: after("NATS:"),
            settings,
            stdout,
        }
    }

    fn setting(&self, key: &str) -> String {
        self.settings[key]
            .as_str()
            .expect("string setting")
            .to_owned()
    }
}

/// The shipped registry's text with `lines` pasted at the end of `agency`'s entry, as the
/// printed instructions say.
fn registry_with(agency: &str, lines: &[&str]) -> String {
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2025.toml"),
    )
    .expect("shipped registry");
    let at = shipped
        .find(&format!("code = \"{agency}\""))
        .expect("agency in registry");
    let next = shipped[at..]
        .find("\n[[")
        .map_or(shipped.len(), |offset| at + offset + 1);
    format!(
        "{}{}\n\n{}",
        &shipped[..next],
        lines.join("\n\n"),
        &shipped[next..]
    )
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn keys_new_writes_owner_only_files_and_shows_the_token_once() {
    let temp = tempfile::tempdir().expect("temp dir");
    let out = temp.path().join("mof");
    let printed = Printed::parse(succeeds(&keys_new("MOF", &out, &[])));

    assert_eq!(mode(&out), 0o700);
    for sub in ["signing", "nats"] {
        assert_eq!(mode(&out.join(sub)), 0o700, "{sub}");
    }
    let written = files(&out);
    assert_eq!(
        written.len(),
        2,
        "a signing seed and an nkey seed: {written:?}"
    );
    for file in &written {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    let signing_key = PathBuf::from(printed.setting("signing_key"));
    let nats_seed = PathBuf::from(printed.setting("nats_seed"));
    assert!(written.contains(&signing_key) && written.contains(&nats_seed));
    assert!(signing_key.ends_with(format!("{}.seed", printed.setting("key_id"))));

    // The token: printed exactly once, in no file; the registry lines carry its hash.
    let token = printed.token.clone().expect("token printed");
    assert_eq!(token.len(), 64, "{token}");
    assert_eq!(printed.stdout.matches(&token).count(), 1);
    for file in &written {
        assert!(
            !std::fs::read_to_string(file)
                .expect("read")
                .contains(&token)
        );
    }
    let registry = Registry::from_toml(&registry_with("MOF", &[&printed.registry_lines]), "test")
        .expect("the printed lines make a valid registry");
    let mof = registry.agency(&onedoor_testkit::code("MOF")).expect("MOF");
    assert_eq!(mof.keys.len(), 1);
    assert_eq!(mof.keys[0].id, printed.setting("key_id"));
    let sha256: [u8; 32] = sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        token.as_bytes(),
    ))
    .into();
    assert_eq!(mof.tokens.len(), 1);
    assert_eq!(mof.tokens[0].sha256, sha256);
    let nkey = std::fs::read_to_string(&nats_seed).expect("nkey seed");
    let seed = onedoor_natsauth::Seed::parse(&nkey, "MOF").expect("a user seed");
    assert_eq!(Some(seed.public_key().to_string()), printed.nats_public_key);
}

#[test]
fn keys_new_refuses_unknown_agencies_loose_directories_and_existing_keys() {
    let temp = tempfile::tempdir().expect("temp dir");
    let out = temp.path().join("keys");
    let err = fails(&keys_new("MOFX", &out, &[]));
    assert!(err.contains("MOFX is not in the registry"), "{err}");
    assert!(!out.exists(), "nothing is made for an unknown agency");

    let loose = temp.path().join("shared");
    std::fs::create_dir(&loose).expect("mkdir");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let err = fails(&keys_new("MOF", &loose, &[]));
    assert!(err.contains("chmod 700"), "{err}");
    assert!(files(&loose).is_empty());
    let file = loose.join("a-file");
    std::fs::write(&file, "").expect("write");
    let err = fails(&keys_new("MOF", &file, &[]));
    assert!(err.contains("is not a directory"), "{err}");

    succeeds(&keys_new("MOF", &out, &[]));
    let before: Vec<(PathBuf, String)> = files(&out)
        .into_iter()
        .map(|f| (f.clone(), std::fs::read_to_string(&f).expect("read")))
        .collect();
    let err = fails(&keys_new("MOF", &out, &[]));
    assert!(err.contains("keys rotate"), "{err}");
    succeeds(&keys_new("MOF", &out, &["--force"]));
    assert_eq!(files(&out).len(), 4, "--force adds a set beside the first");
    for (file, content) in before {
        assert_eq!(std::fs::read_to_string(&file).expect("kept"), content);
    }
}

#[test]
fn rotating_a_token_or_an_nkey_keeps_every_old_file() {
    let temp = tempfile::tempdir().expect("temp dir");
    let out = temp.path().join("mof");
    let rotate = [
        "keys",
        "rotate",
        "--agency",
        "MOF",
        "--out",
        text(&out),
        "--what",
    ];
    let err = fails(&[&rotate[..], &["token"]].concat());
    assert!(err.contains("keys new"), "{err}");
    assert!(!out.exists(), "a failed rotation creates nothing");
    let first = Printed::parse(succeeds(&keys_new("MOF", &out, &[])));

    let token = Printed::parse(succeeds(&[&rotate[..], &["token"]].concat()));
    let secret = token.token.clone().expect("new token printed");
    assert_ne!(Some(&secret), first.token.as_ref());
    assert_eq!(token.stdout.matches(&secret).count(), 1);
    assert!(
        token.registry_lines.starts_with("[[agency.token]]"),
        "{}",
        token.registry_lines
    );
    assert!(token.stdout.contains("revoked = true"), "{}", token.stdout);
    assert_eq!(files(&out).len(), 2, "a token rotation writes no file");

    let nats = Printed::parse(succeeds(&[&rotate[..], &["nats"]].concat()));
    assert_ne!(nats.nats_public_key, first.nats_public_key);
    assert!(nats.stdout.contains("nats-import"), "{}", nats.stdout);
    assert!(
        Path::new(&first.setting("nats_seed")).exists(),
        "the old nkey is kept"
    );
    assert_eq!(mode(Path::new(&nats.setting("nats_seed"))), 0o600);
    assert_eq!(files(&out).len(), 3);
}

#[test]
fn certs_make_a_ca_server_and_client_certificates_with_the_printed_fingerprint() {
    let temp = tempfile::tempdir().expect("temp dir");
    let (ca, server, client) = (
        temp.path().join("ca"),
        temp.path().join("server"),
        temp.path().join("client"),
    );
    succeeds(&["certs", "ca", "--out", text(&ca)]);
    assert_eq!(mode(&ca.join("ca-key.pem")), 0o600);
    let err = fails(&["certs", "ca", "--out", text(&ca)]);
    assert!(err.contains("exists"), "{err}");

    let bad = ["certs", "server", "--ca", text(&ca), "--out", text(&server)];
    let err = fails(&[&bad[..], &["--name", "not a host"]].concat());
    assert!(
        err.contains("neither an IP address nor a DNS name"),
        "{err}"
    );
    succeeds(&[&bad[..], &["--name", "localhost,127.0.0.1"]].concat());
    assert_eq!(mode(&server.join("server-key.pem")), 0o600);
    assert_eq!(mode(&server), 0o700);

    let err = fails(&certs_client(&ca, &client, "NOPE"));
    assert!(err.contains("not in the registry"), "{err}");
    // Another CA's key beside this CA's certificate is refused before anything is issued.
    let other = temp.path().join("other-ca");
    succeeds(&["certs", "ca", "--out", text(&other)]);
    let mixed = temp.path().join("mixed-ca");
    std::fs::create_dir(&mixed).expect("mkdir");
    std::fs::copy(ca.join("ca.pem"), mixed.join("ca.pem")).expect("copy");
    std::fs::copy(other.join("ca-key.pem"), mixed.join("ca-key.pem")).expect("copy");
    let loose = std::fs::Permissions::from_mode(0o644);
    std::fs::set_permissions(mixed.join("ca-key.pem"), loose).expect("chmod");
    let err = fails(&certs_client(&mixed, &client, "MOF"));
    assert!(err.contains("chmod 600"), "{err}");
    let private = std::fs::Permissions::from_mode(0o600);
    std::fs::set_permissions(mixed.join("ca-key.pem"), private).expect("chmod");
    let err = fails(&certs_client(&mixed, &client, "MOF"));
    assert!(
        err.contains("does not belong to the CA certificate"),
        "{err}"
    );
    let stdout = succeeds(&certs_client(&ca, &client, "MOF"));
    let printed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("sha256: "))
        .expect("sha256 printed");
    let pem = std::fs::read_to_string(client.join("MOF.pem")).expect("client cert");
    let sha256 = onedoor_grpc::tls::certificate_sha256(&pem).expect("a certificate");
    assert_eq!(printed, onedoor_grpc::tls::hex(&sha256));
    assert_eq!(mode(&client.join("MOF-key.pem")), 0o600);
}

#[path = "cli_keys/end_to_end.rs"]
mod end_to_end;
