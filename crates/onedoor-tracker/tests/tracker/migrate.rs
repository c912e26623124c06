//! A database made by the first schema (before migration 0002's indexes and text index, and
//! 0003's opened time on tasks) migrates when the tracker opens it, and the cases and tasks
//! already in it are found by every filter, including the agency ones.

use std::borrow::Cow;

use onedoor_case::AgencyCode;
use onedoor_tracker::store::CaseFilter;
use onedoor_tracker::{Backend, Store};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Connection as _, SqlSafeStr as _};

use onedoor_testkit::on_both_databases;
use onedoor_testkit::{MONDAY, TestDb};

async fn a_database_of_the_first_schema_migrates_and_its_cases_are_found(
    db: TestDb,
) -> anyhow::Result<()> {
    let url = db.url();
    let first = match url.backend()? {
        Backend::Sqlite => include_str!("../../migrations/sqlite/0001_projection.sql"),
        Backend::Postgres => include_str!("../../migrations/postgres/0001_projection.sql"),
    };
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url.expose()).await?;
    Migrator::with_migrations(vec![Migration::new(
        1,
        Cow::Borrowed("projection"),
        MigrationType::Simple,
        first.into_sql_str(),
        false,
    )])
    .run(&mut conn)
    .await?;
    sqlx::query(
        "INSERT INTO cases (case_id, service, origin_agency, status, resolution, citizen_ref, \
         summary, search_text, trace_id, opened_at_ns, resolved_at_ns, updated_at_ns, version, \
         open_tasks, next_due_ns, problem) VALUES ('01KOLDCASE0000000000000000', \
         'enterprise-registration', 'ODSC-VTE-SAYSETTHA', 'in_progress', NULL, 'LA-OLD-4242', \
         'an old case', '01koldcase0000000000000000\nla-old-4242\nan old case', 'trace', 1, \
         NULL, 1, 2, 0, NULL, NULL)",
    )
    .execute(&mut conn)
    .await?;
    // One open task held by MOIC and one ended task of MOF, written before tasks had an
    // opened time: the migration must fill it in for the agency listings to find them.
    sqlx::query(
        "INSERT INTO tasks (case_id, handoff_event_id, agency, handed_by, service, state, \
         instructions, open_question, handed_off_at_ns, accepted_at_ns, due_at_ns, ended_at_ns, \
         ended_by, is_open) VALUES \
         ('01KOLDCASE0000000000000000', 'h1', 'MOIC', 'ODSC-VTE-SAYSETTHA', \
          'enterprise-registration', 'pending', '', NULL, 1, NULL, 5, NULL, NULL, 1), \
         ('01KOLDCASE0000000000000000', 'h0', 'MOF', 'ODSC-VTE-SAYSETTHA', \
          'enterprise-registration', 'done', '', NULL, 1, NULL, 5, 2, 'completed', 0)",
    )
    .execute(&mut conn)
    .await?;
    conn.close().await?;

    let store = Store::connect(&url).await?;
    for text in ["old-4242", "ol", "an old"] {
        let filter = CaseFilter {
            text: Some(text.to_owned()),
            ..Default::default()
        };
        let found = store.list_cases(&filter, None, 10, MONDAY).await?;
        assert_eq!(
            found
                .iter()
                .map(|c| c.citizen_ref.as_str())
                .collect::<Vec<_>>(),
            ["LA-OLD-4242"],
            "text {text:?} finds the case written before the migration"
        );
    }
    let missing = CaseFilter {
        text: Some("new-4242".to_owned()),
        ..Default::default()
    };
    assert!(
        store
            .list_cases(&missing, None, 10, MONDAY)
            .await?
            .is_empty()
    );
    let agency = |code: &str| Some(AgencyCode::parse(code).expect("an agency code"));
    let found = |filter: CaseFilter| {
        let store = &store;
        async move {
            let cases = store.list_cases(&filter, None, 10, MONDAY).await?;
            anyhow::Ok(
                cases
                    .iter()
                    .map(|c| c.citizen_ref.clone())
                    .collect::<Vec<_>>(),
            )
        }
    };
    let old = vec!["LA-OLD-4242".to_owned()];
    let holding = |code| CaseFilter {
        holding_agency: agency(code),
        ..Default::default()
    };
    let part_of = |code| CaseFilter {
        part_of: agency(code),
        ..Default::default()
    };
    assert_eq!(found(holding("MOIC")).await?, old, "held by MOIC");
    assert!(found(holding("MOF")).await?.is_empty(), "MOF's task ended");
    for member in ["MOIC", "MOF", "ODSC-VTE-SAYSETTHA"] {
        assert_eq!(found(part_of(member)).await?, old, "{member} is part of it");
    }
    assert!(
        found(part_of("MOH")).await?.is_empty(),
        "MOH is not part of it"
    );
    store.close().await;
    Ok(())
}
on_both_databases!(a_database_of_the_first_schema_migrates_and_its_cases_are_found);
