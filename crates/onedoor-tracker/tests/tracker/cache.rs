//! The projection folds each next event onto a cached case state; these tests make the cache
//! wrong on purpose (another writer on the same database) and check the views still equal
//! the pure fold of every stored event.

use anyhow::Context as _;
use onedoor_bus::StoredEvent;
use onedoor_case::CaseState;
use onedoor_tracker::store::{Checked, Incoming};
use onedoor_tracker::view::Projected;
use onedoor_tracker::{Applied, Projection, Store};

use crate::histories::{seed, write_random_histories};
use onedoor_testkit::on_both_databases;
use onedoor_testkit::{MONDAY, TestBus, TestDb, assert_rows_equal_the_fold, subject_of};

/// A batch as `Projection::handle_batch` takes it.
fn borrowed(batch: &[(u64, String, bytes::Bytes)]) -> Vec<(u64, &str, bytes::Bytes)> {
    batch
        .iter()
        .map(|(sequence, subject, payload)| (*sequence, subject.as_str(), payload.clone()))
        .collect()
}

/// A case's events, in version order, of a random history with at least four of them.
async fn long_case(bus: &TestBus) -> anyhow::Result<(onedoor_case::CaseId, Vec<StoredEvent>)> {
    let (cases, _) = write_random_histories(bus, 12, seed()).await?;
    for case_id in cases {
        let events = bus.log.load(case_id).await?;
        if events.len() >= 4 {
            return Ok((case_id, events));
        }
    }
    anyhow::bail!("no random history had four events; another seed will")
}

async fn a_stale_cache_never_hides_what_another_writer_stored(db: TestDb) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let (case_id, events) = long_case(&bus).await?;
    let cached = Store::connect(&db.url()).await?;
    let other = Store::connect(&db.url()).await?;

    // `cached` folds versions 1 and 2 and keeps the state; version 4 then arrives before
    // version 3 (a redelivery overtaken): it cannot chain yet and is quarantined, until
    // version 3, which arrives late, has the case verified again in stream order.
    for stored in &events[..2] {
        cached.apply(stored).await?;
    }
    let early = cached.apply(&events[3]).await?;
    assert!(
        matches!(
            early,
            Applied::Rejected {
                label: "broken_chain",
                ..
            }
        ),
        "{early:?}"
    );
    let applied = cached.apply(&events[2]).await?;
    assert!(
        matches!(applied, Applied::Projected { version: 4, .. }),
        "version 3 arrives late and the view reaches 4: {applied:?}"
    );
    assert!(
        cached
            .rejected_for_case(&case_id.to_string())
            .await?
            .is_empty(),
        "nothing stays quarantined"
    );
    // And a writer that moved the case on behind the cache's back: `other` stores the rest;
    // `cached` gets a redelivery of each (duplicates) and the view is still the fold.
    for stored in &events[4..] {
        other.apply(stored).await?;
    }
    for stored in &events {
        assert_eq!(cached.apply(stored).await?, Applied::Duplicate);
    }
    let (expected, _) = bus.expected(case_id, MONDAY).await?;
    assert_eq!(
        cached.projected(&case_id.to_string()).await?,
        Some(expected)
    );
    Ok(())
}
on_both_databases!(a_stale_cache_never_hides_what_another_writer_stored);

/// What a batch gave, message by message, with the case id left out.
fn kinds(applied: &[Applied]) -> Vec<String> {
    applied
        .iter()
        .map(|a| match a {
            Applied::Projected { version, .. } => format!("projected {version}"),
            Applied::Duplicate => "duplicate".to_owned(),
            Applied::Rejected { label, .. } => format!("rejected {label}"),
        })
        .collect()
}

async fn one_batch_mixing_late_arrivals_and_duplicates_gives_the_fold(
    db: TestDb,
) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let (case_id, events) = long_case(&bus).await?;
    let cached = Store::connect(&db.url()).await?;
    let projection = Projection::new(cached.clone(), tokio::sync::broadcast::channel(1).0);
    let batch = |picked: &[&StoredEvent]| -> Vec<(u64, String, bytes::Bytes)> {
        picked
            .iter()
            .map(|s| (s.sequence, subject_of(s), s.payload.clone()))
            .collect()
    };
    for stored in &events[..2] {
        cached.apply(stored).await?;
    }

    // Version 4 before 3 in one batch: 3 arrives late, the case is verified again at the
    // commit and both count; the copy of 3 and the redelivered 1 are duplicates.
    let first = batch(&[&events[3], &events[2], &events[2], &events[0]]);
    assert_eq!(
        kinds(&projection.handle_batch(&borrowed(&first)).await?),
        ["projected 4", "projected 4", "duplicate", "duplicate"]
    );

    // The rest in reverse: each but the first arrives late, the batch's commit verifies the
    // case in stream order; a redelivered version 4 at the end changes nothing.
    let mut rest: Vec<&StoredEvent> = events[4..].iter().rev().collect();
    rest.push(&events[3]);
    let mut expected: Vec<String> = events[4..]
        .iter()
        .map(|_| format!("projected {}", events.len()))
        .collect();
    expected.push("duplicate".to_owned());
    assert_eq!(
        kinds(&projection.handle_batch(&borrowed(&batch(&rest))).await?),
        expected
    );

    let (view, _) = bus.expected(case_id, MONDAY).await?;
    assert_eq!(cached.projected(&case_id.to_string()).await?, Some(view));
    assert!(
        cached
            .rejected_for_case(&case_id.to_string())
            .await?
            .is_empty(),
        "nothing stays quarantined"
    );
    Ok(())
}
on_both_databases!(one_batch_mixing_late_arrivals_and_duplicates_gives_the_fold);

/// A rebuild stores many batches in one transaction and writes the cases' rows once, at the
/// commit: the views must still be the fold, whatever the batches hold of each case.
async fn batches_sharing_one_transaction_give_the_fold(db: TestDb) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let (cases, _) = write_random_histories(&bus, 8, seed()).await?;
    let mut events = Vec::new();
    for case_id in &cases {
        events.extend(bus.log.load(*case_id).await?);
    }
    events.sort_by_key(|stored| stored.sequence);
    // One case's second event comes after its third (a gap across batches), and one event
    // comes twice, in different batches.
    if let Some(second) = events.iter().position(|s| s.event.version == 2)
        && let Some(third) = events
            .iter()
            .position(|s| s.event.version == 3 && s.event.case_id == events[second].event.case_id)
    {
        let moved = events.remove(second);
        events.insert(third, moved);
    }
    let again = events[0].clone();
    events.push(again);
    // Another case's second event never comes: its view stays at its first event, and its
    // later events, which cannot chain, are quarantined.
    let moved_case = events
        .iter()
        .find(|s| s.event.version == 3)
        .map(|s| s.event.case_id);
    let stalled = events
        .iter()
        .find(|s| s.event.version == 3 && Some(s.event.case_id) != moved_case)
        .map(|s| s.event.case_id)
        .context("a second case with three events; another seed will")?;
    let missing = events
        .iter()
        .position(|s| s.event.case_id == stalled && s.event.version == 2)
        .context("the stalled case's second event")?;
    events.remove(missing);

    let store = Store::connect(&db.url()).await?;
    let subjects: Vec<String> = events.iter().map(subject_of).collect();
    let incoming = |from: usize, to: usize| -> Vec<Incoming> {
        events[from..to]
            .iter()
            .zip(&subjects[from..to])
            .map(|(stored, subject)| Incoming::Event { subject, stored })
            .collect()
    };
    // A transaction dropped before its commit stores nothing.
    let mut dropped = store.begin_writing().await?;
    dropped.apply(&incoming(0, 3), Checked::default()).await?;
    drop(dropped);
    assert_eq!(
        store.event_count().await?,
        0,
        "nothing of an uncommitted transaction"
    );

    let mut writing = store.begin_writing().await?;
    for from in (0..events.len()).step_by(3) {
        let to = (from + 3).min(events.len());
        writing
            .apply(&incoming(from, to), Checked::default())
            .await?;
    }
    assert_eq!(writing.len(), events.len());
    let outcomes = writing.commit().await?;
    assert_eq!(outcomes.len(), events.len(), "one outcome per message");
    assert_eq!(outcomes.last(), Some(&Applied::Duplicate));
    // The stalled case's events after the missing one do not chain: quarantined, not stored.
    let unchained = events
        .iter()
        .filter(|s| s.event.case_id == stalled && s.event.version > 2)
        .count();
    assert_eq!(
        store.event_count().await?,
        (events.len() - 1 - unchained) as u64
    );
    assert_eq!(
        store.rejected_for_case(&stalled.to_string()).await?.len(),
        unchained
    );
    let first = events
        .iter()
        .find(|s| s.event.case_id == stalled && s.event.version == 1)
        .context("the stalled case's first event")?;
    let opened = CaseState::fold([&first.event])?.context("an opened case")?;
    assert_eq!(
        store.projected(&stalled.to_string()).await?,
        Some(Projected::from_state(
            &opened,
            &first.envelope.trace_id,
            first.event.occurred_at
        )),
        "a case whose second event is missing shows its first"
    );
    assert_rows_equal_the_fold(
        &bus,
        &store,
        cases.iter().filter(|c| **c != stalled),
        "its batches shared one transaction",
    )
    .await
}
on_both_databases!(batches_sharing_one_transaction_give_the_fold);
