//! The production layout on one machine: the three cluster nodes from `deploy/nats/` (TLS, route
//! mTLS, nkey users from the registry), and every agency's adapter and the tracker as its own
//! `onedoor` process holding only its own credentials and all three NATS URLs.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use onedoor_bus::Signer;
use onedoor_case::Registry;
use onedoor_grpc::devpki::DevPki;
use onedoor_natsauth::Identity;
use onedoor_testkit::{DEADLINE, DeployCluster, eventually};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::flows::Endpoint;

/// The supervisor token the tracker accepts (given only its hash).
pub const SUPERVISOR: &str = "supervisor-token-for-the-production-test";

/// One `onedoor` process and how to start it again the same way.
pub struct Process {
    pub port: u16,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    fn spawn(
        name: &str,
        port: u16,
        args: Vec<OsString>,
        env: Vec<(String, String)>,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let mut process = Process {
            port,
            args,
            env,
            log: dir.join(format!("{name}.log")),
            child: None,
        };
        process.start()?;
        Ok(process)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_onedoor"))
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("ONEDOOR_LOG", "info,async_nats=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL: a crash, nothing flushed, nothing said goodbye to.
    pub fn crash(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            kill(Pid::from_raw(i32::try_from(child.id())?), Signal::SIGKILL)?;
            child.wait()?;
        }
        Ok(())
    }

    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.crash()?;
        self.start()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<_> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.crash();
    }
}

pub struct Layout {
    pub cluster: DeployCluster,
    pub dir: tempfile::TempDir,
    pub registry_path: PathBuf,
    /// The agencies' public signing keys, for `onedoor audit verify --keys`.
    pub keys_file: PathBuf,
    /// The CA of the adapters' gRPC certificates.
    pub grpc_ca: PathBuf,
    pub adapters: BTreeMap<String, Process>,
    tokens: BTreeMap<String, String>,
    /// Each agency's signing key; the registry file lists their public halves.
    signers: BTreeMap<String, Signer>,
    pub tracker: Option<Process>,
    /// `onedoor reader` processes, through which the adapters read cases.
    pub readers: Vec<Process>,
}

/// The registry at `shipped` with each signer's public key under its agency, as
/// `[[agency.key]]` entries.
fn registry_with_keys(
    shipped: &Path,
    signers: &BTreeMap<String, Signer>,
) -> anyhow::Result<String> {
    let mut registry: toml::Table = std::fs::read_to_string(shipped)?.parse()?;
    let agencies = registry
        .get_mut("agency")
        .and_then(toml::Value::as_array_mut)
        .ok_or_else(|| anyhow::anyhow!("no [[agency]] in {}", shipped.display()))?;
    for agency in agencies.iter_mut().filter_map(toml::Value::as_table_mut) {
        let code = agency
            .get("code")
            .and_then(toml::Value::as_str)
            .unwrap_or_default();
        let Some(signer) = signers.get(code) else {
            continue;
        };
        let mut key = toml::Table::new();
        key.insert("id".into(), signer.key_id().into());
        key.insert("public_key".into(), signer.public_key_base64().into());
        key.insert(
            "valid_from".into(),
            toml::Value::Datetime("2020-01-01".parse()?),
        );
        agency.insert("key".into(), toml::Value::Array(vec![key.into()]));
    }
    Ok(toml::to_string(&registry)?)
}

/// A secret file as an operator keeps it: the adapters refuse one others can read.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

/// A port free now on loopback, for a process that must come back on the same one.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Layout {
    /// The cluster up and its configs checked by `nats-server -t`, and a registry that lists
    /// a signing key for each of `agencies` (as the registry keeper pastes them from
    /// `onedoor keys new`); nothing provisioned yet.
    pub async fn start(agencies: &[&str]) -> anyhow::Result<Self> {
        let shipped =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2025.toml");
        let dir = tempfile::tempdir()?;
        let signers: BTreeMap<String, Signer> = agencies
            .iter()
            .map(|code| {
                (
                    (*code).to_owned(),
                    Signer::generate(format!("{code}-prod-test")),
                )
            })
            .collect();
        let registry_path = dir.path().join("registry.toml");
        std::fs::write(&registry_path, registry_with_keys(&shipped, &signers)?)?;
        let registry = Registry::load(&registry_path)?;
        let cluster = DeployCluster::start(&registry).await?;
        cluster.check_configs()?;
        let pki = DevPki::generate(std::iter::empty())?;
        let grpc_ca = dir.path().join("grpc-ca.pem");
        std::fs::write(&grpc_ca, &pki.ca_cert_pem)?;
        std::fs::write(dir.path().join("grpc-server.pem"), &pki.server.cert_pem)?;
        write_private(&dir.path().join("grpc-server.key"), &pki.server.key_pem)?;
        Ok(Layout {
            cluster,
            keys_file: dir.path().join("public-keys.toml"),
            dir,
            registry_path,
            grpc_ca,
            adapters: BTreeMap::new(),
            tokens: BTreeMap::new(),
            signers,
            tracker: None,
            readers: Vec::new(),
        })
    }

    /// `--nats-url` with all three nodes, the identity's own seed, and the cluster's CA.
    fn nats_args(&self, identity: &Identity) -> anyhow::Result<Vec<OsString>> {
        let seed = self
            .cluster
            .credentials
            .seed_file(identity)
            .ok_or_else(|| anyhow::anyhow!("no NATS seed for {}", identity.name()))?;
        Ok(vec![
            "--nats-url".into(),
            self.cluster.urls().join(",").into(),
            "--nats-seed".into(),
            seed.into(),
            "--nats-ca".into(),
            self.cluster.ca_pem().into(),
        ])
    }

    /// `onedoor provision` as the operator, R3.
    pub fn provision(&self, extra: &[&str]) -> anyhow::Result<Output> {
        let mut args: Vec<OsString> = vec!["provision".into()];
        args.extend(self.nats_args(&Identity::Operator)?);
        args.extend(["--replicas".into(), "3".into(), "--registry".into()]);
        args.push(self.registry_path.clone().into());
        args.extend(extra.iter().map(OsString::from));
        Ok(Command::new(env!("CARGO_BIN_EXE_onedoor"))
            .args(args)
            .stdin(Stdio::null())
            .output()?)
    }

    /// `onedoor adapter` for `agency` with its own signing key, token, NATS seed and TLS.
    pub fn start_adapter(&mut self, agency: &str) -> anyhow::Result<()> {
        let signer = self
            .signers
            .get(agency)
            .ok_or_else(|| anyhow::anyhow!("{agency} was not given a key at start"))?;
        let key_file = self.dir.path().join(format!("{agency}.signing.seed"));
        write_private(&key_file, &signer.seed_file_text())?;
        let mut keys = std::fs::read_to_string(&self.keys_file).unwrap_or_default();
        keys.push_str(&format!(
            "\n[[key]]\nagency = \"{agency}\"\nid = \"{}\"\npublic_key = \"{}\"\nvalid_from = 2020-01-01\n",
            signer.key_id(),
            signer.public_key_base64()
        ));
        std::fs::write(&self.keys_file, keys)?;
        let token = format!("token-{agency}-{}", onedoor_case::EventId::generate());
        let port = free_port()?;
        let code = onedoor_case::AgencyCode::parse(agency)?;
        let mut args: Vec<OsString> = vec![
            "adapter".into(),
            "--agency".into(),
            agency.into(),
            "--listen".into(),
            format!("127.0.0.1:{port}").into(),
            "--registry".into(),
            self.registry_path.clone().into(),
            "--signing-key".into(),
            key_file.into(),
            "--key-id".into(),
            signer.key_id().into(),
            "--tls-cert".into(),
            self.dir.path().join("grpc-server.pem").into(),
            "--tls-key".into(),
            self.dir.path().join("grpc-server.key").into(),
        ];
        args.extend(self.nats_args(&Identity::Agency(code))?);
        // The token goes through the environment, as the docs advise, not the command line.
        let env = vec![("ONEDOOR_AGENCY_TOKEN".to_owned(), token.clone())];
        let process = Process::spawn(agency, port, args, env, self.dir.path())?;
        self.tokens.insert(agency.to_owned(), token);
        self.adapters.insert(agency.to_owned(), process);
        Ok(())
    }

    pub fn endpoint(&self, agency: &str) -> anyhow::Result<Endpoint> {
        let process = self
            .adapters
            .get(agency)
            .ok_or_else(|| anyhow::anyhow!("no adapter for {agency}"))?;
        Ok(Endpoint {
            address: format!("https://127.0.0.1:{}", process.port),
            token: self.tokens[agency].clone(),
            ca: Some(self.grpc_ca.clone()),
        })
    }

    /// One more `onedoor reader` with the reader's NATS identity and the keyed registry (it
    /// listens on no port: it answers on NATS).
    pub fn start_reader(&mut self) -> anyhow::Result<()> {
        let mut args: Vec<OsString> = vec![
            "reader".into(),
            "--registry".into(),
            self.registry_path.clone().into(),
        ];
        args.extend(self.nats_args(&Identity::Reader)?);
        let name = format!("reader-{}", self.readers.len());
        let process = Process::spawn(&name, 0, args, Vec::new(), self.dir.path())?;
        self.readers.push(process);
        Ok(())
    }

    /// `onedoor tracker` with the tracker's own NATS identity and a SQLite store.
    pub fn start_tracker(&mut self) -> anyhow::Result<()> {
        let port = free_port()?;
        let hash = onedoor_grpc::tls::hex(&onedoor_grpc::Token::new(SUPERVISOR)?.sha256());
        let mut args: Vec<OsString> = vec![
            "tracker".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}").into(),
            "--data-dir".into(),
            self.dir.path().join("tracker").into(),
            "--supervisor-token-sha256".into(),
            hash.into(),
            "--registry".into(),
            self.registry_path.clone().into(),
        ];
        args.extend(self.nats_args(&Identity::Tracker)?);
        self.tracker = Some(Process::spawn(
            "tracker",
            port,
            args,
            Vec::new(),
            self.dir.path(),
        )?);
        Ok(())
    }

    /// Waits until `agency`'s adapter answers SERVING on gRPC health over TLS.
    pub async fn wait_serving(&self, agency: &str) -> anyhow::Result<()> {
        let endpoint = self.endpoint(agency)?;
        let pem = std::fs::read_to_string(&self.grpc_ca)?;
        let channel = Channel::from_shared(endpoint.address)?
            .connect_timeout(Duration::from_secs(1))
            .tls_config(
                ClientTlsConfig::new()
                    .domain_name("localhost")
                    .ca_certificate(Certificate::from_pem(pem)),
            )?
            .connect_lazy();
        let what = format!("{agency}'s adapter to serve");
        eventually(&what, DEADLINE, || {
            let mut health = HealthClient::new(channel.clone());
            async move {
                let request = HealthCheckRequest {
                    service: "onedoor.v1.AgencyGateway".into(),
                };
                Ok(match health.check(request).await {
                    Ok(answer) => {
                        (answer.into_inner().status == ServingStatus::Serving as i32).then_some(())
                    }
                    Err(_) => None,
                })
            }
        })
        .await
        .map_err(|e| {
            let tail = self.adapters.get(agency).map(Process::log_tail);
            anyhow::anyhow!("{e:#}\n--- {agency} log ---\n{}", tail.unwrap_or_default())
        })
    }

    /// `onedoor audit verify --all` as the auditor, against the cluster.
    pub fn audit_verify(&self) -> anyhow::Result<Output> {
        let mut args: Vec<OsString> = vec!["audit".into(), "verify".into(), "--all".into()];
        args.extend(self.nats_args(&Identity::Auditor)?);
        args.extend(["--keys".into(), self.keys_file.clone().into()]);
        Ok(Command::new(env!("CARGO_BIN_EXE_onedoor"))
            .args(args)
            .stdin(Stdio::null())
            .output()?)
    }
}
