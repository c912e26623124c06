//! The `CaseTracker` gRPC contract against a running tracker: filters, pagination, WatchCase,
//! status codes for malformed and unknown ids, health and reflection.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use onedoor_case::CaseId;
use onedoor_proto::v1;
use onedoor_tracker::{ManualClock, Store};
use time::Duration as Span;
use tonic::Code;

use onedoor_testkit::on_both_databases;
use onedoor_testkit::{
    DEADLINE, FRONT, MONDAY, OTHER_FRONT, RunningTracker, TestBus, TestDb, eventually,
    wait_until_projected,
};

/// A small, known set of cases:
/// - `a`: SAYSETTHA, construction-permit, at MPWT (accepted), due in 1 working day;
/// - `b`: SAYSETTHA, enterprise-registration, at MOIC and MOF (parallel), 10 working days;
/// - `c`: PAKSE, construction-permit, just opened (at the front office);
/// - `d`: SAYSETTHA, construction-permit, resolved.
struct Cases {
    a: CaseId,
    b: CaseId,
    c: CaseId,
    d: CaseId,
}

async fn known_cases(bus: &TestBus) -> anyhow::Result<Cases> {
    let t = |hours| MONDAY + Span::hours(hours);
    let a = bus
        .open(
            FRONT,
            "construction-permit",
            "LA-A-001",
            "Family house in Sisattanak",
            t(0),
        )
        .await?;
    bus.hand_off(a, FRONT, "MPWT", Some(1), t(1)).await?;
    bus.accept(a, "MPWT", t(2)).await?;
    let b = bus
        .open(
            FRONT,
            "enterprise-registration",
            "LA-B-002",
            "ຮ້ານຂາຍເຄື່ອງ Trading company",
            t(3),
        )
        .await?;
    bus.hand_off(b, FRONT, "MOIC", Some(10), t(4)).await?;
    bus.hand_off(b, FRONT, "MOF", Some(10), t(4)).await?;
    let c = bus
        .open(
            OTHER_FRONT,
            "construction-permit",
            "LA-C-003",
            "Warehouse 100% steel",
            t(5),
        )
        .await?;
    let d = bus
        .open(FRONT, "construction-permit", "LA-D-004", "Garage", t(6))
        .await?;
    bus.hand_off(d, FRONT, "MPWT", None, t(7)).await?;
    bus.accept(d, "MPWT", t(8)).await?;
    bus.complete(d, "MPWT", t(9)).await?;
    bus.resolve(d, FRONT, t(10)).await?;
    Ok(Cases { a, b, c, d })
}

struct Fixture {
    _db: TestDb,
    bus: TestBus,
    tracker: RunningTracker,
    clock: Arc<ManualClock>,
    cases: Cases,
}

async fn fixture(db: TestDb) -> anyhow::Result<Fixture> {
    let bus = TestBus::start().await?;
    let cases = known_cases(&bus).await?;
    let clock = Arc::new(ManualClock::new(MONDAY + Span::hours(12)));
    let tracker = RunningTracker::start(bus.tracker_config(&db, clock.clone())).await?;
    let store = Store::connect(&db.url()).await?;
    wait_until_projected(&bus, &store, &[cases.a, cases.b, cases.c, cases.d]).await?;
    Ok(Fixture {
        _db: db,
        bus,
        tracker,
        clock,
        cases,
    })
}

fn ids(cases: &[v1::CaseView]) -> Vec<String> {
    cases.iter().map(|c| c.case_id.clone()).collect()
}

fn set(ids: &[CaseId]) -> BTreeSet<String> {
    ids.iter().map(ToString::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_case_shows_status_tasks_timeline_and_trace() -> anyhow::Result<()> {
    let f = fixture(TestDb::sqlite()).await?;
    let mut client = f.tracker.client().await?;
    let view = client
        .get_case(v1::GetCaseRequest {
            case_id: f.cases.b.to_string(),
        })
        .await?
        .into_inner();
    assert_eq!(view.status(), v1::CaseStatus::InProgress);
    assert_eq!(view.service, "enterprise-registration");
    assert_eq!(view.origin_agency, FRONT);
    assert_eq!(view.trace_id.len(), 32);
    let holders: Vec<&str> = view.open_tasks.iter().map(|t| t.agency.as_str()).collect();
    assert_eq!(holders.len(), 2);
    assert!(holders.contains(&"MOIC") && holders.contains(&"MOF"));
    assert!(view.open_tasks.iter().all(|t| t.due_at.is_some()));
    let versions: Vec<u64> = view.events.iter().map(|e| e.case_version).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert!(view.events.iter().all(|e| e.trace_id == view.trace_id));

    let resolved = client
        .get_case(v1::GetCaseRequest {
            case_id: f.cases.d.to_string(),
        })
        .await?
        .into_inner();
    assert_eq!(resolved.status(), v1::CaseStatus::Resolved);
    assert_eq!(resolved.resolution(), v1::Resolution::Approved);
    assert!(resolved.resolved_at.is_some() && resolved.open_tasks.is_empty());
    Ok(())
}

async fn list_cases_applies_every_filter(db: TestDb) -> anyhow::Result<()> {
    let f = fixture(db).await?;
    let c = &f.cases;
    let mut client = f.tracker.client().await?;
    let mut list = async |request: v1::ListCasesRequest| -> anyhow::Result<BTreeSet<String>> {
        let cases = client.list_cases(request).await?.into_inner().cases;
        assert!(
            cases.iter().all(|c| c.events.is_empty()),
            "listings carry no timeline"
        );
        Ok(ids(&cases).into_iter().collect())
    };
    let all = list(v1::ListCasesRequest::default()).await?;
    assert_eq!(all, set(&[c.a, c.b, c.c, c.d]));

    let mof = list(v1::ListCasesRequest {
        holding_agency: "MOF".into(),
        ..Default::default()
    })
    .await?;
    assert_eq!(mof, set(&[c.b]));

    let by_status = list(v1::ListCasesRequest {
        statuses: vec![
            v1::CaseStatus::AtFrontOffice.into(),
            v1::CaseStatus::Resolved.into(),
        ],
        ..Default::default()
    })
    .await?;
    assert_eq!(by_status, set(&[c.c, c.d]));

    let pakse = list(v1::ListCasesRequest {
        origin_agency: OTHER_FRONT.into(),
        ..Default::default()
    })
    .await?;
    assert_eq!(pakse, set(&[c.c]));

    let service = list(v1::ListCasesRequest {
        service: "enterprise-registration".into(),
        ..Default::default()
    })
    .await?;
    assert_eq!(service, set(&[c.b]));

    // Text: citizen reference, summary (any case, Lao script, LIKE wildcards taken literally)
    // and the case id itself.
    for (text, expected) in [
        ("la-a-001", set(&[c.a])),
        ("SISATTANAK", set(&[c.a])),
        ("ຮ້ານຂາຍ", set(&[c.b])),
        ("100%", set(&[c.c])),
        ("%", set(&[c.c])),
        ("_", BTreeSet::new()),
        (&c.d.to_string()[..], set(&[c.d])),
    ] {
        let found = list(v1::ListCasesRequest {
            text: text.into(),
            ..Default::default()
        })
        .await?;
        assert_eq!(found, expected, "text {text:?}");
    }

    // Overdue: case a's task (1 working day from Monday) falls due at the end of Tuesday.
    let overdue = |now| {
        f.clock.set(now);
        v1::ListCasesRequest {
            overdue_only: true,
            ..Default::default()
        }
    };
    assert!(list(overdue(MONDAY + Span::days(1))).await?.is_empty());
    assert_eq!(list(overdue(MONDAY + Span::days(2))).await?, set(&[c.a]));

    // Filters combine.
    let combined = list(v1::ListCasesRequest {
        holding_agency: "MPWT".into(),
        origin_agency: FRONT.into(),
        statuses: vec![v1::CaseStatus::InProgress.into()],
        ..Default::default()
    })
    .await?;
    assert_eq!(combined, set(&[c.a]));
    Ok(())
}
on_both_databases!(list_cases_applies_every_filter);

async fn list_cases_pages_through_every_case_once_newest_first(db: TestDb) -> anyhow::Result<()> {
    let f = fixture(db).await?;
    // More cases, several opened at the very same moment, so ties are broken by case id.
    let mut more = Vec::new();
    for i in 0..7 {
        let at = MONDAY + Span::hours(20 + i / 3);
        more.push(
            f.bus
                .open(FRONT, "vehicle-registration", &format!("V-{i}"), "car", at)
                .await?,
        );
    }
    let store = Store::connect(&f._db.url()).await?;
    wait_until_projected(&f.bus, &store, &more).await?;
    let mut client = f.tracker.client().await?;

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_cases(v1::ListCasesRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        pages += 1;
        assert!(page.cases.len() <= 3);
        seen.extend(page.cases);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(seen.len(), 11, "every case exactly once");
    let unique: BTreeSet<_> = ids(&seen).into_iter().collect();
    assert_eq!(unique.len(), 11);
    let order: Vec<(i64, i32, String)> = seen
        .iter()
        .map(|c| {
            let at = c.opened_at.expect("opened_at");
            (at.seconds, at.nanos, c.case_id.clone())
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(order, sorted, "newest opened first, then case id");

    // A token is bound to its filters, and garbage is refused.
    let first = client
        .list_cases(v1::ListCasesRequest {
            page_size: 2,
            ..Default::default()
        })
        .await?
        .into_inner();
    for bad in [
        v1::ListCasesRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        },
        v1::ListCasesRequest {
            page_token: first.next_page_token.clone(),
            service: "vehicle-registration".into(),
            ..Default::default()
        },
    ] {
        let status = client.list_cases(bad).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains("page_token"),
            "{}",
            status.message()
        );
    }
    Ok(())
}
on_both_databases!(list_cases_pages_through_every_case_once_newest_first);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_case_sends_the_history_then_new_events_and_ends_after_resolution()
-> anyhow::Result<()> {
    let f = fixture(TestDb::sqlite()).await?;
    let case_id = f.cases.a;
    let mut client = f.tracker.client().await?;
    let mut stream = client
        .watch_case(v1::WatchCaseRequest {
            case_id: case_id.to_string(),
            after_version: 1,
        })
        .await?
        .into_inner();
    let mut next = async || -> anyhow::Result<v1::CaseEvent> {
        let item = tokio::time::timeout(DEADLINE, stream.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("stream ended"))??;
        item.event.ok_or_else(|| anyhow::anyhow!("no event"))
    };
    // Already stored: versions 2 and 3 (after_version 1 skips the opening).
    assert_eq!(next().await?.case_version, 2);
    assert_eq!(next().await?.case_version, 3);

    // New events arrive as they are projected.
    let later = MONDAY + Span::hours(30);
    let completed = f.bus.complete(case_id, "MPWT", later).await?;
    let event = next().await?;
    assert_eq!(event.case_version, 4);
    assert_eq!(event.event_id, completed.event.event_id.to_string());
    f.bus
        .resolve(case_id, FRONT, later + Span::hours(1))
        .await?;
    assert_eq!(next().await?.kind(), Some("resolved"));
    let end = tokio::time::timeout(DEADLINE, stream.next()).await?;
    assert!(
        end.is_none(),
        "the stream ends after the resolution: {end:?}"
    );

    // Resuming after the end returns at once, empty.
    let mut resumed = client
        .watch_case(v1::WatchCaseRequest {
            case_id: case_id.to_string(),
            after_version: 5,
        })
        .await?
        .into_inner();
    let end = tokio::time::timeout(DEADLINE, resumed.next()).await?;
    assert!(end.is_none(), "{end:?}");

    // Resuming in the middle gives exactly what followed.
    let resumed: Vec<u64> = client
        .watch_case(v1::WatchCaseRequest {
            case_id: case_id.to_string(),
            after_version: 3,
        })
        .await?
        .into_inner()
        .map(|item| item.map(|i| i.event.map_or(0, |e| e.case_version)))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    assert_eq!(resumed, [4, 5]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ids_are_invalid_argument_and_unknown_cases_are_not_found() -> anyhow::Result<()>
{
    let f = fixture(TestDb::sqlite()).await?;
    let mut client = f.tracker.client().await?;
    for bad in ["", "not-a-ulid", "01jd8x3q6v9k2m4n5p7r8s9t0v"] {
        let status = client
            .get_case(v1::GetCaseRequest {
                case_id: bad.into(),
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}: {status:?}");
        assert!(status.message().contains("case_id"), "{}", status.message());
        let status = client
            .watch_case(v1::WatchCaseRequest {
                case_id: bad.into(),
                after_version: 0,
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    let unknown = CaseId::generate().to_string();
    let status = client
        .get_case(v1::GetCaseRequest {
            case_id: unknown.clone(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains(&unknown), "{}", status.message());
    // Even a refusal names a trace the caller can quote.
    assert!(
        status.metadata().get("traceparent").is_some(),
        "{:?}",
        status.metadata()
    );
    let status = client
        .watch_case(v1::WatchCaseRequest {
            case_id: unknown.clone(),
            after_version: 0,
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);

    let status = client
        .list_cases(v1::ListCasesRequest {
            statuses: vec![v1::CaseStatus::Unspecified.into()],
            ..Default::default()
        })
        .await
        .expect_err("unspecified status");
    assert_eq!(status.code(), Code::InvalidArgument);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer() -> anyhow::Result<()> {
    let db = TestDb::sqlite();
    let bus = TestBus::start().await?;
    let tracker =
        RunningTracker::start(bus.tracker_config(&db, Arc::new(ManualClock::new(MONDAY)))).await?;
    let channel = tracker.channel().await?;

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    for service in ["", "onedoor.v1.CaseTracker"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await?
            .into_inner()
            .status;
        assert_eq!(status, serving, "health of {service:?}");
    }

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await?
        .into_inner();
    let response = tokio::time::timeout(Duration::from_secs(10), responses.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no reflection response"))??;
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        anyhow::bail!("unexpected reflection response: {response:?}");
    };
    let names: BTreeSet<String> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in ["onedoor.v1.CaseTracker", "grpc.health.v1.Health"] {
        assert!(names.contains(wanted), "{wanted} not in {names:?}");
    }
    // Only what this server answers: AgencyGateway is each adapter's.
    assert!(!names.contains("onedoor.v1.AgencyGateway"), "{names:?}");
    tracker.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_while_the_database_is_gone() -> anyhow::Result<()> {
    let Some(db) = TestDb::postgres().await else {
        return Ok(());
    };
    let bus = TestBus::start().await?;
    let tracker =
        RunningTracker::start(bus.tracker_config(&db, Arc::new(ManualClock::new(MONDAY)))).await?;
    let health = tonic_health::pb::health_client::HealthClient::new(tracker.channel().await?);
    let status_is = |wanted: tonic_health::pb::health_check_response::ServingStatus| {
        let mut health = health.clone();
        async move {
            let request = tonic_health::pb::HealthCheckRequest {
                service: "onedoor.v1.CaseTracker".into(),
            };
            let status = health
                .check(request)
                .await
                .map(|r| r.into_inner().status)
                .unwrap_or(-1);
            Ok(if status == wanted as i32 {
                Ok(())
            } else {
                Err(format!("status {status}"))
            })
        }
    };
    use tonic_health::pb::health_check_response::ServingStatus;
    eventually("the tracker reports SERVING", DEADLINE, || {
        status_is(ServingStatus::Serving)
    })
    .await?;
    // The database disappears under the running tracker (its connections are ended too).
    let url = db.url().expose().to_owned();
    sqlx::any::install_default_drivers();
    // The tracker's pool may be opening a connection just as the drop runs, which PostgreSQL
    // refuses ("being accessed by other users"); dropping again wins once the pool has failed.
    eventually("the database is dropped", DEADLINE, || {
        let url = url.clone();
        async move {
            Ok(
                match <sqlx::Any as sqlx::migrate::MigrateDatabase>::force_drop_database(&url).await
                {
                    Ok(()) => Ok(()),
                    Err(error) => Err(error.to_string()),
                },
            )
        }
    })
    .await?;
    eventually("the tracker reports NOT_SERVING", DEADLINE, || {
        status_is(ServingStatus::NotServing)
    })
    .await?;
    tracker.stop().await?;
    Ok(())
}

/// "Held by X and overdue" means X holds an open task and the case's earliest open task is
/// late, whoever holds that one; it follows the case as tasks end and new ones are handed off
/// after the tracker has projected the case.
async fn overdue_held_by_an_agency_follows_the_cases_earliest_due_task(
    db: TestDb,
) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let t = |hours| MONDAY + Span::hours(hours);
    // MOIC's task is due at the end of Tuesday, MOF's ten working days later.
    let case = bus
        .open(FRONT, "enterprise-registration", "LA-E-001", "Bakery", t(0))
        .await?;
    bus.hand_off(case, FRONT, "MOIC", Some(1), t(1)).await?;
    bus.hand_off(case, FRONT, "MOF", Some(10), t(1)).await?;
    let thursday = MONDAY + Span::days(3);
    let clock = Arc::new(ManualClock::new(thursday));
    let tracker = RunningTracker::start(bus.tracker_config(&db, clock)).await?;
    let store = Store::connect(&db.url()).await?;
    wait_until_projected(&bus, &store, &[case]).await?;
    let mut client = tracker.client().await?;
    let mut overdue_held_by = async |agency: &str| -> anyhow::Result<BTreeSet<String>> {
        let request = v1::ListCasesRequest {
            holding_agency: agency.into(),
            overdue_only: true,
            ..Default::default()
        };
        let cases = client.list_cases(request).await?.into_inner().cases;
        Ok(ids(&cases).into_iter().collect())
    };
    assert_eq!(overdue_held_by("MOIC").await?, set(&[case]));
    assert_eq!(
        overdue_held_by("MOF").await?,
        set(&[case]),
        "MOF's own task is not late, but the case is"
    );
    assert!(overdue_held_by("MPWT").await?.is_empty(), "MPWT holds none");

    // MOIC finishes: only MOF's task is open, not due yet.
    bus.accept(case, "MOIC", t(2)).await?;
    bus.complete(case, "MOIC", t(3)).await?;
    wait_until_projected(&bus, &store, &[case]).await?;
    assert!(overdue_held_by("MOF").await?.is_empty(), "nothing late now");
    assert!(overdue_held_by("MOIC").await?.is_empty(), "MOIC holds none");

    // A new task due at the end of Wednesday makes the case late again on Thursday.
    bus.hand_off(case, FRONT, "MPWT", Some(1), t(26)).await?;
    wait_until_projected(&bus, &store, &[case]).await?;
    assert_eq!(overdue_held_by("MPWT").await?, set(&[case]));
    assert_eq!(overdue_held_by("MOF").await?, set(&[case]));
    tracker.stop().await?;
    Ok(())
}
on_both_databases!(overdue_held_by_an_agency_follows_the_cases_earliest_due_task);
