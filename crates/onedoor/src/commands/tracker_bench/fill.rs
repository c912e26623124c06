//! The listing database: each case's commands decided and folded by the case rules, its rows
//! made by the tracker's own `Projected::from_state`, and written in large transactions.

use std::sync::Arc;

use anyhow::Context as _;
use onedoor_tracker::view::Projected;
use onedoor_tracker::{DatabaseUrl, Store};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::history::Catalogue;

/// Cases per transaction.
const BATCH: u64 = 5_000;

/// Writes `cases` case views into `database`; returns how many are overdue at `now`.
pub async fn fill(
    database: &DatabaseUrl,
    catalogue: Arc<Catalogue>,
    cases: u64,
    now: OffsetDateTime,
    progress: impl Fn(u64),
) -> anyhow::Result<u64> {
    let store = Store::connect(database).await?;
    let (tx, mut rx) = mpsc::channel::<anyhow::Result<(Vec<Projected>, u64)>>(2);
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
    generator.await.context("the case generator panicked")?;
    store.close().await;
    Ok(overdue)
}

fn views(
    catalogue: &Catalogue,
    indices: std::ops::Range<u64>,
    now: OffsetDateTime,
) -> anyhow::Result<(Vec<Projected>, u64)> {
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
