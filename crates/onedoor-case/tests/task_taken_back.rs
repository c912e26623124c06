//! `task_taken_back`: the agency that handed a task over takes it back while it is open, with
//! a reason; the holder's task ends and its later answers are refused. Only the sender may,
//! and every reader's fold refuses a stored take-back that breaks the rule.

mod support;

use onedoor_case::case::TaskEnd;
use onedoor_case::{
    Action, CaseEvent, CaseState, CaseStatus, EventBody, EventId, FoldError, Refusal, RefusalClass,
    Resolution, limits,
};
use support::{FRONT, World, code};

fn registry_2021() -> onedoor_case::Registry {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/registry/lao-2021.toml");
    onedoor_case::Registry::load(&path).expect("2021 registry is valid")
}

fn take_back(world: &mut World, sender: &str, holder: &str) -> Result<CaseEvent, Refusal> {
    world.act(
        sender,
        Action::TakeBack {
            holder: code(holder),
            reason: "sent to the wrong ministry".into(),
        },
    )
}

/// A case the front office handed to MOIC, which accepted it.
fn at_moic() -> World {
    let mut world = World::new();
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MOIC").expect("origin hands off");
    world.accept("MOIC").expect("MOIC accepts");
    world
}

fn refused(result: Result<CaseEvent, Refusal>) -> Refusal {
    match result {
        Ok(event) => panic!("expected a refusal, got {:?}", event.body),
        Err(refusal) => refusal,
    }
}

#[test]
fn the_sender_takes_back_an_open_task_and_the_task_ends_as_taken_back() {
    let mut world = at_moic();
    let handoff = world.state().tasks[&code("MOIC")].handoff_event;
    let event = take_back(&mut world, FRONT, "MOIC").expect("the sender may take it back");
    assert_eq!(event.from, code(FRONT));
    assert_eq!(
        event.to,
        Some(code("MOIC")),
        "the holder's inbox receives it"
    );
    assert_eq!(event.causation, Some(handoff), "it names the task");
    assert_eq!(
        event.body,
        EventBody::TakenBack {
            reason: "sent to the wrong ministry".into()
        }
    );
    let state = world.state();
    assert!(state.tasks.is_empty());
    let past = state.past_tasks.last().expect("an ended task");
    assert_eq!(
        (&past.task.agency, past.end),
        (&code("MOIC"), TaskEnd::TakenBack)
    );
    assert_eq!(past.ended_at, event.occurred_at);
    assert_eq!(state.status(), CaseStatus::AtFrontOffice);
    // What every reader folds from the stored history is what decide left.
    let folded = CaseState::fold(&world.events).expect("folds");
    assert_eq!(folded.as_ref(), Some(state));
}

#[test]
fn a_pending_task_and_one_waiting_for_information_can_be_taken_back_too() {
    let mut pending = World::new();
    pending.open("enterprise-registration");
    pending.hand_off(FRONT, "MOIC").expect("hand-off");
    take_back(&mut pending, FRONT, "MOIC").expect("a pending task");

    let mut waiting = at_moic();
    waiting.request_info("MOIC").expect("info request");
    assert_eq!(waiting.state().status(), CaseStatus::AwaitingInfo);
    take_back(&mut waiting, FRONT, "MOIC").expect("a task waiting for the citizen");
    assert_eq!(waiting.state().status(), CaseStatus::AtFrontOffice);
}

#[test]
fn every_answer_from_the_former_holder_is_refused_naming_why() {
    let mut world = at_moic();
    take_back(&mut world, FRONT, "MOIC").expect("taken back");
    let tries = [
        world.complete("MOIC"),
        world.send_back("MOIC"),
        world.request_info("MOIC"),
        world.accept("MOIC"),
    ];
    for result in tries {
        let refusal = refused(result);
        assert_eq!(refusal.class(), RefusalClass::FailedPrecondition);
        assert!(
            refusal.to_string().contains("taken back by its sender"),
            "{refusal}"
        );
    }
    assert!(world.state().tasks.is_empty(), "nothing was written");
}

#[test]
fn only_the_agency_that_handed_the_task_over_may_take_it_back() {
    let mut world = at_moic();
    world.hand_off("MOIC", "MOF").expect("MOIC passes work on");
    // The front office did not hand MOF its task, and MOF is no sender of MOIC's.
    for (who, holder) in [
        (FRONT, "MOF"),
        ("MOF", "MOIC"),
        ("MOIC", "MOIC"),
        ("MOJ", "MOF"),
    ] {
        let refusal = refused(take_back(&mut world, who, holder));
        assert_eq!(refusal.class(), RefusalClass::PermissionDenied, "{refusal}");
        assert!(
            matches!(refusal, Refusal::NotTaskSender { .. }),
            "{refusal}"
        );
    }
    assert_eq!(world.state().tasks.len(), 2, "both tasks still open");
    take_back(&mut world, "MOIC", "MOF").expect("MOIC handed MOF its task");
    assert!(world.state().tasks.contains_key(&code("MOIC")));
}

#[test]
fn a_non_sender_learns_nothing_about_an_ended_task() {
    let mut world = at_moic();
    world.complete("MOIC").expect("completed");
    let refusal = refused(take_back(&mut world, "MOF", "MOIC"));
    assert!(
        matches!(refusal, Refusal::NotTaskSender { .. }),
        "{refusal}"
    );
}

#[test]
fn only_an_open_task_of_an_open_case_can_be_taken_back() {
    let mut done = at_moic();
    done.complete("MOIC").expect("completed");
    let refusal = refused(take_back(&mut done, FRONT, "MOIC"));
    assert_eq!(refusal.class(), RefusalClass::FailedPrecondition);
    assert!(
        refusal.to_string().contains("already completed"),
        "{refusal}"
    );

    let twice = refused(take_back(&mut done, FRONT, "MOF"));
    assert!(
        matches!(twice, Refusal::NoTaskToTakeBack { .. }),
        "MOF never held a task: {twice}"
    );
    assert_eq!(twice.class(), RefusalClass::FailedPrecondition);

    let mut again = at_moic();
    take_back(&mut again, FRONT, "MOIC").expect("first time");
    let refusal = refused(take_back(&mut again, FRONT, "MOIC"));
    assert!(refusal.to_string().contains("taken back"), "{refusal}");

    let mut resolved = at_moic();
    resolved
        .resolve(FRONT, Resolution::Withdrawn)
        .expect("withdrawn");
    let refusal = refused(take_back(&mut resolved, FRONT, "MOIC"));
    assert!(matches!(refusal, Refusal::CaseResolved { .. }), "{refusal}");
}

#[test]
fn the_reason_is_required_bounded_and_plain_text() {
    let too_long = "x".repeat(limits::REASON_MAX_BYTES + 1);
    for (reason, field) in [
        ("", "reason"),
        ("  \n", "reason"),
        (&too_long[..], "reason"),
    ] {
        let mut world = at_moic();
        let refusal = refused(world.act(
            FRONT,
            Action::TakeBack {
                holder: code("MOIC"),
                reason: reason.to_owned(),
            },
        ));
        assert_eq!(refusal.class(), RefusalClass::InvalidArgument, "{refusal}");
        assert!(refusal.to_string().contains(field), "{refusal}");
    }
    let mut world = at_moic();
    let refusal = refused(world.act(
        FRONT,
        Action::TakeBack {
            holder: code("MOIC"),
            reason: "wrong\u{1b}[31m ministry".into(),
        },
    ));
    assert!(
        matches!(refusal, Refusal::ControlCharacter { .. }),
        "{refusal}"
    );
    let max = "ລ".repeat(limits::REASON_MAX_BYTES / 3);
    world
        .act(
            FRONT,
            Action::TakeBack {
                holder: code("MOIC"),
                reason: max,
            },
        )
        .expect("a Lao reason at the limit");
}

#[test]
fn the_sender_may_hand_the_task_over_again_after_taking_it_back() {
    let mut world = at_moic();
    take_back(&mut world, FRONT, "MOIC").expect("taken back");
    world.hand_off(FRONT, "MOIC").expect("a new task");
    world.accept("MOIC").expect("accepted anew");
    world.complete("MOIC").expect("and completed");
}

#[test]
fn a_task_moved_to_a_successor_is_still_the_original_senders_to_take_back() {
    let mut world = World::with_registry(registry_2021());
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MPI").expect("2021 hand-off");
    world.registry = support::shipped_registry();
    world.act("MPI", Action::Transfer).expect("moved to MOF");
    let refusal = refused(take_back(&mut world, FRONT, "MPI"));
    assert!(
        refusal.to_string().contains("transferred to its successor"),
        "{refusal}"
    );
    take_back(&mut world, FRONT, "MOF").expect("the front office handed it over");
}

/// Folds `event` as the case's next event and returns the refusal every reader gives.
fn fold_refusal(world: &World, event: &CaseEvent) -> Refusal {
    match CaseState::apply(Some(world.state().clone()), event) {
        Err(FoldError::Unauthorized { refusal, .. }) => *refusal,
        other => panic!("expected an authorization refusal, got {other:?}"),
    }
}

#[test]
fn the_fold_refuses_a_stored_take_back_that_breaks_the_rule() {
    let mut world = at_moic();
    let handoff = world.state().tasks[&code("MOIC")].handoff_event;
    let next = |from: &str, to: &str| CaseEvent {
        event_id: EventId::generate(),
        case_id: world.case_id,
        version: world.state().version + 1,
        occurred_at: world.now,
        from: code(from),
        to: Some(code(to)),
        actor: String::new(),
        causation: Some(handoff),
        body: EventBody::TakenBack {
            reason: "forged".into(),
        },
    };
    let by_stranger = next("MOF", "MOIC");
    assert!(matches!(
        fold_refusal(&world, &by_stranger),
        Refusal::NotTaskSender { .. }
    ));
    let mut wrong_cause = next(FRONT, "MOIC");
    wrong_cause.causation = Some(world.state().opened_event);
    assert!(matches!(
        fold_refusal(&world, &wrong_cause),
        Refusal::TakeBackMismatch { .. }
    ));
    let mut no_holder = next(FRONT, "MOIC");
    no_holder.to = None;
    assert!(matches!(
        fold_refusal(&world, &no_holder),
        Refusal::NoReceiver { .. }
    ));
    let mut empty = next(FRONT, "MOIC");
    empty.body = EventBody::TakenBack {
        reason: String::new(),
    };
    assert!(matches!(
        fold_refusal(&world, &empty),
        Refusal::Empty { field: "reason" }
    ));
    let good = next(FRONT, "MOIC");
    world.complete("MOIC").expect("MOIC finished first");
    let late = CaseEvent {
        version: world.state().version + 1,
        ..good
    };
    assert!(matches!(
        fold_refusal(&world, &late),
        Refusal::TaskEnded { .. }
    ));
}
