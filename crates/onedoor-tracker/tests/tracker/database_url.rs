//! What the tracker says about its database before it runs: every SQLite URL form opens (and
//! creates) the file it names, and a directory it cannot write is refused at start, named,
//! with what to change.

use onedoor_tracker::{DatabaseUrl, Store, TrackerError};

use crate::tmpfs::Tmpfs;

#[tokio::test]
async fn every_sqlite_url_form_creates_the_file_it_names() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for (n, form) in [
        "{}",
        "sqlite://{}",
        "sqlite:{}",
        "sqlite://{}?cache=private",
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("tracker {n}.db"));
        let url = DatabaseUrl::parse(&form.replace("{}", &path.to_string_lossy()))?;
        let store = Store::connect(&url).await?;
        store.close().await;
        assert!(path.is_file(), "{form}: {} was not created", path.display());
    }
    Ok(())
}

#[tokio::test]
async fn a_missing_directory_is_refused_at_start_naming_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("not-made");
    let url = DatabaseUrl::sqlite_file(&missing.join("tracker.db"));
    let error = Store::connect(&url).await.expect_err("no directory");
    assert!(
        matches!(&error, TrackerError::StoreNotWritable { path, .. } if *path == missing),
        "{error}"
    );
    assert!(error.to_string().contains("does not exist"), "{error}");
    Ok(())
}

#[tokio::test]
async fn a_read_only_directory_is_refused_at_start_naming_it() -> anyhow::Result<()> {
    let Some(tmpfs) = Tmpfs::mount("1m")? else {
        return Ok(());
    };
    // A database made while it was writable, then the file system mounted read-only: SQLite
    // would open it read-only and fail only at the first event.
    let url = DatabaseUrl::sqlite_file(&tmpfs.path().join("tracker.db"));
    Store::connect(&url).await?.close().await;
    tmpfs.remount("ro")?;
    let error = Store::connect(&url).await.expect_err("read-only");
    let text = error.to_string();
    assert!(
        matches!(&error, TrackerError::StoreNotWritable { path, .. } if path == tmpfs.path()),
        "{text}"
    );
    for named in ["is not writable", "Read-only file system", "database_url"] {
        assert!(text.contains(named), "{named:?} not in: {text}");
    }
    Ok(())
}
