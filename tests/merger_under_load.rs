//! The 2025 merger replayed with cases in flight (issue "agency lifecycle"): `onedoor up` on
//! the 2021 registry, a few hundred cases with open tasks at every agency 2025 merges or
//! renames away, a front office that keeps opening and handing off cases throughout, then the
//! operator's procedure: NATS configuration from the new registry, `registry apply --execute`
//! (publish, transfer, drain), and the configuration without the ended agencies' users.
//!
//! What it shows: every open task sits with its successor, moved by exactly one transfer
//! event; no event the bus acknowledged is lost; the successors that run receive their
//! transferred tasks; the ended agencies' NATS users are refused afterwards; `audit verify
//! --all` passes on history their keys signed; and the front office never failed a call.

mod support;

#[path = "merger/load.rs"]
mod load;
#[path = "merger/operator.rs"]
mod operator;

use std::collections::BTreeMap;

use onedoor_case::{CaseState, EventBody, TaskEnd};
use support::{Agency, nats_as, spawn_up, terminate, wait_for_endpoints};

use load::{FRONT, FrontLoad, Workers};
use operator::{Operator, successor};

/// Open tasks per ended agency before the change; half of them accepted.
const CASES_PER_ENDED: usize = 40;

/// The agencies 2025 merges or renames away, each with its successor.
const ENDED: [&str; 6] = ["MPI", "MEM", "MAF", "MONRE", "MOHA", "MICT"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_2025_merger_under_load_moves_every_open_task_once_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let operator = Operator::new(dir.path());
    let mut up = spawn_up(
        &data,
        &[("ONEDOOR_REGISTRY", operator.old.display().to_string())],
    );
    let endpoints = wait_for_endpoints(&mut up, &data);

    let mut front = Agency::connect(&endpoints, FRONT).await;
    let mut held: BTreeMap<String, &str> = BTreeMap::new();
    for ended in ENDED {
        let mut agency = Agency::connect(&endpoints, ended).await;
        for n in 0..CASES_PER_ENDED {
            let case_id = front
                .open_case(&format!("merger-{ended}-{n}"))
                .await
                .case_id;
            front
                .hand_off(&case_id, ended, &format!("merger-{ended}-{n}-to"))
                .await;
            if n % 2 == 0 {
                agency
                    .accept(&case_id, &format!("merger-{ended}-{n}-accept"))
                    .await;
            }
            held.insert(case_id, ended);
        }
    }
    // The ended agencies read their inboxes empty while they still run, so the drain can
    // delete them; the successors that run under 2021 collect what reaches them.
    let workers = Workers::start(&endpoints, &[&ENDED, &["MOF", "MOIC", "PMO"]]).await;
    let load = FrontLoad::start(&endpoints).await;
    load.wait_for_progress(20).await;

    let before_apply = load.written();
    operator.reload_nats_with_new_users(&data);
    let applied = operator.apply(&data);
    operator.revoke_ended_users(&data, &applied);

    let before_stop = load.written();
    load.wait_for_progress(before_stop + 20).await;
    let load = load.stop().await;
    assert_eq!(
        load.failures,
        Vec::<String>::new(),
        "the front office never failed"
    );
    eprintln!(
        "load: {} cases opened and handed off by the front office, {} of them from the first reload to the last",
        load.written_events.len(),
        before_stop.saturating_sub(before_apply)
    );

    let log = operator.case_log(&endpoints, &data).await;
    for (case_id, ended) in &held {
        let stored = log.load(case_id).await;
        let wanted = successor(ended);
        let transfers: Vec<_> = stored
            .iter()
            .filter(|s| matches!(s.event.body, EventBody::Transferred { .. }))
            .map(|s| {
                (
                    s.event.from.to_string(),
                    s.event.to.as_ref().map(ToString::to_string),
                )
            })
            .collect();
        assert_eq!(
            transfers,
            vec![((*ended).to_owned(), Some(wanted.to_owned()))],
            "case {case_id} held by {ended}: one transfer to {wanted}"
        );
        let state = CaseState::fold(stored.iter().map(|s| &s.event))
            .expect("folds")
            .expect("has events");
        let open: Vec<_> = state.tasks.keys().map(|code| code.as_str()).collect();
        assert_eq!(
            open,
            vec![wanted],
            "case {case_id}: the successor holds the task"
        );
        assert!(
            state
                .past_tasks
                .iter()
                .any(|past| past.task.agency.as_str() == *ended && past.end == TaskEnd::Transferred),
            "case {case_id}: {ended}'s task ends as transferred"
        );
    }
    for (case_id, event_ids) in &load.written_events {
        let stored = log.load(case_id).await;
        for event_id in event_ids {
            assert!(
                stored
                    .iter()
                    .any(|s| &s.event.event_id.to_string() == event_id),
                "event {event_id} of case {case_id} was acknowledged and is in the stream"
            );
        }
    }
    // The successors that run (MAE and MCT are new: their adapters are not part of this bus)
    // receive each moved task once, as a new task.
    let running: Vec<(&str, &str)> = held
        .iter()
        .map(|(case_id, ended)| (successor(ended), case_id.as_str()))
        .filter(|(to, _)| ["MOF", "MOIC", "PMO"].contains(to))
        .collect();
    workers.wait_for_new_tasks(&running).await;
    workers.stop().await;

    operator.assert_ended_users_refused(&ENDED, &data).await;
    nats_as(&endpoints, &data, FRONT).await;
    operator.assert_audit_passes(&data);
    assert!(terminate(&mut up).success());
}
