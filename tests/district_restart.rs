//! A district office's adapter as a real process (`onedoor adapter --office-node`): it starts
//! while the link to the capital is cut and serves opens and hand-offs from the office's own
//! node; killed with SIGKILL in the middle of the catch-up after the link returns, and started
//! again, it delivers every outbox entry to the capital exactly once, in per-case order, leaves
//! nothing in the outbox, and `onedoor audit verify --all` passes.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream;
use onedoor_bus::outbox::{CONFLICT_STREAM, OUTBOX_STREAM};
use onedoor_bus::{CaseLog, STREAM_NAME, Signer};
use onedoor_case::CaseId;
use onedoor_natsauth::Identity;
use onedoor_proto::v1::agency_gateway_client::AgencyGatewayClient;
use onedoor_testkit::{
    BearerToken, DEADLINE, District, FRONT, TestAgency, eventually, inbox_pending, token_for,
};
use support::onedoor;

/// Cases the office opens while cut, each handed to MOIC: twice as many events.
const CASES: usize = 300;

/// What the office's adapter process is started with.
struct OfficeFiles {
    _dir: tempfile::TempDir,
    signing_key: PathBuf,
    key_id: String,
    public_keys: PathBuf,
    log: PathBuf,
    port: u16,
}

impl OfficeFiles {
    /// The office's signing key (owner-only) and its public half as a key file.
    fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let signer = Signer::generate(format!("{FRONT}-restart"));
        let signing_key = dir.path().join("office.seed");
        write_owner_only(&signing_key, &signer.seed_file_text())?;
        let public_keys = dir.path().join("public-keys.toml");
        std::fs::write(
            &public_keys,
            format!(
                "[[key]]\nagency = \"{FRONT}\"\nid = \"{}\"\npublic_key = \"{}\"\nvalid_from = 2020-01-01\n",
                signer.key_id(),
                signer.public_key_base64()
            ),
        )?;
        // A port of our own, so the restarted process listens where the clerk's client was.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        Ok(OfficeFiles {
            log: dir.path().join("adapter.log"),
            _dir: dir,
            signing_key,
            key_id: signer.key_id().to_owned(),
            public_keys,
            port,
        })
    }

    /// `onedoor adapter` for the front office, reaching the capital across the link.
    fn spawn(&self, district: &District) -> anyhow::Result<tokio::process::Child> {
        let seed = district
            .hub
            .credentials
            .seed_file(&Identity::Agency(district.office.clone()))
            .ok_or_else(|| anyhow::anyhow!("no NATS seed for the office"))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut command = tokio::process::Command::from(onedoor());
        command
            .args(["adapter", "--agency", FRONT])
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--nats-url", &format!("nats://{}", district.link.addr())])
            .arg("--nats-seed")
            .arg(seed)
            .arg("--signing-key")
            .arg(&self.signing_key)
            .args(["--key-id", &self.key_id])
            .arg("--keys")
            .arg(&self.public_keys)
            .args(["--token", &token_for(FRONT)])
            .args(["--office-node", &district.office_node.url()])
            .env("ONEDOOR_LOG", "info")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        Ok(command.spawn()?)
    }

    /// The clerk's system, talking to the office's adapter.
    async fn clerk(&self) -> anyhow::Result<TestAgency> {
        let channel =
            tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", self.port))?
                .connect_lazy();
        Ok(TestAgency {
            code: FRONT.to_owned(),
            client: AgencyGatewayClient::with_interceptor(channel, BearerToken(token_for(FRONT))),
        })
    }

    fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn write_owner_only(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

async fn messages(js: &jetstream::Context, stream: &str) -> anyhow::Result<u64> {
    Ok(js.get_stream(stream).await?.info().await?.state.messages)
}

/// The office opens `CASES` cases through its adapter and hands each to MOIC, all while cut.
async fn serve_while_cut(files: &OfficeFiles) -> anyhow::Result<Vec<String>> {
    let mut clerk = files.clerk().await?;
    let first = eventually(
        "the office's adapter serves with the link cut",
        DEADLINE,
        || {
            let mut clerk = TestAgency {
                code: FRONT.to_owned(),
                client: clerk.client.clone(),
            };
            async move { Ok(clerk.open_case("enterprise-registration").await.ok()) }
        },
    )
    .await?;
    let mut cases = vec![first.case_id];
    while cases.len() < CASES {
        cases.push(clerk.open_case("enterprise-registration").await?.case_id);
    }
    for case in &cases {
        let handed = clerk.hand_off(case, "MOIC").await?;
        anyhow::ensure!(
            handed.awaiting_link,
            "written across a cut link: {handed:?}"
        );
    }
    Ok(cases)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_adapter_killed_mid_catch_up_delivers_everything_once() -> anyhow::Result<()> {
    let district = District::start().await?;
    let operator = district.hub.operator_js().await?;
    let office = jetstream::new(district.office_client().await?);
    let files = OfficeFiles::new()?;

    // The capital is out of reach from the start: the adapter must start anyway.
    district.link.cut();
    let mut adapter = files.spawn(&district)?;
    let cases = serve_while_cut(&files).await?;
    let total = 2 * CASES as u64;
    assert_eq!(messages(&office, OUTBOX_STREAM).await?, total);
    assert_eq!(messages(&operator, STREAM_NAME).await?, 0);

    district.link.restore();
    eventually("the catch-up is under way", DEADLINE, || async {
        let national = messages(&operator, STREAM_NAME).await?;
        Ok((national >= 20).then_some(()).ok_or(national.to_string()))
    })
    .await?;
    adapter.kill().await?;
    let at_kill = messages(&operator, STREAM_NAME).await?;
    let left = messages(&office, OUTBOX_STREAM).await?;
    println!("killed after {at_kill} of {total} events reached the capital; {left} left");
    assert!(
        at_kill < total && left > 0,
        "the catch-up ended before the kill: the test tested nothing ({at_kill} delivered)"
    );

    let mut adapter = files.spawn(&district)?;
    eventually("the outbox is empty", Duration::from_secs(120), || async {
        let left = messages(&office, OUTBOX_STREAM).await?;
        let national = messages(&operator, STREAM_NAME).await?;
        Ok((left == 0 && national >= total)
            .then_some(())
            .ok_or(format!("{left} left, {national} national")))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", files.logged()))?;
    assert_eq!(
        messages(&operator, STREAM_NAME).await?,
        total,
        "exactly once"
    );
    assert_eq!(messages(&office, CONFLICT_STREAM).await?, 0);
    assert_eq!(inbox_pending(&operator, "MOIC").await?, CASES as u64);
    check_order(&district, &cases).await?;
    audit_verify(&district, &files).await?;
    adapter.kill().await?;
    Ok(())
}

/// Every case holds its open then its hand-off, versions 1 and 2, nothing quarantined.
async fn check_order(district: &District, cases: &[String]) -> anyhow::Result<()> {
    let auditor = district.hub.connect(&Identity::Auditor).await?;
    let log = CaseLog::open(auditor.js.clone()).await?;
    for case in cases {
        let verified = log.load_verified(CaseId::parse(case)?).await?;
        assert!(verified.quarantined.is_empty(), "{case}: {verified:?}");
        let versions: Vec<u64> = verified.accepted.iter().map(|s| s.event.version).collect();
        assert_eq!(versions, [1, 2], "case {case}");
    }
    Ok(())
}

/// `onedoor audit verify --all` as the auditor, with the office's public key.
async fn audit_verify(district: &District, files: &OfficeFiles) -> anyhow::Result<()> {
    let seed = district
        .hub
        .credentials
        .seed_file(&Identity::Auditor)
        .ok_or_else(|| anyhow::anyhow!("no NATS seed for the auditor"))?;
    let data_dir = tempfile::tempdir()?;
    let mut command = onedoor();
    command
        .args([
            "audit",
            "verify",
            "--all",
            "--nats-url",
            &district.hub.nats.url(),
        ])
        .arg("--nats-seed")
        .arg(seed)
        .arg("--keys")
        .arg(&files.public_keys)
        .arg("--data-dir")
        .arg(data_dir.path());
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "audit verify failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("ok: {CASES} case(s), {} event(s)", 2 * CASES)),
        "{stdout}"
    );
    Ok(())
}
