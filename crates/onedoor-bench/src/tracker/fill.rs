//! The listing database: each case's commands decided and folded by the case rules, its rows
//! made by the tracker's own `Projected::from_state`, and written in large transactions.
//!
//! Filling a million cases takes minutes, so a database named with `--listing-db` is kept and
//! reused by later runs that ask for the same number of cases.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use onedoor_tracker::view::Projected;
use onedoor_tracker::{DatabaseUrl, Store};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::history::Catalogue;
use crate::BenchError;

/// Cases per transaction.
const BATCH: u64 = 5_000;

/// The listing database as the measurement finds it.
pub struct Listing {
    /// Cases overdue at `now` (counted in the database when it was reused).
    pub overdue_cases: u64,
    /// How long the fill took; `None` when an earlier run's database was reused.
    pub fill_s: Option<f64>,
    /// How the database came to be, for the report.
    pub how: String,
}

/// Fills a fresh database at `path` with `cases` case views, or reuses it when it already
/// holds exactly that many (a kept `--listing-db`). Any other number of cases is an error
/// rather than a silent top-up: the histories are numbered, so the fill could not tell which
/// are missing.
pub async fn prepare(
    path: &Path,
    catalogue: Arc<Catalogue>,
    cases: u64,
    now: OffsetDateTime,
    progress: impl Fn(u64),
) -> Result<Listing, BenchError> {
    let database = DatabaseUrl::sqlite_file(path);
    let store = Store::connect(&database)
        .await
        .map_err(BenchError::connect(format!(
            "opening the listing database {}",
            path.display()
        )))?;
    let held = store.case_count().await?;
    let overdue_now = store.overdue_case_count(now).await;
    store.close().await;
    if held == cases {
        let overdue_cases = overdue_now?;
        let how = format!(
            "reused {}: {held} case views filled by an earlier run (fill not timed)",
            path.display()
        );
        eprintln!("listing: {how}");
        return Ok(Listing {
            overdue_cases,
            fill_s: None,
            how,
        });
    }
    if held > 0 {
        return Err(BenchError::Unfit(format!(
            "the listing database {} holds {held} cases, not --cases {cases}: remove it or ask \
             for {held} cases",
            path.display()
        )));
    }
    let started = Instant::now();
    let overdue_cases = fill(&database, catalogue, cases, now, progress).await?;
    Ok(Listing {
        overdue_cases,
        fill_s: Some(started.elapsed().as_secs_f64()),
        how: "case views made by the case rules, written directly (no NATS, no events rows)"
            .to_owned(),
    })
}

/// Writes `cases` case views into `database`; returns how many are overdue at `now`.
async fn fill(
    database: &DatabaseUrl,
    catalogue: Arc<Catalogue>,
    cases: u64,
    now: OffsetDateTime,
    progress: impl Fn(u64),
) -> Result<u64, BenchError> {
    let store = Store::connect(database).await?;
    let (tx, mut rx) = mpsc::channel::<Result<(Vec<Projected>, u64), BenchError>>(2);
    let generator = tokio::task::spawn_blocking(move || {
        let mut start = 0;
        while start < cases {
            let end = (start + BATCH).min(cases);
            let batch = views(&catalogue, start..end, now);
            let failed = batch.is_err();
            if tx.blocking_send(batch).is_err() || failed {
                return;
            }
            start = end;
        }
    });
    let mut written = 0;
    let mut overdue = 0;
    while let Some(batch) = rx.recv().await {
        let (views, late) = batch?;
        store.write_views(&views).await?;
        written += views.len() as u64;
        overdue += late;
        progress(written);
    }
    generator
        .await
        .map_err(BenchError::task("the case generator"))?;
    store.close().await;
    Ok(overdue)
}

fn views(
    catalogue: &Catalogue,
    indices: std::ops::Range<u64>,
    now: OffsetDateTime,
) -> Result<(Vec<Projected>, u64), BenchError> {
    let mut views = Vec::with_capacity(indices.clone().count());
    let mut overdue = 0;
    for index in indices {
        let script = catalogue.script(index, now)?;
        let state = catalogue.fold(&script)?;
        let updated_at = script
            .commands
            .last()
            .map_or(state.opened_at, |(_, c)| c.at);
        let trace_id = format!("{:032x}", u128::from(index) + 1);
        let projected = Projected::from_state(&state, &trace_id, updated_at);
        if projected.next_due().is_some_and(|due| due < now) {
            overdue += 1;
        }
        views.push(projected);
    }
    Ok((views, overdue))
}
