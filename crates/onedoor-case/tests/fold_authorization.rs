//! The fold refuses stored events that `decide` would never have written: a writer acting
//! outside its role, or an event back-dated beyond the clock skew.

mod support;

use onedoor_case::{
    CaseEvent, CaseState, EventBody, EventId, FoldError, MAX_CLOCK_SKEW, Refusal, Resolution,
    authorize_in_registry,
};
use support::{FRONT, World, code};

/// Folds `forged` after the world's history and returns the refusal the fold gives.
fn refusal_for(world: &World, forged: &CaseEvent) -> Refusal {
    match CaseState::apply(Some(world.state().clone()), forged) {
        Err(FoldError::Unauthorized { refusal, .. }) => *refusal,
        other => panic!("expected an authorization refusal, got {other:?}"),
    }
}

/// A copy of `template` written by `from` as the next event of the world's case.
fn forged(world: &World, template: &CaseEvent, from: &str) -> CaseEvent {
    CaseEvent {
        event_id: EventId::generate(),
        version: world.state().version + 1,
        occurred_at: world.now,
        from: code(from),
        ..template.clone()
    }
}

/// A completion answered to the front office, shaped after `template`.
fn completed_to_front(template: &CaseEvent) -> CaseEvent {
    CaseEvent {
        to: Some(code(FRONT)),
        body: EventBody::Completed {
            outcome: "done".into(),
            note: String::new(),
            documents: vec![],
        },
        ..template.clone()
    }
}

fn world_with_task_at_mof() -> World {
    let mut world = World::new();
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MOF").expect("origin hands off");
    world
}

#[test]
fn only_the_holder_of_an_accepted_task_or_the_origin_hands_off() {
    let world = world_with_task_at_mof();
    let template = world.events[1].clone();
    let mut event = forged(&world, &template, "MOIC");
    event.to = Some(code("MOJ"));
    assert!(matches!(
        refusal_for(&world, &event),
        Refusal::NoTask { .. }
    ));
}

#[test]
fn only_the_assignee_accepts_and_completes() {
    let mut world = world_with_task_at_mof();
    world.accept("MOF").expect("MOF accepts");
    let completed = completed_to_front(&world.events[2]);
    let event = forged(&world, &completed, "MOIC");
    assert!(matches!(
        refusal_for(&world, &event),
        Refusal::NoTask { .. }
    ));
    let by_mof = forged(&world, &completed, "MOF");
    assert!(CaseState::apply(Some(world.state().clone()), &by_mof).is_ok());
}

#[test]
fn a_pending_task_cannot_be_completed() {
    let world = world_with_task_at_mof();
    let completed = completed_to_front(&world.events[1]);
    let event = forged(&world, &completed, "MOF");
    assert!(matches!(
        refusal_for(&world, &event),
        Refusal::TaskNotAccepted { .. }
    ));
}

#[test]
fn only_the_origin_resolves() {
    let world = world_with_task_at_mof();
    let resolved = CaseEvent {
        to: None,
        body: EventBody::Resolved {
            resolution: Resolution::Denied,
            note: String::new(),
        },
        ..world.events[1].clone()
    };
    let event = forged(&world, &resolved, "MOF");
    assert!(matches!(
        refusal_for(&world, &event),
        Refusal::NotOrigin { .. }
    ));
}

/// Another receiver than the sender is refused by the registry's half of the rules (the fold
/// alone cannot tell a successor from a stranger); the writer itself by the fold.
#[test]
fn an_answer_goes_to_whoever_handed_the_task_over() {
    let world = world_with_task_at_mof();
    let accepted = CaseEvent {
        to: Some(code("MOJ")),
        body: EventBody::Accepted,
        ..world.events[1].clone()
    };
    let event = forged(&world, &accepted, "MOF");
    let refusal = authorize_in_registry(Some(world.state()), &event, &world.registry).unwrap_err();
    assert!(
        matches!(refusal, Refusal::WrongReceiver { .. }),
        "{refusal}"
    );
    let mut to_itself = event;
    to_itself.to = Some(code("MOF"));
    assert!(matches!(
        refusal_for(&world, &to_itself),
        Refusal::WrongReceiver { .. }
    ));
}

#[test]
fn time_may_not_run_backwards_beyond_the_skew() {
    let world = world_with_task_at_mof();
    let accepted = CaseEvent {
        to: Some(code(FRONT)),
        body: EventBody::Accepted,
        ..world.events[1].clone()
    };
    let previous = world.events[1].occurred_at;
    let mut within = forged(&world, &accepted, "MOF");
    within.occurred_at = previous - MAX_CLOCK_SKEW;
    assert!(CaseState::apply(Some(world.state().clone()), &within).is_ok());
    let mut beyond = within.clone();
    beyond.occurred_at = previous - MAX_CLOCK_SKEW - time::Duration::seconds(1);
    assert!(matches!(
        refusal_for(&world, &beyond),
        Refusal::TimeRunsBackwards { .. }
    ));
}
