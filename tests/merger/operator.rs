//! The operator's side of the merger, as `docs/operations.md` gives it: registries that list
//! the operator's key, NATS configurations written by `onedoor`, a reload of the server
//! (SIGHUP, what `systemctl reload` does), `registry apply --execute`, and the checks after.

use std::path::{Path, PathBuf};
use std::process::Output;

use onedoor_bus::{CaseLog, Signer, StoredEvent};
use onedoor_case::CaseId;

use super::support::{DEADLINE, copy_credentials, nats_as, onedoor, reload_nats};

const OPERATOR_KEY_ID: &str = "OPERATOR-MERGER-2026";

/// The successor 2025 names for an agency it ends.
pub fn successor(ended: &str) -> &'static str {
    match ended {
        "MPI" => "MOF",
        "MEM" => "MOIC",
        "MAF" | "MONRE" => "MAE",
        "MOHA" => "PMO",
        "MICT" => "MCT",
        other => panic!("{other} is not ended by 2025"),
    }
}

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/registry")
        .join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub struct Operator {
    dir: PathBuf,
    /// The 2021 registry the bus starts on, listing the operator's key: the key that signs
    /// the publication of the next one.
    pub old: PathBuf,
    /// The 2025 registry, listing the same key: the key that signs the transfers.
    pub new: PathBuf,
    key_file: PathBuf,
}

impl Operator {
    pub fn new(dir: &Path) -> Operator {
        let signer = Signer::from_seed(OPERATOR_KEY_ID, [42; 32]);
        let key_file = dir.join("operator.key");
        std::fs::write(&key_file, signer.seed_file_text()).expect("write key");
        let listed = format!(
            "\n[[operator.key]]\nid = \"{OPERATOR_KEY_ID}\"\npublic_key = \"{}\"\nvalid_from = 2026-01-01\n",
            signer.public_key_base64()
        );
        let with_key = |name: &str| {
            let shipped = std::fs::read_to_string(shipped(name)).expect("shipped registry");
            let path = dir.join(name);
            std::fs::write(&path, format!("{shipped}{listed}")).expect("write registry");
            path
        };
        Operator {
            dir: dir.to_path_buf(),
            old: with_key("lao-2021.toml"),
            new: with_key("lao-2025.toml"),
            key_file,
        }
    }

    /// `onedoor nats-config` from the new registry into `name`, with the seeds `up` made.
    fn nats_config(&self, data: &Path, name: &str) -> PathBuf {
        let out = self.dir.join(name);
        copy_credentials(data, &out);
        let made = onedoor()
            .args(["nats-config", "--registry"])
            .arg(&self.new)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("runs");
        assert!(made.status.success(), "{}", text(&made.stderr));
        out
    }

    /// Step 1: the servers run the new registry's users and permissions (the successors'
    /// users, the operator's right to publish transfers) while the ended agencies' users still
    /// work, so their systems can read their inboxes empty.
    pub fn reload_nats_with_new_users(&self, data: &Path) {
        let out = self.nats_config(data, "nats-auth-new");
        let auth = std::fs::read_to_string(out.join("nats-auth.conf")).expect("written");
        reload_nats(data, &auth);
        let seed = out.join("credentials").join("MAE.nk");
        let url = nats_url(data);
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(onedoor_testkit::eventually(
                "the reloaded server to know MAE",
                DEADLINE,
                || async {
                    let options = onedoor_natsauth::connect_options_from_file(
                        &onedoor_natsauth::Identity::parse("MAE")?,
                        &seed,
                    )?;
                    Ok(options.connect(&url).await.is_ok().then_some(()))
                },
            ))
        })
        .unwrap_or_else(|error| panic!("{error:#}"));
    }

    /// Step 2: `registry apply NEW --execute`: publish, transfer, drain; it writes the
    /// configuration without the ended agencies' users into the returned directory.
    pub fn apply(&self, data: &Path) -> PathBuf {
        let out = self.nats_config(data, "nats-auth-after");
        let applied = tokio::task::block_in_place(|| {
            onedoor()
                .args(["registry", "apply"])
                .arg(&self.new)
                .arg("--data-dir")
                .arg(data)
                .args(["--execute", "--operator-key-id", OPERATOR_KEY_ID])
                .arg("--operator-key")
                .arg(&self.key_file)
                .args(["--drain-timeout", "60", "--nats-auth-out"])
                .arg(&out)
                .output()
                .expect("runs")
        });
        let stdout = text(&applied.stdout);
        assert!(
            applied.status.success(),
            "{stdout}{}",
            text(&applied.stderr)
        );
        assert!(stdout.contains("transferred: "), "{stdout}");
        // Every follower moved to the new registry before the transfers were written.
        let answers = stdout
            .lines()
            .find(|line| line.starts_with("registry answers: "))
            .unwrap_or_else(|| panic!("no answers line in:\n{stdout}"));
        assert!(answers.ends_with(", 0 refused"), "{answers}");
        eprintln!("{answers}");
        out
    }

    /// Step 3: the servers run the configuration without the ended agencies' users.
    pub fn revoke_ended_users(&self, data: &Path, applied: &Path) {
        let auth = std::fs::read_to_string(applied.join("nats-auth.conf")).expect("written");
        reload_nats(data, &auth);
    }

    pub async fn case_log(&self, endpoints: &serde_json::Value, data: &Path) -> Cases {
        let auditor = nats_as(endpoints, data, "auditor").await;
        let log = CaseLog::open(async_nats::jetstream::new(auditor))
            .await
            .expect("case log");
        Cases(log)
    }

    pub async fn assert_ended_users_refused(&self, ended: &[&str], data: &Path) {
        let url = nats_url(data);
        for code in ended {
            let seed = data.join("nats-credentials").join(format!("{code}.nk"));
            onedoor_testkit::eventually(&format!("the server to refuse {code}"), DEADLINE, || {
                let (seed, url) = (seed.clone(), url.clone());
                async move {
                    let options = onedoor_natsauth::connect_options_from_file(
                        &onedoor_natsauth::Identity::parse(code)?,
                        &seed,
                    )?;
                    Ok(options.connect(&url).await.is_err().then_some(()))
                }
            })
            .await
            .unwrap_or_else(|error| panic!("{error:#}"));
        }
    }

    /// `audit verify --all` under the new registry: history the ended agencies signed still
    /// verifies with their keys.
    pub fn assert_audit_passes(&self, data: &Path) {
        let out: Output = onedoor()
            .args(["audit", "verify", "--all", "--data-dir"])
            .arg(data)
            .arg("--registry")
            .arg(&self.new)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

fn nats_url(data: &Path) -> String {
    let endpoints: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("endpoints.json")).expect("endpoints"),
    )
    .expect("json");
    endpoints["nats"]["url"].as_str().expect("url").to_owned()
}

/// The stream's cases, read as the auditor.
pub struct Cases(CaseLog);

impl Cases {
    pub async fn load(&self, case_id: &str) -> Vec<StoredEvent> {
        let id = CaseId::parse(case_id).expect("case id");
        self.0.load(id).await.expect("case loads")
    }
}
