//! `onedoor tracker`, `onedoor case show` and `onedoor case list` as staff run them: the real
//! binary, a real nats-server with cases written through the real write path, the tracker's
//! SQLite file in a temporary data dir.

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use onedoor_bus::{CaseLog, StreamSettings, WriteRequest, ensure_stream};
use onedoor_case::{Action, AgencyCode, CaseId, Command, EventId, Registry, ServiceCode};
use onedoor_proto::v1;
use onedoor_proto::v1::case_tracker_client::CaseTrackerClient;
use onedoor_testkit::TestNats;
use support::{DEADLINE, onedoor, terminate};
use time::OffsetDateTime;

const FRONT: &str = "ODSC-VTE-SAYSETTHA";
/// The supervisor token the tests' tracker accepts (it is given only the hash).
const SUPERVISOR: &str = "supervisor-token-for-cli-tests-0123";

/// A bus with cases on it and `onedoor tracker` running against it.
struct Staff {
    nats: TestNats,
    log: CaseLog,
    registry: Arc<Registry>,
    data_dir: tempfile::TempDir,
    tracker: Child,
    url: String,
}

impl Staff {
    async fn start() -> anyhow::Result<Self> {
        Self::start_with(&[]).await
    }

    /// `onedoor tracker` with `extra` flags besides its NATS, data dir and supervisor token.
    async fn start_with(extra: &[&std::ffi::OsStr]) -> anyhow::Result<Self> {
        let nats = TestNats::start().await?;
        let js = nats.jetstream().await?;
        ensure_stream(&js, &StreamSettings::development()).await?;
        let registry = Registry::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2025.toml"),
        )?;
        let data_dir = tempfile::tempdir()?;
        let supervisor_hash =
            onedoor_grpc::tls::hex(&onedoor_grpc::Token::new(SUPERVISOR)?.sha256());
        let mut tracker = onedoor()
            .args(["tracker", "--listen", "127.0.0.1:0", "--nats-url"])
            .arg(nats.url())
            .arg("--supervisor-token-sha256")
            .arg(supervisor_hash)
            .args(extra)
            .arg("--data-dir")
            .arg(data_dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let url = grpc_url(&mut tracker)?;
        Ok(Staff {
            log: CaseLog::open(js).await?,
            nats,
            registry: Arc::new(registry),
            data_dir,
            tracker,
            url,
        })
    }

    async fn act(
        &self,
        case_id: CaseId,
        agency: &str,
        action: Action,
        at: OffsetDateTime,
    ) -> anyhow::Result<u64> {
        let request = write_request(case_id, agency, action, at)?;
        Ok(self
            .log
            .execute(&request, &self.registry)
            .await?
            .event
            .version)
    }

    /// A case opened two weeks ago and handed to `to` with one working day: long overdue.
    async fn overdue_case(&self, to: &str, citizen_ref: &str) -> anyhow::Result<CaseId> {
        let at = OffsetDateTime::now_utc() - time::Duration::days(14);
        let case_id = CaseId::generate();
        let open = Action::Open {
            service: ServiceCode::parse("construction-permit")?,
            citizen_ref: citizen_ref.into(),
            summary: "family house".into(),
            documents: vec![],
        };
        self.act(case_id, FRONT, open, at).await?;
        let hand_off = Action::HandOff {
            to: AgencyCode::parse(to)?,
            instructions: "check the plans".into(),
            documents: vec![],
            due_working_days: Some(1),
        };
        let version = self
            .act(case_id, FRONT, hand_off, at + time::Duration::hours(1))
            .await?;
        self.wait_for(case_id, version).await?;
        Ok(case_id)
    }

    /// Polls the tracker until it shows `case_id` at `version`.
    async fn wait_for(&self, case_id: CaseId, version: u64) -> anyhow::Result<()> {
        let mut client = CaseTrackerClient::connect(self.url.clone()).await?;
        let started = Instant::now();
        loop {
            let mut request = tonic::Request::new(v1::GetCaseRequest {
                case_id: case_id.to_string(),
            });
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {SUPERVISOR}").parse()?);
            let view = client.get_case(request).await;
            if matches!(&view, Ok(v) if v.get_ref().version == version) {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < DEADLINE,
                "case {case_id} not at version {version} in time: {view:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A data dir whose endpoints.json lists the tracker, as `onedoor up` writes it.
    fn endpoints_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = self.data_dir.path().join("bus");
        std::fs::create_dir_all(&dir)?;
        let endpoints = serde_json::json!({
            "version": 1, "pid": std::process::id(), "started_at": "2026-11-27T00:00:00Z",
            "registry": "built-in", "agencies": {},
            "nats": { "url": "nats://127.0.0.1:1", "monitor_url": "", "stream": "ONEDOOR", "server_version": "2.15.1" },
            "tracker": { "grpc": self.url, "supervisor_token": SUPERVISOR },
        });
        std::fs::write(
            dir.join("endpoints.json"),
            serde_json::to_vec_pretty(&endpoints)?,
        )?;
        Ok(dir)
    }
}

impl Drop for Staff {
    fn drop(&mut self) {
        if self.tracker.try_wait().ok().flatten().is_none() {
            let _ = self.tracker.kill();
            let _ = self.tracker.wait();
        }
    }
}

/// `agency` doing `action` to `case_id` at `at`, as clerk-1, under a fresh key.
fn write_request(
    case_id: CaseId,
    agency: &str,
    action: Action,
    at: OffsetDateTime,
) -> anyhow::Result<WriteRequest> {
    Ok(WriteRequest {
        case_id,
        event_id: EventId::generate(),
        command: Command {
            agency: AgencyCode::parse(agency)?,
            actor: "clerk-1".into(),
            at,
            action,
        },
        idempotency_key: format!("k-{}", EventId::generate()),
        caller_trace: None,
    })
}

/// Reads the tracker's start-up lines until it prints its gRPC address.
fn grpc_url(child: &mut Child) -> anyhow::Result<String> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.trim().strip_prefix("gRPC") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    Ok(rx.recv_timeout(DEADLINE)?)
}

/// `onedoor case ARGS`; with `--tracker` (no endpoints.json to find a token in) the
/// supervisor token goes along.
fn case(args: &[&str], data_dir: Option<&Path>) -> Output {
    let mut command = onedoor();
    command.arg("case").args(args);
    if args.contains(&"--tracker") {
        command.args(["--token", SUPERVISOR]);
    }
    if let Some(dir) = data_dir {
        command.arg("--data-dir").arg(dir);
    }
    command.output().expect("onedoor case runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_no_crash(output: &Output) {
    let err = stderr(output);
    assert!(
        !err.contains("panicked") && !err.contains("stack backtrace"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_show_prints_the_timeline_with_overdue_marked_and_json_parses() -> anyhow::Result<()> {
    let mut staff = Staff::start().await?;
    let case_id = staff.overdue_case("MPWT", "LA-REF-9").await?;
    let id = case_id.to_string();

    let out = case(&["show", &id, "--tracker", &staff.url], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for wanted in [
        &id[..],
        "construction-permit",
        "in_progress",
        "Timeline",
        "MPWT",
        "OVERDUE",
        "→",
        "so far",
    ] {
        assert!(text.contains(wanted), "{wanted:?} missing from:\n{text}");
    }

    let out = case(
        &[
            "show",
            &id.to_lowercase(),
            "--json",
            "--tracker",
            &staff.url,
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(json["case_id"], id.as_str());
    assert_eq!(json["overdue"], true);
    assert_eq!(json["open_tasks"][0]["agency"], "MPWT");
    assert_eq!(json["open_tasks"][0]["overdue"], true);
    let timeline = json["timeline"].as_array().expect("timeline");
    assert_eq!(timeline.len(), 2);
    assert_eq!(timeline[1]["kind"], "handed_off");
    assert!(timeline[1]["held_seconds"].as_i64().unwrap_or(0) > 13 * 24 * 3600);

    assert!(
        terminate(&mut staff.tracker).success(),
        "the tracker stops cleanly on SIGTERM"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_list_finds_the_tracker_in_endpoints_json_and_filters() -> anyhow::Result<()> {
    let staff = Staff::start().await?;
    let at_mpwt = staff.overdue_case("MPWT", "LA-REF-1").await?;
    let at_mof = staff.overdue_case("MOF", "LA-REF-2").await?;
    let dir = staff.endpoints_dir()?;

    let out = case(&["list", "--json"], Some(&dir));
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(json["cases"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["truncated"], false);

    let out = case(
        &["list", "--json", "--agency", "MOF", "--overdue"],
        Some(&dir),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let cases = json["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["case_id"], at_mof.to_string());

    let out = case(
        &[
            "list",
            "--service",
            "construction-permit",
            "--front-office",
            FRONT,
            "--status",
            "in-progress",
        ],
        Some(&dir),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&at_mpwt.to_string()) && text.contains(&at_mof.to_string()),
        "{text}"
    );
    assert!(text.contains("2 case(s)"), "{text}");

    let out = case(&["list", "--json", "--status", "resolved"], Some(&dir));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(json["cases"].as_array().map(Vec::len), Some(0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_ids_and_an_unreachable_tracker_get_clear_messages()
-> anyhow::Result<()> {
    let staff = Staff::start().await?;
    let unknown = CaseId::generate().to_string();
    let out = case(&["show", &unknown, "--tracker", &staff.url], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("no case {unknown}")),
        "{}",
        stderr(&out)
    );
    assert_no_crash(&out);

    let out = case(&["show", "not-a-case", "--tracker", &staff.url], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not a ULID"), "{}", stderr(&out));
    assert_no_crash(&out);

    let out = case(&["list", "--agency", "mof!", "--tracker", &staff.url], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("holding_agency"), "{}", stderr(&out));
    assert_no_crash(&out);

    // Nothing listens on port 1.
    let out = case(&["show", &unknown, "--tracker", "http://127.0.0.1:1"], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot reach the tracker at http://127.0.0.1:1"),
        "{}",
        stderr(&out)
    );
    assert_no_crash(&out);

    // No flag and no running bus in the data dir.
    let empty = tempfile::tempdir()?;
    let out = case(&["list"], Some(empty.path()));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no tracker address"),
        "{}",
        stderr(&out)
    );
    assert_no_crash(&out);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracker_stats_and_stuck_show_overdue_tasks_and_stuck_deliveries() -> anyhow::Result<()> {
    let staff = Staff::start().await?;
    let case_id = staff.overdue_case("MPWT", "LA-REF-5").await?;
    let tracker = |args: &[&str]| {
        onedoor()
            .arg("tracker")
            .args(args)
            .arg("--data-dir")
            .arg(staff.data_dir.path())
            .arg("--nats-url")
            .arg(staff.nats.url())
            .output()
            .expect("onedoor tracker runs")
    };

    let out = tracker(&["stats", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let overdue = json["overdue_tasks"].as_array().expect("overdue_tasks");
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0]["case_id"], case_id.to_string());
    assert_eq!(overdue[0]["agency"], "MPWT");
    assert!(overdue[0]["working_days_late"].as_u64().unwrap_or(0) >= 5);
    assert!(!json["days"].as_array().expect("days").is_empty());
    assert_eq!(json["rejected_messages"].as_array().map(Vec::len), Some(0));

    // A data dir with no tracker database is an error, not an empty report (nor a new file).
    let empty = tempfile::tempdir()?;
    let out = onedoor()
        .args(["tracker", "stats", "--data-dir"])
        .arg(empty.path())
        .output()?;
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no tracker database"),
        "{}",
        stderr(&out)
    );
    assert!(!empty.path().join("tracker.db").exists());

    let out = tracker(&["stuck"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("No stuck deliveries."),
        "{}",
        stdout(&out)
    );

    let js = staff.nats.jetstream().await?;
    let bucket = onedoor_bus::stuck::ensure_stuck_bucket(&js).await?;
    let record = onedoor_bus::stuck::StuckRecord {
        agency: "MPWT".into(),
        case_id: case_id.to_string(),
        event_id: EventId::generate().to_string(),
        stream_sequence: 2,
        deliveries: 5,
        recorded_at: OffsetDateTime::now_utc(),
        reason: onedoor_bus::stuck::exhausted_reason(5),
    };
    onedoor_bus::stuck::record_stuck(&bucket, &record).await?;
    let out = tracker(&["stuck", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(json["stuck"][0]["agency"], "MPWT");
    assert_eq!(json["stuck"][0]["case_id"], case_id.to_string());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracker_refuses_case_commands_without_a_valid_token() -> anyhow::Result<()> {
    let staff = Staff::start().await?;
    let case_id = staff.overdue_case("MPWT", "LA-REF-7").await?;
    let empty = tempfile::tempdir()?;
    for token in [None, Some("not-the-supervisor-token-0123")] {
        let mut command = onedoor();
        command
            .args([
                "case",
                "show",
                &case_id.to_string(),
                "--tracker",
                &staff.url,
            ])
            .arg("--data-dir")
            .arg(empty.path());
        if let Some(token) = token {
            command.args(["--token", token]);
        }
        let out = command.output()?;
        assert!(!out.status.success(), "{token:?}");
        let err = stderr(&out);
        assert!(err.contains("refused the credentials"), "{err}");
        assert!(
            !stdout(&out).contains(&case_id.to_string()),
            "nothing shown"
        );
        assert_no_crash(&out);
    }
    Ok(())
}

/// `onedoor tracker` over TLS with a development certificate (names `localhost`, `127.0.0.1`
/// and `::1`), MOF's client certificate accepted; the directory holds `ca.pem`.
async fn tls_staff() -> anyhow::Result<(Staff, tempfile::TempDir)> {
    let pki = onedoor_grpc::devpki::DevPki::generate(["MOF"])?;
    let files = tempfile::tempdir()?;
    let write = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
        let path = files.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let cert = write("server.pem", &pki.server.cert_pem)?;
    let key = write("server-key.pem", &pki.server.key_pem)?;
    // As an operator keeps it: the tracker refuses a private key others can read.
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let ca = write("ca.pem", &pki.ca_cert_pem)?;
    let mof = write("mof.pem", &pki.clients["MOF"].cert_pem)?;
    let mof_flag = format!("MOF={}", mof.display());
    let staff = Staff::start_with(&[
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
        "--client-ca".as_ref(),
        ca.as_os_str(),
        "--client-cert".as_ref(),
        mof_flag.as_ref(),
    ])
    .await?;
    Ok((staff, files))
}

/// `onedoor case list --json` against `url` with the supervisor token, and these flags.
fn list_cases(url: &str, flags: &[&std::ffi::OsStr]) -> anyhow::Result<Output> {
    let empty = tempfile::tempdir()?;
    Ok(onedoor()
        .args([
            "case",
            "list",
            "--json",
            "--tracker",
            url,
            "--token",
            SUPERVISOR,
        ])
        .arg("--data-dir")
        .arg(empty.path())
        .args(flags)
        .output()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_tracker_serves_case_commands_that_trust_its_ca_and_plaintext_is_told_why()
-> anyhow::Result<()> {
    let (staff, files) = tls_staff().await?;
    let ca = files.path().join("ca.pem");
    assert!(staff.url.starts_with("https://"), "{}", staff.url);
    let empty = tempfile::tempdir()?;
    let run = |url: &str, ca: Option<&Path>| match ca {
        Some(ca) => list_cases(url, &["--ca-cert".as_ref(), ca.as_os_str()]),
        None => list_cases(url, &[]),
    };
    let out = run(&staff.url, Some(&ca))?;
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert!(json["cases"].is_array());

    // Without the CA the server is not trusted; over plaintext it is not spoken to.
    let out = run(&staff.url, None)?;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--ca-cert"), "{}", stderr(&out));
    assert_no_crash(&out);
    let plain = staff.url.replacen("https://", "http://", 1);
    let out = run(&plain, None)?;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("use https://"), "{}", stderr(&out));
    assert_no_crash(&out);

    // Plaintext beyond loopback is refused before anything is served.
    let out = onedoor()
        .args([
            "tracker",
            "--listen",
            "0.0.0.0:0",
            "--nats-url",
            "nats://127.0.0.1:1",
        ])
        .arg("--data-dir")
        .arg(empty.path())
        .output()?;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--tls-cert"), "{}", stderr(&out));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracker_certificate_is_checked_against_the_url_host_or_tls_server_name()
-> anyhow::Result<()> {
    let (staff, files) = tls_staff().await?;
    let ca = files.path().join("ca.pem");
    let ca_flag = ["--ca-cert".as_ref(), ca.as_os_str()];
    let by_localhost = staff.url.replacen("127.0.0.1", "localhost", 1);
    for url in [&staff.url, &by_localhost] {
        let out = list_cases(url, &ca_flag)?;
        assert!(out.status.success(), "{url}: {}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout)?;
    }

    // A name the certificate does not carry is refused, whatever address is dialled.
    let elsewhere = [
        &ca_flag[..],
        &["--tls-server-name".as_ref(), "tracker.gov.la".as_ref()],
    ]
    .concat();
    let out = list_cases(&staff.url, &elsewhere)?;
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("--tls-server-name"),
        "{}",
        stderr(&out)
    );
    assert_no_crash(&out);

    // The flag names what the certificate must carry when the URL's host is not it.
    let named = [
        &ca_flag[..],
        &["--tls-server-name".as_ref(), "localhost".as_ref()],
    ]
    .concat();
    let out = list_cases(&staff.url, &named)?;
    assert!(out.status.success(), "{}", stderr(&out));
    Ok(())
}

/// Text that would recolour the terminal (ANSI) and reverse what follows (U+202E), stored the way
/// an event written before the input rules holds it.
const HOSTILE_SUMMARY: &str = "red \x1b[31mALERT\x1b[0m \u{202e}fdp.exe\nFAKE LINE";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_show_and_list_escape_control_and_bidi_characters_already_stored() -> anyhow::Result<()>
{
    let staff = Staff::start().await?;
    let case_id = CaseId::generate();
    let open = Action::Open {
        service: ServiceCode::parse("construction-permit")?,
        citizen_ref: "placeholder".into(),
        summary: "placeholder".into(),
        documents: vec![],
    };
    let request = write_request(case_id, FRONT, open, OffsetDateTime::now_utc())?;
    // The rules now refuse this text, so it is put into a prepared event after they ran and
    // appended directly, as the bus held it before the rules existed.
    let mut prepared = onedoor_bus::prepare(&[], &request, &staff.registry, None)?;
    let Some(v1::case_event::Body::Opened(opened)) = prepared.wire.body.as_mut() else {
        anyhow::bail!("not an opening");
    };
    opened.summary = HOSTILE_SUMMARY.into();
    opened.citizen_ref = "REF\u{2067}-7\x07".into();
    staff.log.append(&prepared, 0).await?;
    staff.wait_for(case_id, 1).await?;
    let id = case_id.to_string();

    let out = case(&["show", &id, "--tracker", &staff.url], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = case(&["list", "--tracker", &staff.url], None);
    assert!(list.status.success(), "{}", stderr(&list));
    for (command, output) in [("show", &out), ("list", &list)] {
        let text = stdout(output);
        let raw = text
            .chars()
            .find(|c| (c.is_control() && *c != '\n') || ('\u{202a}'..='\u{2069}').contains(c));
        assert_eq!(raw, None, "case {command} printed a raw control:\n{text:?}");
        assert!(
            text.contains("REF\\u{2067}-7\\x07"),
            "case {command} escapes the citizen ref:\n{text}"
        );
    }
    let shown = stdout(&out);
    assert!(
        shown.contains("red \\x1b[31mALERT\\x1b[0m \\u{202e}fdp.exe\\nFAKE LINE"),
        "the summary is shown escaped, on one line:\n{shown}"
    );
    assert!(!shown.lines().any(|l| l.starts_with("FAKE LINE")));
    Ok(())
}
