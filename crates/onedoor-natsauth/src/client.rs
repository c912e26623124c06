//! How every onedoor process reaches NATS: [`ConnectSettings`] (servers, identity, TLS, how
//! long to wait at start) and [`ConnectSettings::connect`], which retries an unreachable bus
//! with capped, jittered back-off until a deadline and gives up at once on what waiting cannot
//! fix (a refused identity, a TLS failure, a malformed URL).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectErrorKind, ConnectOptions, ServerAddr};

use crate::credentials::read_seed_file;
use crate::error::NatsAuthError;
use crate::identity::Identity;

/// How long a process waits at start for a NATS server to answer when nothing says otherwise.
/// Long enough for a cluster node (or a compose file's whole cluster) to come up; short enough
/// that a wrong address ends in an exit an init system shows, rather than a silent wait.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the client pings a quiet server. async-nats gives up on a connection after two
/// unanswered pings (a third would be due), so a frozen node is left, for another listed one,
/// within about three intervals; the library's default of 60 s would take minutes.
pub const PING_INTERVAL: Duration = Duration::from_secs(2);

/// How long one server may take to open a connection (TCP, TLS, its INFO). A frozen node
/// accepts the TCP connection and never sends INFO; each time the client picks it (servers
/// are tried in random order) costs this long. async-nats's default is 5 s; a live server on
/// a government WAN answers in well under a second.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(3);

/// First pause between start-up attempts; it doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Who the process is on NATS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NatsCredentials {
    /// No authentication: a development server without users.
    #[default]
    None,
    /// An nkey seed file, as `onedoor nats-config` writes it (mode 0600).
    Seed(PathBuf),
    /// A `.creds` file (user JWT and seed) for servers on decentralized JWT authentication.
    CredsFile(PathBuf),
}

/// TLS towards NATS. Any of these, or a `tls://` URL, makes TLS required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsTls {
    /// Root certificate(s) (PEM) the servers' certificates chain to.
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM) for servers that verify clients; needs `key`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Everything a process needs to reach NATS, the same for the adapter, the tracker and every
/// command that talks to the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectSettings {
    /// One or more servers (cluster nodes); any one that answers will do, and the client moves
    /// to another when its node goes away.
    pub urls: Vec<String>,
    pub credentials: NatsCredentials,
    pub tls: NatsTls,
    /// How long [`ConnectSettings::connect`] keeps trying when no server answers; `None`
    /// waits for ever.
    pub startup_timeout: Option<Duration>,
}

impl ConnectSettings {
    /// No credentials, no TLS, the default start-up deadline.
    pub fn new(urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        ConnectSettings {
            urls: urls.into_iter().map(Into::into).collect(),
            credentials: NatsCredentials::None,
            tls: NatsTls::default(),
            startup_timeout: Some(DEFAULT_STARTUP_TIMEOUT),
        }
    }

    pub fn with_seed(mut self, seed_file: impl Into<PathBuf>) -> Self {
        self.credentials = NatsCredentials::Seed(seed_file.into());
        self
    }

    /// The same settings with another start-up deadline (`None`: wait for ever;
    /// `Some(Duration::ZERO)`: one attempt at each server).
    pub fn with_startup_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// The servers as one line for logs and messages.
    pub fn urls_text(&self) -> String {
        self.urls.join(",")
    }

    /// Refuses what no server could fix: no URL, a URL that is not a NATS address, a client
    /// certificate without its key.
    pub fn validate(&self) -> Result<(), NatsAuthError> {
        let bad = |why: String| Err(NatsAuthError::NatsSettings { why });
        if self.urls.is_empty() {
            return bad("no NATS server given (nats_url)".into());
        }
        for url in &self.urls {
            if let Err(error) = url.parse::<ServerAddr>() {
                return bad(format!("{url:?} is not a NATS server address: {error}"));
            }
            if !(url.starts_with("nats://") || url.starts_with("tls://")) {
                return bad(format!(
                    "{url:?} is not a nats:// or tls:// URL (write the scheme, so TLS is never implied)"
                ));
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return bad("nats_tls_cert and nats_tls_key go together: give both or neither".into());
        }
        Ok(())
    }

    /// Whether the client insists on TLS: a CA or client certificate is given, or a URL says
    /// `tls://`.
    pub fn requires_tls(&self) -> bool {
        self.tls.ca.is_some()
            || self.tls.cert.is_some()
            || self.urls.iter().any(|url| url.starts_with("tls://"))
    }

    /// Client options for `identity`: credentials, TLS, its reply-subject prefix (a secured
    /// server lets an identity subscribe only under `_INBOX_<name>`), the connection name
    /// `onedoor-<name>` (shown in `/connz`), [`PING_INTERVAL`] and [`CONNECTION_TIMEOUT`]. Chain a more specific
    /// name, timeouts and callbacks on top; keep the inbox prefix.
    pub async fn options(&self, identity: &Identity) -> Result<ConnectOptions, NatsAuthError> {
        let options = match &self.credentials {
            NatsCredentials::None => ConnectOptions::new(),
            NatsCredentials::Seed(path) => {
                let seed = read_seed_file(path, identity)?;
                ConnectOptions::new().nkey(seed.expose_secret().to_owned())
            }
            NatsCredentials::CredsFile(path) => ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|source| NatsAuthError::Io {
                action: "reading NATS credentials file",
                path: path.clone(),
                source,
            })?,
        };
        let mut options = options
            .custom_inbox_prefix(identity.inbox_prefix())
            .name(format!("onedoor-{identity}"))
            .ping_interval(PING_INTERVAL)
            .connection_timeout(CONNECTION_TIMEOUT)
            .require_tls(self.requires_tls());
        if let Some(ca) = &self.tls.ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls.cert, &self.tls.key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(options)
    }

    /// Connects as `identity`, `tune` adding what the caller needs to each attempt's options
    /// (name, timeouts, event callback). While no server answers it logs why and tries again,
    /// with back-off from 250 ms doubling to 5 s (each pause jittered so a fleet restarted
    /// together does not retry in step), until [`ConnectSettings::startup_timeout`]. A refused
    /// identity, a TLS failure or a bad address ends it at once: waiting would not help.
    pub async fn connect(
        &self,
        identity: &Identity,
        tune: impl Fn(ConnectOptions) -> ConnectOptions,
    ) -> Result<Client, NatsAuthError> {
        self.validate()?;
        let started = Instant::now();
        let deadline = self.startup_timeout.map(|timeout| started + timeout);
        let addresses = self.addresses()?;
        let mut pause = RETRY_MIN;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let options = tune(self.options(identity).await?);
            let error = match options.connect(addresses.as_slice()).await {
                Ok(client) => {
                    if attempt > 1 {
                        tracing::info!(urls = %self.urls_text(), attempt, waited_ms = started.elapsed().as_millis() as u64, "connected to NATS");
                    }
                    return Ok(client);
                }
                Err(error) => error,
            };
            let failure = classify(&error);
            if failure != Failure::Transient {
                return Err(NatsAuthError::NatsRefused {
                    urls: self.urls_text(),
                    kind: failure.describe(),
                    why: error.to_string(),
                });
            }
            let wait = jittered(pause);
            if deadline.is_some_and(|deadline| Instant::now() + wait > deadline) {
                return Err(NatsAuthError::NatsUnreachable {
                    urls: self.urls_text(),
                    attempts: attempt,
                    waited: started.elapsed(),
                    last: error.to_string(),
                });
            }
            tracing::warn!(
                urls = %self.urls_text(), attempt, error = %error,
                retry_in_ms = wait.as_millis() as u64,
                "no NATS server answers yet; waiting"
            );
            tokio::time::sleep(wait).await;
            pause = (pause * 2).min(RETRY_MAX);
        }
    }

    fn addresses(&self) -> Result<Vec<ServerAddr>, NatsAuthError> {
        self.urls
            .iter()
            .map(|url| {
                url.parse().map_err(|error| NatsAuthError::NatsSettings {
                    why: format!("{url:?} is not a NATS server address: {error}"),
                })
            })
            .collect()
    }
}

/// What a failed attempt means for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Nobody answered (refused, timed out, name not resolved yet): a server may come up.
    Transient,
    Credentials,
    Tls,
    Address,
}

impl Failure {
    fn describe(self) -> &'static str {
        match self {
            Failure::Transient => "unreachable",
            Failure::Credentials => {
                "the server refused this identity (check the seed or creds file, and that the server's configuration lists its public key)"
            }
            Failure::Tls => {
                "TLS failed (check the CA, the client certificate, and that the server speaks TLS)"
            }
            Failure::Address => "the server address cannot be used",
        }
    }
}

fn classify(error: &async_nats::ConnectError) -> Failure {
    if error.kind() == ConnectErrorKind::Io && tls_handshake_failed(error) {
        return Failure::Tls;
    }
    classify_kind(error.kind())
}

/// async-nats 0.51 reports a failed TLS handshake (a certificate that does not chain to the
/// CA, a client certificate the server refuses) as an I/O error: rustls's error travels inside
/// an `io::Error` of kind `InvalidData`, which a plain TCP connection does not produce.
fn tls_handshake_failed(error: &async_nats::ConnectError) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::InvalidData
        {
            return true;
        }
        source = cause.source();
    }
    false
}

fn classify_kind(kind: ConnectErrorKind) -> Failure {
    match kind {
        ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
            Failure::Credentials
        }
        ConnectErrorKind::Tls => Failure::Tls,
        ConnectErrorKind::ServerParse => Failure::Address,
        // A name that does not resolve yet is normal while a cluster's pods or containers
        // start.
        ConnectErrorKind::Dns
        | ConnectErrorKind::TimedOut
        | ConnectErrorKind::Io
        | ConnectErrorKind::MaxReconnects => Failure::Transient,
    }
}

/// `pause` scaled by a random factor in [0.5, 1.0).
fn jittered(pause: Duration) -> Duration {
    use std::hash::{BuildHasher as _, Hasher as _};
    // A fresh RandomState is randomly keyed: enough randomness for spreading retries, without
    // a random-number crate.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = (random % 1000) as f64 / 2000.0;
    pause.mul_f64(0.5 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_no_server_could_fix_are_refused_before_connecting() {
        let ok = ConnectSettings::new(["nats://127.0.0.1:4222", "tls://nats-b.example:4222"]);
        assert!(ok.validate().is_ok());
        assert!(ok.requires_tls());
        assert!(
            ConnectSettings::new(Vec::<String>::new())
                .validate()
                .is_err()
        );
        assert!(
            ConnectSettings::new(["127.0.0.1:4222"]).validate().is_err(),
            "the scheme is required"
        );
        let mut half_pair = ConnectSettings::new(["nats://127.0.0.1:4222"]);
        half_pair.tls.cert = Some("client.pem".into());
        assert!(half_pair.validate().is_err());
        let mut with_ca = ConnectSettings::new(["nats://127.0.0.1:4222"]);
        assert!(!with_ca.requires_tls());
        with_ca.tls.ca = Some("ca.pem".into());
        assert!(with_ca.requires_tls());
    }

    #[test]
    fn refusals_fail_fast_and_silence_is_retried() {
        assert_eq!(
            classify_kind(ConnectErrorKind::AuthorizationViolation),
            Failure::Credentials
        );
        assert_eq!(classify_kind(ConnectErrorKind::Tls), Failure::Tls);
        assert_eq!(classify_kind(ConnectErrorKind::Io), Failure::Transient);
        assert_eq!(
            classify_kind(ConnectErrorKind::TimedOut),
            Failure::Transient
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let handshake = std::io::Error::new(std::io::ErrorKind::InvalidData, "unknown issuer");
        assert_eq!(
            classify(&async_nats::ConnectError::from(refused)),
            Failure::Transient
        );
        assert_eq!(
            classify(&async_nats::ConnectError::from(handshake)),
            Failure::Tls
        );
    }

    #[tokio::test]
    async fn a_creds_file_is_read_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let seed = crate::Seed::generate().expect("seed");
        // The layout `nsc` writes; the JWT is passed to the server as it is.
        let creds = format!(
            "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.e30.c2ln\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            seed.expose_secret()
        );
        let path = dir.path().join("moic.creds");
        std::fs::write(&path, creds).expect("write creds");
        let mut settings = ConnectSettings::new(["nats://127.0.0.1:4222"]);
        settings.credentials = NatsCredentials::CredsFile(path);
        let identity = Identity::Tracker;
        assert!(settings.options(&identity).await.is_ok());

        let missing = dir.path().join("absent.creds");
        settings.credentials = NatsCredentials::CredsFile(missing.clone());
        match settings.options(&identity).await {
            Err(NatsAuthError::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected an I/O error naming the file, got {other:?}"),
        }
    }

    #[test]
    fn jitter_stays_within_half_to_whole_pause() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_secs(2));
            assert!(wait >= Duration::from_secs(1) && wait < Duration::from_secs(2));
        }
    }
}
