//! Strict routes (the registry's `strict_route`) and the `task_closed` notices that tell each
//! agency still holding a task that its case was resolved.

mod support;

use onedoor_case::{
    Action, CaseState, EventBody, Refusal, RefusalClass, Resolution, ServiceCode,
    authorize_after_resolution,
};
use support::{FRONT, World, code, shipped_registry};

/// The shipped registry with `construction-permit` (stage 1: MPWT and MAE in parallel; stage
/// 2: MOPS) and `investment-licence` (MOF, MOIC, then one sector ministry) made strict.
fn strict_world() -> World {
    let mut registry = shipped_registry();
    for service in ["construction-permit", "investment-licence"] {
        registry
            .services
            .get_mut(&ServiceCode::parse(service).unwrap())
            .expect("shipped service")
            .strict_route = true;
    }
    World::with_registry(registry)
}

fn off_route(refusal: &Refusal) -> (Vec<String>, Vec<String>, bool) {
    match refusal {
        Refusal::OffRoute(off) => (
            off.expected.iter().map(ToString::to_string).collect(),
            off.waiting_on.iter().map(ToString::to_string).collect(),
            off.ahead,
        ),
        other => panic!("expected OffRoute, got {other}"),
    }
}

#[test]
fn a_strict_route_refuses_an_off_route_hand_off_naming_the_expected_agencies() {
    let mut world = strict_world();
    world.open("construction-permit");
    let refusal = world.hand_off(FRONT, "MOF").unwrap_err();
    assert_eq!(refusal.class(), RefusalClass::FailedPrecondition);
    assert_eq!(
        off_route(&refusal),
        (vec!["MPWT".into(), "MAE".into()], vec![], false)
    );
    let message = refusal.to_string();
    assert!(message.contains("hand off to MPWT or MAE"), "{message}");
    assert_eq!(world.events.len(), 1, "nothing written");
}

#[test]
fn a_strict_route_allows_the_parallel_steps_of_one_stage() {
    let mut world = strict_world();
    world.open("construction-permit");
    world.hand_off(FRONT, "MPWT").expect("stage 1");
    world
        .hand_off(FRONT, "MAE")
        .expect("stage 1 runs in parallel");
}

#[test]
fn a_strict_route_refuses_a_hand_off_ahead_of_an_unfinished_stage() {
    let mut world = strict_world();
    world.open("construction-permit");
    world.hand_off(FRONT, "MPWT").unwrap();
    let refusal = world.hand_off(FRONT, "MOPS").unwrap_err();
    assert_eq!(
        off_route(&refusal),
        (vec!["MAE".into()], vec!["MPWT".into()], true)
    );
    world.hand_off(FRONT, "MAE").unwrap();
    let refusal = world.hand_off(FRONT, "MOPS").unwrap_err();
    assert_eq!(
        off_route(&refusal),
        (vec![], vec!["MPWT".into(), "MAE".into()], true)
    );
    assert!(
        refusal.to_string().contains("wait until MAE and MPWT")
            || refusal.to_string().contains("wait until MPWT and MAE"),
        "{refusal}"
    );
}

#[test]
fn a_strict_route_moves_on_once_a_stage_is_completed() {
    let mut world = strict_world();
    world.open("construction-permit");
    for agency in ["MPWT", "MAE"] {
        world.hand_off(FRONT, agency).unwrap();
        world.accept(agency).unwrap();
        world.complete(agency).unwrap();
    }
    world.hand_off(FRONT, "MOPS").expect("stage 2 is next");
    world.accept("MOPS").unwrap();
    world.complete("MOPS").unwrap();
    let refusal = world.hand_off(FRONT, "MPWT").unwrap_err();
    assert!(
        refusal.to_string().contains("route is complete"),
        "{refusal}"
    );
}

#[test]
fn a_step_sent_back_is_expected_again_and_any_of_admits_each_choice() {
    let mut world = strict_world();
    world.open("investment-licence");
    for agency in ["MOF", "MOIC"] {
        world.hand_off(FRONT, agency).unwrap();
        world.accept(agency).unwrap();
        world.complete(agency).unwrap();
    }
    world
        .hand_off(FRONT, "MOH")
        .expect("one of the sector ministries");
    world.send_back("MOH").unwrap();
    let refusal = world.hand_off(FRONT, "MOF").unwrap_err();
    let (expected, _, _) = off_route(&refusal);
    assert!(expected.contains(&"MPWT".to_owned()), "{expected:?}");
    world
        .hand_off(FRONT, "MPWT")
        .expect("another sector ministry");
}

#[test]
fn a_holder_on_a_strict_route_cannot_hand_on_past_its_own_stage() {
    let mut world = strict_world();
    world.open("investment-licence");
    world.hand_off(FRONT, "MOF").unwrap();
    world.accept("MOF").unwrap();
    let refusal = world.hand_off("MOF", "MOIC").unwrap_err();
    assert_eq!(off_route(&refusal), (vec![], vec!["MOF".into()], true));
}

#[test]
fn an_answer_to_an_info_request_is_not_a_step_of_the_route() {
    let mut world = strict_world();
    world.open("construction-permit");
    world.hand_off(FRONT, "MPWT").unwrap();
    world.accept("MPWT").unwrap();
    world.request_info("MPWT").unwrap();
    world.hand_off(FRONT, "MPWT").expect("the answer goes back");
}

#[test]
fn a_route_that_is_not_strict_accepts_any_order() {
    let mut world = World::new();
    world.open("construction-permit");
    world.hand_off(FRONT, "MOPS").expect("ahead of the route");
    world.hand_off(FRONT, "MOF").expect("off the route");
}

fn notify(world: &mut World, to: &str) -> Result<onedoor_case::CaseEvent, Refusal> {
    world.act(FRONT, Action::NotifyClosed { to: code(to) })
}

fn withdrawn_with_two_open_tasks() -> World {
    let mut world = World::new();
    world.open("construction-permit");
    world.hand_off(FRONT, "MPWT").unwrap();
    world.accept("MPWT").unwrap();
    world.hand_off(FRONT, "MAE").unwrap();
    world.hand_off(FRONT, "MOF").unwrap();
    world.send_back("MOF").unwrap();
    world
        .act(
            FRONT,
            Action::Resolve {
                resolution: Resolution::Withdrawn,
                note: "the citizen withdrew".into(),
            },
        )
        .unwrap();
    world
}

#[test]
fn a_resolution_owes_a_notice_to_each_agency_whose_task_it_closed() {
    let world = withdrawn_with_two_open_tasks();
    assert_eq!(
        world.state().unnotified_closed_tasks(),
        vec![code("MAE"), code("MPWT")],
        "MOF had sent its task back before"
    );
}

#[test]
fn the_origin_notifies_each_closed_task_once_repeating_the_resolution() {
    let mut world = withdrawn_with_two_open_tasks();
    let resolved = world.events.last().unwrap().event_id;
    let notice = notify(&mut world, "MAE").expect("MAE is owed a notice");
    assert_eq!(notice.to, Some(code("MAE")));
    assert_eq!(notice.causation, Some(resolved));
    assert_eq!(
        notice.body,
        EventBody::TaskClosed {
            resolution: Resolution::Withdrawn,
            note: "the citizen withdrew".into()
        }
    );
    let again = notify(&mut world, "MAE").unwrap_err();
    assert!(matches!(again, Refusal::AlreadyNotified { .. }), "{again}");
    notify(&mut world, "MPWT").unwrap();
    assert!(world.state().unnotified_closed_tasks().is_empty());
    let refolded = CaseState::fold(&world.events).unwrap().unwrap();
    assert_eq!(&refolded, world.state(), "readers fold the notices alike");
}

#[test]
fn nobody_is_notified_who_held_no_task_at_the_resolution() {
    let mut world = withdrawn_with_two_open_tasks();
    for agency in ["MOF", "MOPS"] {
        let refusal = notify(&mut world, agency).unwrap_err();
        assert!(
            matches!(refusal, Refusal::NothingToNotify { .. }),
            "{refusal}"
        );
    }
    let refusal = world.accept("MAE").unwrap_err();
    assert!(matches!(refusal, Refusal::CaseResolved { .. }), "{refusal}");
}

#[test]
fn only_the_origin_may_write_a_notice_and_only_after_the_resolution() {
    let mut world = withdrawn_with_two_open_tasks();
    let resolved = world.state().clone();
    let mut forged = notify(&mut world, "MAE").unwrap();
    forged.from = code("MPWT");
    let refusal = authorize_after_resolution(&resolved, &forged).unwrap_err();
    assert!(matches!(refusal, Refusal::NotOrigin { .. }), "{refusal}");

    let mut open = World::new();
    open.open("construction-permit");
    open.hand_off(FRONT, "MPWT").unwrap();
    let refusal = notify(&mut open, "MPWT").unwrap_err();
    assert!(
        matches!(refusal, Refusal::NothingToNotify { .. }),
        "{refusal}"
    );
}

#[test]
fn a_notice_that_misstates_the_resolution_is_refused_by_readers() {
    let mut world = withdrawn_with_two_open_tasks();
    let resolved = world.state().clone();
    let mut notice = notify(&mut world, "MAE").unwrap();
    notice.body = EventBody::TaskClosed {
        resolution: Resolution::Denied,
        note: "the citizen withdrew".into(),
    };
    let refusal = authorize_after_resolution(&resolved, &notice).unwrap_err();
    assert!(
        matches!(refusal, Refusal::NoticeMismatch { .. }),
        "{refusal}"
    );
}
