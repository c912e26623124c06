//! `task_transferred`: an open task of an agency the 2025 registry merged or renamed away moves
//! to its successor, keeping its sender and due time, and only where the registry says so.

mod support;

use std::path::PathBuf;

use onedoor_case::case::TaskEnd;
use onedoor_case::{
    Action, CaseState, EventBody, Refusal, RefusalClass, Registry, TaskState, TransferReason,
    authorize_transfer,
};
use support::{FRONT, World, code, shipped_registry};
use time::macros::datetime;

fn registry_2021() -> Registry {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2021.toml");
    Registry::load(&path).expect("2021 registry is valid")
}

/// A case handed to `holder` (and accepted) under the 2021 registry, then the bus moved to 2025.
fn held_in_2021(holder: &str) -> World {
    let mut world = World::with_registry(registry_2021());
    world.open("enterprise-registration");
    world.hand_off(FRONT, holder).expect("2021 hand-off");
    world.accept(holder).expect("accepted");
    world.registry = shipped_registry();
    world
}

#[test]
fn a_merged_agencys_task_moves_to_its_successor_with_its_due_time_and_sender() {
    let mut world = held_in_2021("MPI");
    let before = world.state().tasks[&code("MPI")].clone();
    let event = world.act("MPI", Action::Transfer).expect("transfer");
    assert_eq!(event.to, Some(code("MOF")));
    assert_eq!(event.causation, Some(before.handoff_event));
    let EventBody::Transferred {
        registry_version,
        reason,
        due_at,
    } = &event.body
    else {
        panic!("not a transfer: {:?}", event.body);
    };
    assert_eq!(registry_version, "2025-03");
    assert_eq!(*reason, TransferReason::Merged);
    assert_eq!(*due_at, before.due_at, "the clock does not restart");

    let state = world.state();
    assert!(!state.tasks.contains_key(&code("MPI")));
    let moved = &state.tasks[&code("MOF")];
    assert_eq!(moved.due_at, before.due_at);
    assert_eq!(moved.handed_by, code(FRONT));
    assert_eq!(
        moved.state,
        TaskState::Pending,
        "the successor accepts it anew"
    );
    assert_eq!(moved.handoff_event, event.event_id);
    let past = state.past_tasks.last().expect("ended");
    assert_eq!(
        (past.task.agency.clone(), past.end),
        (code("MPI"), TaskEnd::Transferred)
    );

    // The successor works the task like any other; answers go to the original sender.
    let accepted = world.accept("MOF").expect("successor accepts");
    assert_eq!(accepted.to, Some(code(FRONT)));
    assert_eq!(accepted.causation, Some(event.event_id));
    world.complete("MOF").expect("successor completes");
    // The old holder can no longer act on it.
    let refusal = world.accept("MPI").unwrap_err();
    assert!(refusal.to_string().contains("transferred"), "{refusal}");
}

#[test]
fn a_renamed_agencys_task_moves_as_renamed() {
    let mut world = held_in_2021("MICT");
    let event = world.act("MICT", Action::Transfer).expect("transfer");
    assert_eq!(event.to, Some(code("MCT")));
    assert!(matches!(
        event.body,
        EventBody::Transferred {
            reason: TransferReason::Renamed,
            ..
        }
    ));
}

#[test]
fn a_current_agency_or_one_without_a_task_cannot_be_transferred() {
    let mut world = held_in_2021("MOF");
    let refusal = world.act("MOF", Action::Transfer).unwrap_err();
    assert!(matches!(refusal, Refusal::NoSuccessor { .. }), "{refusal}");
    assert_eq!(refusal.class(), RefusalClass::FailedPrecondition);
    let refusal = world.act("MPI", Action::Transfer).unwrap_err();
    assert!(matches!(refusal, Refusal::NoTask { .. }), "{refusal}");
}

#[test]
fn a_successor_already_on_the_case_keeps_its_own_task() {
    let mut world = World::with_registry(registry_2021());
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MPI").unwrap();
    world.hand_off(FRONT, "MOF").unwrap();
    let mof_task = world.state().tasks[&code("MOF")].clone();
    world.registry = shipped_registry();
    world.act("MPI", Action::Transfer).expect("transfer");
    let state = world.state();
    assert_eq!(state.tasks.len(), 1);
    assert_eq!(state.tasks[&code("MOF")], mof_task);
}

/// A stored transfer is checked by every reader: the registry must name the successor, the
/// change must have taken effect, and the event must repeat the task it moves.
#[test]
fn readers_refuse_a_transfer_the_registry_does_not_call_for() {
    let mut world = held_in_2021("MPI");
    let event = world.act("MPI", Action::Transfer).expect("transfer");
    let registry = shipped_registry();
    authorize_transfer(&event, &registry).expect("as decided");

    let mut elsewhere = event.clone();
    elsewhere.to = Some(code("MOIC"));
    let refusal = authorize_transfer(&elsewhere, &registry).unwrap_err();
    assert!(matches!(refusal, Refusal::NotSuccessor { .. }), "{refusal}");

    let mut early = event.clone();
    early.occurred_at = datetime!(2025-04-30 23:00 +07:00);
    let refusal = authorize_transfer(&early, &registry).unwrap_err();
    assert!(
        matches!(refusal, Refusal::TransferTooEarly { .. }),
        "{refusal}"
    );

    // Under the 2021 registry MPI is current: nothing may move its tasks.
    let refusal = authorize_transfer(&event, &registry_2021()).unwrap_err();
    assert!(matches!(refusal, Refusal::NoSuccessor { .. }), "{refusal}");

    // The fold refuses a transfer that does not repeat the task's due time.
    let before = {
        let mut w = held_in_2021("MPI");
        w.registry = registry_2021();
        w
    };
    let mut moved_clock = event;
    moved_clock.case_id = before.case_id;
    moved_clock.version = before.state().version + 1;
    moved_clock.causation = Some(before.state().tasks[&code("MPI")].handoff_event);
    if let EventBody::Transferred { due_at, .. } = &mut moved_clock.body {
        *due_at += time::Duration::days(10);
    }
    let err = CaseState::apply(before.state.clone(), &moved_clock).unwrap_err();
    assert!(err.to_string().contains("due_at"), "{err}");
}

#[test]
fn operator_keys_load_from_the_registry_and_share_the_key_id_space() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2025.toml");
    let text = std::fs::read_to_string(path).expect("read");
    let key =
        "public_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\nvalid_from = 2025-05-01\n";
    let with_key = format!("{text}\n[[operator.key]]\nid = \"OPERATOR-2025-01\"\n{key}");
    let registry = Registry::from_toml(&with_key, "with-operator.toml").expect("valid");
    let found = registry.operator_key("OPERATOR-2025-01").expect("listed");
    assert!(found.valid_on(time::macros::date!(2026 - 01 - 01)));
    assert!(registry.operator_key("MOF-2025-01").is_none());

    let twice = format!("{with_key}\n[[operator.key]]\nid = \"OPERATOR-2025-01\"\n{key}");
    let err = Registry::from_toml(&twice, "twice.toml").unwrap_err();
    assert!(err.to_string().contains("listed twice"), "{err}");
}
