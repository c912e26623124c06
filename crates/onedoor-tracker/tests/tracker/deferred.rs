//! A rebuild sets the secondary indexes aside while it fills the database. One that dies
//! part-way leaves their definitions listed, and opening the database creates them again.

use onedoor_tracker::Store;

use crate::on_both_databases;
use crate::support::TestDb;

async fn indexes_set_aside_come_back_when_the_database_is_opened(db: TestDb) -> anyhow::Result<()> {
    let url = db.url();
    let store = Store::connect(&url).await?;
    let before = store.index_definitions().await?;
    anyhow::ensure!(
        before.len() >= 5,
        "expected the listing indexes, found {before:?}"
    );
    assert_eq!(store.defer_indexes().await?, before.len());
    assert_eq!(store.index_definitions().await?, Vec::new());
    // The rebuild dies here, before `restore_indexes`.
    store.close().await;

    let reopened = Store::connect(&url).await?;
    assert_eq!(reopened.index_definitions().await?, before);
    assert_eq!(
        reopened.restore_indexes().await?,
        0,
        "nothing is left on the list"
    );
    reopened.close().await;
    Ok(())
}
on_both_databases!(indexes_set_aside_come_back_when_the_database_is_opened);
