//! Running `onedoor up` as a user does, for the end-to-end tests: the real binary, its
//! `endpoints.json`, and gRPC clients of the agencies it lists.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use onedoor_proto::v1;
use onedoor_proto::v1::agency_gateway_client::AgencyGatewayClient;
pub use onedoor_testkit::DEADLINE;
use onedoor_testkit::eventually_blocking;

pub fn onedoor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_onedoor"))
}

/// `onedoor up --data-dir DIR` with extra environment, output discarded.
pub fn spawn_up(data_dir: &Path, env: &[(&str, String)]) -> Child {
    let mut command = onedoor();
    command
        .arg("up")
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().expect("onedoor up starts")
}

/// A registry file shipped in `deploy/registry/`, e.g. `lao-2021.toml`.
pub fn shipped_registry_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/registry")
        .join(name)
}

/// `onedoor up` on the shipped registry `name`, its data in DIR/data: the running child, the
/// data dir and its endpoints.
pub fn up_on_shipped(dir: &Path, name: &str) -> (Child, PathBuf, serde_json::Value) {
    let data = dir.join("data");
    let registry = shipped_registry_file(name).display().to_string();
    let mut up = spawn_up(&data, &[("ONEDOOR_REGISTRY", registry)]);
    let endpoints = wait_for_endpoints(&mut up, &data);
    (up, data, endpoints)
}

/// `onedoor up --demo` with debug logging, its stdout and stderr written to `log`.
pub fn spawn_up_logged(data_dir: &Path, log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file handle");
    onedoor()
        .arg("up")
        .arg("--demo")
        .arg("--data-dir")
        .arg(data_dir)
        .env("ONEDOOR_LOG", "debug")
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("onedoor up starts")
}

/// Polls until `up` has written endpoints.json (or exited, or the deadline passed).
pub fn wait_for_endpoints(child: &mut Child, data_dir: &Path) -> serde_json::Value {
    let path = data_dir.join("endpoints.json");
    let text = eventually_blocking("endpoints.json to appear", DEADLINE, || {
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Ok(Some(text));
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("onedoor up exited early with {status}");
        }
        Ok(None)
    })
    .unwrap_or_else(|error| panic!("{error:#}"));
    serde_json::from_str(&text).expect("endpoints.json is JSON")
}

/// SIGTERM, then wait (with a deadline) for the exit status.
pub fn terminate(child: &mut Child) -> ExitStatus {
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
    kill(pid, Signal::SIGTERM).expect("send SIGTERM");
    eventually_blocking("onedoor up to stop after SIGTERM", DEADLINE, || {
        Ok(child.try_wait()?)
    })
    .unwrap_or_else(|error| panic!("{error:#}"))
}

/// One agency's system, talking to its adapter with the development token `up` handed out.
pub struct Agency {
    pub client: AgencyGatewayClient<tonic::transport::Channel>,
    pub token: String,
}

impl Agency {
    pub async fn connect(endpoints: &serde_json::Value, code: &str) -> Agency {
        let entry = &endpoints["agencies"][code];
        let address = entry["grpc"].as_str().expect("grpc address").to_owned();
        let mut endpoint = tonic::transport::Channel::from_shared(address.clone()).expect("uri");
        if address.starts_with("https://") {
            let ca =
                std::fs::read_to_string(endpoints["tls_ca_cert"].as_str().expect("tls_ca_cert"))
                    .expect("CA file");
            let tls = tonic::transport::ClientTlsConfig::new()
                .domain_name("localhost")
                .ca_certificate(tonic::transport::Certificate::from_pem(ca));
            endpoint = endpoint.tls_config(tls).expect("tls config");
        }
        let channel = endpoint.connect().await.expect("adapter up");
        Agency {
            client: AgencyGatewayClient::new(channel),
            token: entry["token"].as_str().expect("token").to_owned(),
        }
    }

    pub fn request<T>(&self, body: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(body);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().expect("ascii"),
        );
        request
    }

    pub async fn open_case(&mut self, key: &str) -> v1::Receipt {
        let body = v1::OpenCaseRequest {
            service: "enterprise-registration".into(),
            citizen_ref: "R-E2E".into(),
            idempotency_key: key.into(),
            ..Default::default()
        };
        self.client
            .open_case(self.request(body))
            .await
            .expect("open case")
            .into_inner()
    }

    pub async fn hand_off(&mut self, case_id: &str, to: &str, key: &str) -> v1::Receipt {
        let body = v1::HandOffRequest {
            case_id: case_id.into(),
            to_agency: to.into(),
            idempotency_key: key.into(),
            ..Default::default()
        };
        self.client
            .hand_off(self.request(body))
            .await
            .expect("hand off")
            .into_inner()
    }

    pub async fn accept(&mut self, case_id: &str, key: &str) -> v1::Receipt {
        let body = v1::AcceptRequest {
            case_id: case_id.into(),
            idempotency_key: key.into(),
            ..Default::default()
        };
        self.client
            .accept(self.request(body))
            .await
            .expect("accept")
            .into_inner()
    }
}

impl Agency {
    pub async fn complete(&mut self, case_id: &str, key: &str) -> v1::Receipt {
        let body = v1::CompleteRequest {
            case_id: case_id.into(),
            outcome: "approved".into(),
            idempotency_key: key.into(),
            ..Default::default()
        };
        self.client
            .complete(self.request(body))
            .await
            .expect("complete")
            .into_inner()
    }

    pub async fn resolve(&mut self, case_id: &str, key: &str) -> v1::Receipt {
        let body = v1::ResolveCaseRequest {
            case_id: case_id.into(),
            resolution: v1::Resolution::Approved.into(),
            idempotency_key: key.into(),
            ..Default::default()
        };
        self.client
            .resolve_case(self.request(body))
            .await
            .expect("resolve")
            .into_inner()
    }

    /// Opens an inbox stream (kept by the caller for the whole test).
    pub async fn inbox(&mut self) -> tonic::Streaming<v1::InboxItem> {
        let request = self.request(v1::InboxRequest { max_in_flight: 0 });
        self.client
            .inbox(request)
            .await
            .expect("inbox")
            .into_inner()
    }

    /// The next item of `stream` for `case_id` (acknowledging every item read), within 20 s.
    pub async fn receive(
        &mut self,
        stream: &mut tonic::Streaming<v1::InboxItem>,
        case_id: &str,
    ) -> v1::InboxItem {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let item = tokio::time::timeout(left, stream.message())
                .await
                .expect("an inbox item in time")
                .expect("inbox stream healthy")
                .expect("inbox stream open");
            let event = item.event.as_ref().expect("event");
            let ack = v1::AckRequest {
                event_ids: vec![event.event_id.clone()],
            };
            self.client.ack(self.request(ack)).await.expect("ack");
            if event.case_id == case_id {
                return item;
            }
        }
    }
}

/// A NATS client as `identity` (`auditor`, or an agency code), with the nkey seed `up` made
/// under the data dir: the bus's NATS refuses anonymous clients.
pub async fn nats_as(
    endpoints: &serde_json::Value,
    data_dir: &Path,
    identity: &str,
) -> async_nats::Client {
    let url = endpoints["nats"]["url"]
        .as_str()
        .expect("nats url")
        .to_owned();
    let identity = onedoor_natsauth::Identity::parse(identity).expect("identity");
    let seed = data_dir
        .join("nats-credentials")
        .join(format!("{}.nk", identity.name()));
    onedoor_natsauth::connect_options_from_file(&identity, &seed)
        .expect("seed file")
        .connect(&url)
        .await
        .expect("NATS accepts the identity")
}

/// Swaps the accounts part of `up`'s nats-server configuration for `auth` and signals the
/// server (SIGHUP) to re-read it: what `systemctl reload` does on a node.
pub fn reload_nats(data: &Path, auth: &str) {
    let config = data.join("nats").join("nats-server.conf");
    let current = std::fs::read_to_string(&config).expect("server config");
    let marker = "# extra configuration from the caller\n";
    let at = current.find(marker).expect("up appends the accounts") + marker.len();
    std::fs::write(&config, format!("{}{auth}", &current[..at])).expect("write config");
    let pid = nats_server_pid(&config).expect("the bus's nats-server runs");
    kill(Pid::from_raw(pid), Signal::SIGHUP).expect("send SIGHUP");
}

/// The nats-server a test's `up` started: the one whose command line names `config`.
fn nats_server_pid(config: &Path) -> Option<i32> {
    let wanted = config.display().to_string();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (args.contains("nats-server") && args.contains(&wanted)).then_some(pid)
        })
}

/// Copies what `up` keeps in DATA/nats-credentials to DIR/credentials, where an operator who
/// ran `onedoor nats-config --out DIR` keeps them.
pub fn copy_credentials(data: &Path, out: &Path) {
    let to = out.join("credentials");
    std::fs::create_dir_all(&to).expect("mkdir");
    for entry in std::fs::read_dir(data.join("nats-credentials")).expect("credentials") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}
