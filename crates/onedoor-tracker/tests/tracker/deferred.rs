//! A rebuild sets the secondary indexes (and, on SQLite, the text search's triggers) aside
//! while it fills the database. One that dies part-way leaves their definitions listed, and
//! opening the database makes them again: the text search then finds the cases written
//! meanwhile, and keeps up with the cases written after.

use onedoor_case::CaseId;
use onedoor_tracker::store::CaseFilter;
use onedoor_tracker::{Backend, Store};

use crate::histories::{seed, write_random_histories};
use onedoor_testkit::on_both_databases;
use onedoor_testkit::{FRONT, MONDAY, TestBus, TestDb};

/// Stores every event of `cases`.
async fn project(bus: &TestBus, store: &Store, cases: &[CaseId]) -> anyhow::Result<()> {
    for case_id in cases {
        for stored in bus.log.load(*case_id).await? {
            store.apply(&stored).await?;
        }
    }
    Ok(())
}

/// The case ids a text search for `text` lists.
pub(crate) async fn found(store: &Store, text: &str) -> anyhow::Result<Vec<String>> {
    let filter = CaseFilter {
        text: Some(text.to_lowercase()),
        ..CaseFilter::default()
    };
    let page = store.list_cases(&filter, None, 50, MONDAY).await?;
    Ok(page.into_iter().map(|case| case.case_id).collect())
}

async fn indexes_set_aside_come_back_when_the_database_is_opened(db: TestDb) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let url = db.url();
    let store = Store::connect(&url).await?;
    let before = store.index_definitions().await?;
    anyhow::ensure!(
        before.len() >= 5,
        "expected the listing indexes, found {before:?}"
    );
    let text_search = usize::from(store.backend() == Backend::Sqlite);
    assert_eq!(store.defer_indexes().await?, before.len() + text_search);
    assert_eq!(store.index_definitions().await?, Vec::new());
    // Cases written while everything is set aside.
    let (cases, _) = write_random_histories(&bus, 2, seed()).await?;
    project(&bus, &store, &cases).await?;
    // The rebuild dies here, before `restore_indexes`.
    store.close().await;

    let reopened = Store::connect(&url).await?;
    assert_eq!(reopened.index_definitions().await?, before);
    assert_eq!(
        reopened.restore_indexes().await?,
        0,
        "nothing is left on the list"
    );
    for case_id in &cases {
        let view = reopened
            .projected(&case_id.to_string())
            .await?
            .ok_or_else(|| anyhow::anyhow!("case {case_id} is stored"))?;
        assert_eq!(
            found(&reopened, &view.case.citizen_ref).await?,
            [case_id.to_string()],
            "a case written while the text search was set aside is found"
        );
    }
    let later = bus
        .open(
            FRONT,
            "construction-permit",
            "R-AFTER-REOPEN",
            "after",
            MONDAY,
        )
        .await?;
    project(&bus, &reopened, &[later]).await?;
    assert_eq!(
        found(&reopened, "r-after-reopen").await?,
        [later.to_string()],
        "the text search keeps up again"
    );
    reopened.close().await;
    Ok(())
}
on_both_databases!(indexes_set_aside_come_back_when_the_database_is_opened);
