//! [`SecuredBus`]: a nats-server running the configuration `onedoor-natsauth` generates from
//! the registry (one nkey user per agency, the tracker, the auditor and the operator, with
//! their permissions), and connections as each identity that collect the server's refusals.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use onedoor_adapter::{AdapterConfig, CaseReads, Token};
use onedoor_bus::Signer;
use onedoor_bus::read::{CaseReader, READER_CACHED_CASES};
use onedoor_bus::stuck::ensure_stuck_bucket;
use onedoor_bus::{
    CaseLog, InboxSettings, StreamSettings, WriteRequest, ensure_inbox, ensure_stream,
};
use onedoor_case::{Action, CaseId, Registry};
use onedoor_natsauth::{
    ConnectSettings, CredentialSet, Identity, PermissionViolation, connect_options, render_config,
};
use tempfile::TempDir;
use tokio::sync::mpsc;

use crate::bus::{open_and_hand_off, write_request};
use crate::registry::{FRONT, code, shipped_registry, token_for};
use crate::single::TestNats;

/// Short enough that refusal tests stay fast (a refused request gets no answer and times
/// out), long enough for a loaded two-core machine to answer every allowed one on loopback.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A nats-server running the configuration generated from the shipped registry, with fresh
/// credentials for every identity. Nothing is provisioned by [`SecuredBus::start`].
pub struct SecuredBus {
    pub nats: TestNats,
    pub credentials: CredentialSet,
    pub registry: Arc<Registry>,
    _credentials_dir: TempDir,
    /// The case reader agencies read through, once [`SecuredBus::start_reader`] ran.
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for SecuredBus {
    fn drop(&mut self) {
        if let Some(reader) = &self.reader {
            reader.abort();
        }
    }
}

/// One identity's connection, with the permission violations the server reported to it.
pub struct Session {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub violations: mpsc::UnboundedReceiver<PermissionViolation>,
}

impl SecuredBus {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with("").await
    }

    /// [`SecuredBus::start`] with `extra_config` after the generated accounts (e.g. a
    /// `leafnodes` listener).
    pub async fn start_with(extra_config: &str) -> anyhow::Result<Self> {
        let registry = shipped_registry();
        let dir = tempfile::tempdir()?;
        let credentials = CredentialSet::generate(dir.path(), &registry)?;
        let config = format!(
            "{}\n{extra_config}",
            render_config(&registry, &credentials)?
        );
        let nats = TestNats::start_with_config(&config).await?;
        Ok(SecuredBus {
            nats,
            credentials,
            registry: Arc::new(registry),
            _credentials_dir: dir,
            reader: None,
        })
    }

    /// Starts the case reader as its own NATS user (the stream must exist), verifying
    /// everything but signatures (the shipped registry lists no keys). Answering on return.
    pub async fn start_reader(&mut self) -> anyhow::Result<()> {
        let session = self.connect(&Identity::Reader).await?;
        let log = CaseLog::open(session.js.clone()).await?;
        let reader = Arc::new(CaseReader::new(log, None, READER_CACHED_CASES));
        self.reader = Some(reader.listen(session.client).await?);
        Ok(())
    }

    /// [`SecuredBus::start`], then what the operator creates before adapters connect: the
    /// stream, the inboxes of MOF, MOIC and the front office, the stuck bucket.
    pub async fn provisioned() -> anyhow::Result<Self> {
        Self::provisioned_with("").await
    }

    /// [`SecuredBus::provisioned`] on [`SecuredBus::start_with`]`(extra_config)`.
    pub async fn provisioned_with(extra_config: &str) -> anyhow::Result<Self> {
        let mut bus = Self::start_with(extra_config).await?;
        let operator = bus.connect(&Identity::Operator).await?;
        ensure_stream(&operator.js, &StreamSettings::development()).await?;
        for agency in ["MOF", "MOIC", FRONT] {
            ensure_inbox(&operator.js, &code(agency), &InboxSettings::default()).await?;
        }
        ensure_stuck_bucket(&operator.js).await?;
        bus.start_reader().await?;
        Ok(bus)
    }

    /// A connection as `identity`, with its nkey and [`REQUEST_TIMEOUT`].
    pub async fn connect(&self, identity: &Identity) -> anyhow::Result<Session> {
        let (tx, violations) = mpsc::unbounded_channel();
        let seed = self.credentials.seed(identity)?;
        let client = connect_options(identity, &seed)
            .request_timeout(Some(REQUEST_TIMEOUT))
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let Some(violation) = PermissionViolation::from_event(&event) {
                        let _ = tx.send(violation);
                    }
                }
            })
            .connect(self.nats.url())
            .await?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(REQUEST_TIMEOUT);
        Ok(Session {
            client,
            js,
            violations,
        })
    }

    /// The front office opens a case and hands it to `to`, through the real write path and
    /// with the front office's own credentials.
    pub async fn case_handed_to(&self, to: &str) -> anyhow::Result<CaseId> {
        let front = self.connect(&Identity::Agency(code(FRONT))).await?;
        let log = CaseLog::through_reader(front.js.clone(), code(FRONT), REQUEST_TIMEOUT);
        let written = open_and_hand_off(&log, &self.registry, to).await?;
        Ok(written.event.case_id)
    }

    /// The write request for `agency` doing `action` to the case now.
    pub fn request(&self, case_id: CaseId, agency: &str, action: Action) -> WriteRequest {
        write_request(case_id, agency, action, time::OffsetDateTime::now_utc())
    }

    /// `agency`'s adapter on this bus: connected as the agency's own NATS user, with its
    /// development token, `registry` (e.g. one with signing keys) and `signer`.
    pub fn adapter_config(
        &self,
        agency: &str,
        registry: Arc<Registry>,
        signer: Option<Signer>,
    ) -> anyhow::Result<AdapterConfig> {
        let code = code(agency);
        let seed = self
            .credentials
            .seed_file(&Identity::Agency(code.clone()))
            .ok_or_else(|| anyhow::anyhow!("no NATS seed for {agency}"))?;
        let mut config = AdapterConfig::new(
            code,
            Token::new(token_for(agency))?,
            registry,
            self.nats.url(),
        );
        config.nats = ConnectSettings::new([self.nats.url()]).with_seed(seed);
        config.signer = signer;
        config.reads = CaseReads::Reader;
        Ok(config)
    }

    /// Stream and consumer state as the operator sees it.
    pub async fn operator_js(&self) -> anyhow::Result<jetstream::Context> {
        Ok(self.connect(&Identity::Operator).await?.js)
    }
}
