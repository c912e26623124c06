//! Who may read CaseTracker, over real TLS: agencies by their registry token (hashed) or their
//! own client certificate, confined to the cases they are part of; a supervisor token that
//! reads everything; every refusal with its code, and nothing of another agency's cases leaked.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt as _;
use onedoor_case::{AgencyCode, CaseId, TokenHash};
use onedoor_grpc::Token;
use onedoor_grpc::devpki::DevPki;
use onedoor_proto::v1;
use onedoor_proto::v1::case_tracker_client::CaseTrackerClient;
use onedoor_tracker::{GrpcAccess, ManualClock, Store, TlsIdentity};
use time::Duration as Span;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use onedoor_testkit::on_both_databases;
use onedoor_testkit::{
    FRONT, MONDAY, OTHER_FRONT, RunningTracker, TestBus, TestDb, shipped_registry,
    wait_until_projected,
};

const MOF_TOKEN: &str = "mof-token-0123456789abcdef";
const MOIC_TOKEN: &str = "moic-token-0123456789abcdef";
const MOIC_OLD_TOKEN: &str = "moic-old-token-0123456789";
const FRONT_TOKEN: &str = "front-token-0123456789abcdef";
const SUPERVISOR_TOKEN: &str = "supervisor-token-0123456789";

/// - `a`: SAYSETTHA → MPWT;
/// - `b`: SAYSETTHA → MOIC ∥ MOF;
/// - `c`: PAKSE, just opened;
/// - `d`: SAYSETTHA → MPWT, resolved;
/// - `e`: SAYSETTHA → MOF, completed by MOF (MOF held it, holds nothing now).
struct Cases {
    a: CaseId,
    b: CaseId,
    c: CaseId,
    d: CaseId,
    e: CaseId,
}

async fn cases(bus: &TestBus) -> anyhow::Result<Cases> {
    let t = |hours| MONDAY + Span::hours(hours);
    let a = bus
        .open(FRONT, "construction-permit", "A-1", "House", t(0))
        .await?;
    bus.hand_off(a, FRONT, "MPWT", Some(1), t(1)).await?;
    let b = bus
        .open(FRONT, "enterprise-registration", "B-2", "Shop", t(2))
        .await?;
    bus.hand_off(b, FRONT, "MOIC", Some(10), t(3)).await?;
    bus.hand_off(b, FRONT, "MOF", Some(10), t(3)).await?;
    let c = bus
        .open(OTHER_FRONT, "construction-permit", "C-3", "Warehouse", t(4))
        .await?;
    let d = bus
        .open(FRONT, "construction-permit", "D-4", "Garage", t(5))
        .await?;
    bus.hand_off(d, FRONT, "MPWT", None, t(6)).await?;
    bus.accept(d, "MPWT", t(7)).await?;
    bus.complete(d, "MPWT", t(8)).await?;
    bus.resolve(d, FRONT, t(9)).await?;
    let e = bus
        .open(FRONT, "enterprise-registration", "E-5", "Bakery", t(10))
        .await?;
    bus.hand_off(e, FRONT, "MOF", Some(10), t(11)).await?;
    bus.accept(e, "MOF", t(12)).await?;
    bus.complete(e, "MOF", t(13)).await?;
    Ok(Cases { a, b, c, d, e })
}

struct Fixture {
    _db: TestDb,
    _bus: TestBus,
    tracker: RunningTracker,
    pki: DevPki,
    cases: Cases,
}

fn code(text: &str) -> AgencyCode {
    AgencyCode::parse(text).expect("a registry code")
}

fn hashed(token: &str, label: &str, revoked: bool) -> TokenHash {
    TokenHash {
        label: label.to_owned(),
        sha256: Token::new(token).expect("long enough").sha256(),
        revoked,
    }
}

async fn fixture(db: TestDb) -> anyhow::Result<Fixture> {
    let bus = TestBus::start().await?;
    let cases = cases(&bus).await?;
    let mut registry = shipped_registry();
    for (agency, token, label, revoked) in [
        ("MOF", MOF_TOKEN, "mof", false),
        ("MOIC", MOIC_TOKEN, "moic", false),
        ("MOIC", MOIC_OLD_TOKEN, "moic-2025", true),
        (FRONT, FRONT_TOKEN, "front", false),
    ] {
        registry
            .add_token(&code(agency), hashed(token, label, revoked))
            .map_err(anyhow::Error::msg)?;
    }
    // MOPS has a certificate from the same CA that the tracker was not told about.
    let pki = DevPki::generate(["MOF", "MOIC", "MOPS"])?;
    let client_certs: Vec<_> = ["MOF", "MOIC"]
        .iter()
        .map(|agency| (code(agency), pki.clients[*agency].sha256))
        .collect();
    let clock = Arc::new(ManualClock::new(MONDAY + Span::hours(20)));
    let mut config = bus.tracker_config(&db, clock);
    config.grpc_access = Some(GrpcAccess::new(
        &registry,
        &[Token::new(SUPERVISOR_TOKEN)?.sha256()],
        &client_certs,
    ));
    config.registry = Arc::new(registry).into();
    config.tls = Some(TlsIdentity {
        cert_pem: pki.server.cert_pem.clone(),
        key_pem: pki.server.key_pem.clone(),
        client_ca_pem: Some(pki.ca_cert_pem.clone()),
    });
    let tracker = RunningTracker::start(config).await?;
    let store = Store::connect(&db.url()).await?;
    wait_until_projected(&bus, &store, &[cases.a, cases.b, cases.c, cases.d, cases.e]).await?;
    store.close().await;
    Ok(Fixture {
        _db: db,
        _bus: bus,
        tracker,
        pki,
        cases,
    })
}

type AddBearer =
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>;
type Client =
    CaseTrackerClient<tonic::service::interceptor::InterceptedService<Channel, AddBearer>>;

impl Fixture {
    fn https(&self) -> String {
        format!("https://{}", self.tracker.addr)
    }

    /// A TLS client trusting the dev CA, with `token` as bearer and `cert` (an agency's client
    /// certificate) when given.
    async fn client(&self, token: Option<&str>, cert: Option<&str>) -> anyhow::Result<Client> {
        let mut tls = ClientTlsConfig::new()
            .domain_name("localhost")
            .ca_certificate(Certificate::from_pem(&self.pki.ca_cert_pem));
        if let Some(agency) = cert {
            let key = &self.pki.clients[agency];
            tls = tls.identity(Identity::from_pem(&key.cert_pem, &key.key_pem));
        }
        let channel = Channel::from_shared(self.https())?
            .tls_config(tls)?
            .connect()
            .await?;
        let bearer = token
            .map(|t| MetadataValue::try_from(format!("Bearer {t}")))
            .transpose()?;
        let interceptor: AddBearer = Box::new(move |mut request: tonic::Request<()>| {
            if let Some(value) = &bearer {
                request
                    .metadata_mut()
                    .insert("authorization", value.clone());
            }
            Ok(request)
        });
        Ok(CaseTrackerClient::with_interceptor(channel, interceptor))
    }
}

fn set(ids: &[CaseId]) -> BTreeSet<String> {
    ids.iter().map(ToString::to_string).collect()
}

/// Every case the client can list, page by page with `page_size`, in order.
async fn list_all(
    client: &mut Client,
    mut request: v1::ListCasesRequest,
) -> Result<Vec<String>, tonic::Status> {
    let mut seen = Vec::new();
    loop {
        let page = client.list_cases(request.clone()).await?.into_inner();
        assert!(
            page.cases.len() <= request.page_size.max(1) as usize || request.page_size == 0,
            "a page never holds more than asked"
        );
        seen.extend(page.cases.into_iter().map(|c| c.case_id));
        if page.next_page_token.is_empty() {
            return Ok(seen);
        }
        request.page_token = page.next_page_token;
    }
}

async fn get(client: &mut Client, case: &str) -> Result<v1::CaseView, tonic::Status> {
    client
        .get_case(v1::GetCaseRequest {
            case_id: case.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn agencies_see_only_their_cases_and_the_supervisor_sees_all(
    db: TestDb,
) -> anyhow::Result<()> {
    let f = fixture(db).await?;
    let c = &f.cases;

    let mut supervisor = f.client(Some(SUPERVISOR_TOKEN), None).await?;
    let all = list_all(&mut supervisor, v1::ListCasesRequest::default()).await?;
    assert_eq!(
        all.iter().cloned().collect::<BTreeSet<_>>(),
        set(&[c.a, c.b, c.c, c.d, c.e])
    );
    for case in [c.a, c.b, c.c, c.d, c.e] {
        get(&mut supervisor, &case.to_string()).await?;
    }

    // MOF: b (holds a task) and e (held one), nothing else, in the listing's order, paged
    // one by one as well as all at once.
    let mut mof = f.client(Some(MOF_TOKEN), None).await?;
    let own = set(&[c.b, c.e]);
    for page_size in [0, 1, 2] {
        let listed = list_all(
            &mut mof,
            v1::ListCasesRequest {
                page_size,
                ..Default::default()
            },
        )
        .await?;
        assert_eq!(
            listed,
            [c.e.to_string(), c.b.to_string()],
            "page size {page_size}"
        );
    }
    // Filters still apply, within what MOF may see.
    let held_by_moic = list_all(
        &mut mof,
        v1::ListCasesRequest {
            holding_agency: "MOIC".into(),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(held_by_moic, [c.b.to_string()]);
    let resolved = list_all(
        &mut mof,
        v1::ListCasesRequest {
            statuses: vec![v1::CaseStatus::Resolved.into()],
            ..Default::default()
        },
    )
    .await?;
    assert!(
        resolved.is_empty(),
        "d is resolved but not MOF's: {resolved:?}"
    );
    for case in [c.b, c.e] {
        assert_eq!(
            get(&mut mof, &case.to_string()).await?.case_id,
            case.to_string()
        );
    }
    // Another agency's case is answered exactly like a case that does not exist.
    let missing = CaseId::generate().to_string();
    let unknown = get(&mut mof, &missing).await.expect_err("no such case");
    assert_eq!(unknown.code(), Code::NotFound);
    for case in [c.a, c.c, c.d] {
        let id = case.to_string();
        let hidden = get(&mut mof, &id).await.expect_err("not MOF's case");
        assert_eq!(hidden.code(), Code::NotFound, "{id}");
        assert_eq!(
            hidden.message().replace(&id, "ID"),
            unknown.message().replace(&missing, "ID"),
            "no existence leak"
        );
        let watched = mof
            .watch_case(v1::WatchCaseRequest {
                case_id: id.clone(),
                after_version: 0,
            })
            .await
            .expect_err("not MOF's case");
        assert_eq!(watched.code(), Code::NotFound);
    }
    // WatchCase on its own case streams it.
    let mut stream = mof
        .watch_case(v1::WatchCaseRequest {
            case_id: c.e.to_string(),
            after_version: 0,
        })
        .await?
        .into_inner();
    let first = stream.next().await.transpose()?.and_then(|r| r.event);
    assert_eq!(first.map(|e| e.case_id), Some(c.e.to_string()));

    // The front office sees the cases it opened, not Pakse's.
    let mut front = f.client(Some(FRONT_TOKEN), None).await?;
    let listed = list_all(&mut front, v1::ListCasesRequest::default()).await?;
    assert_eq!(
        listed.into_iter().collect::<BTreeSet<_>>(),
        set(&[c.a, c.b, c.d, c.e])
    );
    assert_eq!(
        get(&mut front, &c.c.to_string())
            .await
            .map(|_| ())
            .expect_err("Pakse's")
            .code(),
        Code::NotFound
    );

    // MOF by its client certificate alone: the same view.
    let mut by_cert = f.client(None, Some("MOF")).await?;
    let listed = list_all(&mut by_cert, v1::ListCasesRequest::default()).await?;
    assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), own);
    f.tracker.stop().await
}
on_both_databases!(agencies_see_only_their_cases_and_the_supervisor_sees_all);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_wrong_revoked_and_foreign_credentials_are_refused() -> anyhow::Result<()> {
    let f = fixture(TestDb::sqlite()).await?;
    let case = f.cases.b.to_string();
    let expect = async |client: &mut Client, code: Code, what: &str| -> anyhow::Result<String> {
        let listed = client
            .list_cases(v1::ListCasesRequest::default())
            .await
            .expect_err(what);
        assert_eq!(listed.code(), code, "{what}: {listed:?}");
        let got = get(client, &case).await.expect_err(what);
        assert_eq!(got.code(), code, "{what}: {got:?}");
        Ok(got.message().to_owned())
    };
    expect(
        &mut f.client(None, None).await?,
        Code::Unauthenticated,
        "no token",
    )
    .await?;
    expect(
        &mut f.client(Some("not-a-token-0123456789"), None).await?,
        Code::Unauthenticated,
        "wrong token",
    )
    .await?;
    let revoked = expect(
        &mut f.client(Some(MOIC_OLD_TOKEN), None).await?,
        Code::Unauthenticated,
        "revoked token",
    )
    .await?;
    assert!(revoked.contains("revoked"), "{revoked}");
    // MOF's certificate with MOIC's token: two identities, refused.
    expect(
        &mut f.client(Some(MOIC_TOKEN), Some("MOF")).await?,
        Code::PermissionDenied,
        "another agency's certificate",
    )
    .await?;
    // A certificate from the CA that the tracker does not know.
    expect(
        &mut f.client(Some(MOF_TOKEN), Some("MOPS")).await?,
        Code::PermissionDenied,
        "unknown certificate",
    )
    .await?;
    // No secret in any refusal.
    for token in [MOF_TOKEN, MOIC_TOKEN, MOIC_OLD_TOKEN] {
        assert!(!revoked.contains(token));
    }

    // Health stays anonymous, over TLS.
    let channel = Channel::from_shared(f.https())?
        .tls_config(
            ClientTlsConfig::new()
                .domain_name("localhost")
                .ca_certificate(Certificate::from_pem(&f.pki.ca_cert_pem)),
        )?
        .connect()
        .await?;
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "onedoor.v1.CaseTracker".into(),
        })
        .await?
        .into_inner();
    assert_eq!(
        health.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    // A plaintext client gets no answer from the TLS server, with a supervisor token even.
    let plain = Channel::from_shared(format!("http://{}", f.tracker.addr))?
        .connect()
        .await;
    if let Ok(channel) = plain {
        let mut client = CaseTrackerClient::new(channel);
        let mut request = tonic::Request::new(v1::ListCasesRequest::default());
        request.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(format!("Bearer {SUPERVISOR_TOKEN}"))?,
        );
        let refused = client.list_cases(request).await;
        assert!(refused.is_err(), "plaintext must not be served");
    }
    f.tracker.stop().await
}

/// The store's confined and agency-held listings against a brute-force answer, paged through
/// their cursors at every page size: ties on the opened time, an agency holding two tasks of
/// one case, agencies that both open cases and hold tasks (the two halves of "part of").
async fn confined_and_held_listings_page_exactly_like_brute_force(
    db: TestDb,
) -> anyhow::Result<()> {
    const SAYSETTHA: &str = "ODSC-VTE-SAYSETTHA";
    const PAKSE: &str = "ODSC-CPS-PAKSE";
    let url = db.url();
    let store = Store::connect(&url).await?;
    let origins = [SAYSETTHA, PAKSE, "MOF"];
    let holders = ["MOF", "MOIC", "MPWT", SAYSETTHA];
    // (case id, opened, origin) and (case id, agency, open).
    let mut cases = Vec::new();
    let mut tasks = Vec::new();
    for n in 0..40_usize {
        let id = format!("01KCASE{n:019}");
        cases.push((id.clone(), 1_000 + i64::try_from(n / 3)?, origins[n % 3]));
        for j in 0..(n * 7) % 4 {
            tasks.push((
                id.clone(),
                j,
                holders[(n * 5 + j * j) % 4],
                (n + j) % 3 != 0,
            ));
        }
    }
    // Written straight into the tables (after the migrations), each task with its case's
    // opened time as the projection writes it.
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url.expose()).await?;
    for (id, opened, origin) in &cases {
        sqlx::query(
            "INSERT INTO cases (case_id, service, origin_agency, status, resolution, citizen_ref, \
             summary, search_text, trace_id, opened_at_ns, resolved_at_ns, updated_at_ns, \
             version, open_tasks, next_due_ns, problem) VALUES ($1, 'construction-permit', $2, \
             'in_progress', NULL, 'R', 'S', 'r s', 'trace', $3, NULL, $3, 1, 0, NULL, NULL)",
        )
        .bind(id.clone())
        .bind(origin.to_string())
        .bind(*opened)
        .execute(&mut conn)
        .await?;
    }
    for (id, j, agency, open) in &tasks {
        let opened = cases
            .iter()
            .find(|(case, _, _)| case == id)
            .map(|(_, opened, _)| *opened);
        sqlx::query(
            "INSERT INTO tasks (case_id, handoff_event_id, agency, handed_by, service, state, \
             instructions, open_question, handed_off_at_ns, accepted_at_ns, due_at_ns, \
             ended_at_ns, ended_by, is_open, opened_at_ns) VALUES ($1, $2, $3, 'X', \
             'construction-permit', $4, '', NULL, 1, NULL, 5, $5, $6, $7, $8)",
        )
        .bind(id.clone())
        .bind(format!("h{j}"))
        .bind(agency.to_string())
        .bind(if *open { "pending" } else { "done" })
        .bind(if *open { None } else { Some(2_i64) })
        .bind(if *open { None } else { Some("completed") })
        .bind(i64::from(*open))
        .bind(opened)
        .execute(&mut conn)
        .await?;
    }
    sqlx::Connection::close(conn).await?;

    let mut ordered = cases.clone();
    ordered.sort_by(|a, b| (b.1, &b.0).cmp(&(a.1, &a.0)));
    let has_task = |id: &str, agency: &str, open_only: bool| {
        tasks
            .iter()
            .any(|(t, _, a, open)| t == id && *a == agency && (*open || !open_only))
    };
    let everyone = [SAYSETTHA, PAKSE, "MOF", "MOIC", "MPWT", "MOPS"];
    for holder in everyone.iter().map(Some).chain([None]) {
        for member in everyone.iter().map(Some).chain([None]) {
            let expected: Vec<String> = ordered
                .iter()
                .filter(|(id, _, origin)| {
                    holder.is_none_or(|h| has_task(id, h, true))
                        && member.is_none_or(|m| *origin == *m || has_task(id, m, false))
                })
                .map(|(id, _, _)| id.clone())
                .collect();
            let filter = onedoor_tracker::store::CaseFilter {
                holding_agency: holder.map(|h| code(h)),
                part_of: member.map(|m| code(m)),
                ..Default::default()
            };
            for page_size in 1..=7 {
                let mut listed = Vec::new();
                let mut after = None;
                loop {
                    let page = store
                        .list_cases(&filter, after.as_ref(), page_size, MONDAY)
                        .await?;
                    listed.extend(page.iter().map(|c| c.case_id.clone()));
                    let Some(last) = page.last() else { break };
                    if page.len() < page_size {
                        break;
                    }
                    after = Some(onedoor_tracker::store::Cursor {
                        opened_at_ns: i64::try_from(last.opened_at.unix_timestamp_nanos())?,
                        case_id: last.case_id.clone(),
                    });
                }
                assert_eq!(
                    listed, expected,
                    "held by {holder:?}, part of {member:?}, page size {page_size}"
                );
            }
        }
    }
    store.close().await;
    Ok(())
}
on_both_databases!(confined_and_held_listings_page_exactly_like_brute_force);
