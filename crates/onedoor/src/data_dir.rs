//! Where a running bus lives on disk, and `endpoints.json`, the file through which scripts,
//! other languages' clients and the other CLI commands find it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

pub const ENDPOINTS_FILE: &str = "endpoints.json";
/// Bumped when a field changes meaning; readers refuse versions they do not know.
pub const ENDPOINTS_VERSION: u32 = 1;

/// What `onedoor up` publishes about itself. Fields for adapters, the tracker and the web page
/// are added by the issues that build them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoints {
    pub version: u32,
    /// Process id of `onedoor up`, so a reader can tell a stale file from a live bus.
    pub pid: u32,
    pub started_at: String,
    pub registry: String,
    pub nats: NatsEndpoint,
    /// Every agency's adapter, by agency code.
    pub agencies: BTreeMap<String, AgencyEndpoint>,
    /// The tracker, once it runs under `up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracker: Option<TrackerEndpoint>,
    /// The development CA that signed the adapters' server certificate (gRPC is TLS): clients
    /// trust it and connect to `https://127.0.0.1:<port>` with server name `localhost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_cert: Option<String>,
    /// Prometheus `/metrics` of the `up` process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AgencyEndpoint {
    /// gRPC address of the agency's AgencyGateway, e.g. `http://127.0.0.1:40123`.
    pub grpc: String,
    /// Base URL of the same gateway's HTTP/JSON face (`POST {json}/v1/OpenCase`, the OpenAPI
    /// document at `{json}/openapi.json`; `docs/http-json.md`): the gRPC port, same TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    /// Development bearer token (send `authorization: Bearer <token>`). `up` makes a new one
    /// on every start; production tokens never appear in this file.
    pub token: String,
    pub kind: String,
    pub name_en: String,
    pub name_lo: String,
    /// The agency's development TLS client certificate and key (authenticates without a token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrackerEndpoint {
    /// gRPC address of the CaseTracker (`https://…` under `up`: TLS with the development CA).
    pub grpc: String,
    /// The staff web page, when served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<String>,
    /// Development supervisor token for CaseTracker (reads every case; send
    /// `authorization: Bearer <token>`). `up` makes a new one on every start and gives the
    /// tracker only its hash; production tokens never appear in this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_token: Option<String>,
    /// The same token in a file readable by its owner only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_token_file: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NatsEndpoint {
    pub url: String,
    pub monitor_url: String,
    pub stream: String,
    pub server_version: String,
    /// The read-only `auditor` NATS identity (may read the whole stream, write nothing), for
    /// scripts and `onedoor audit verify`. Absent when NATS runs without authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auditor: Option<NatsIdentity>,
}

/// How to connect as one NATS identity: nkey seed file (owner-only) and reply prefix.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NatsIdentity {
    pub identity: String,
    pub seed_file: String,
    pub public_key: String,
    /// Clients must use this inbox prefix: the identity may only subscribe below it.
    pub inbox_prefix: String,
}

impl Endpoints {
    /// Written to a temporary file and renamed, so a reader never sees half a file.
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join(ENDPOINTS_FILE);
        let tmp = dir.join(format!(".{ENDPOINTS_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).context("encoding endpoints.json")?;
        std::fs::write(&tmp, text + "\n").with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        Ok(path)
    }

    pub fn read(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = dir.join(ENDPOINTS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        let endpoints: Self = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid endpoints file", path.display()))?;
        anyhow::ensure!(
            endpoints.version == ENDPOINTS_VERSION,
            "{} has version {}, this onedoor reads version {ENDPOINTS_VERSION}",
            path.display(),
            endpoints.version
        );
        Ok(Some(endpoints))
    }
}

/// True when a process with this pid exists (Linux: `/proc/<pid>`), used to tell a live bus
/// from the leftovers of one that was killed.
pub fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}
