//! One test per case rule, named for the rule.

mod support;

use onedoor_case::{
    Action, CaseStatus, EventBody, Refusal, RefusalClass, Resolution, ServiceCode, TaskState,
};
use support::{FRONT, World, code};

#[test]
fn a_front_office_opens_a_case_at_version_one() {
    let mut world = World::new();
    let event = world.open("enterprise-registration");
    assert_eq!(event.version, 1);
    assert_eq!(event.to, None);
    assert_eq!(world.state().status(), CaseStatus::AtFrontOffice);
    assert_eq!(world.state().origin, code(FRONT));
}

#[test]
fn a_ministry_cannot_open_a_case() {
    let mut world = World::new();
    let action = Action::Open {
        service: ServiceCode::parse("enterprise-registration").unwrap(),
        citizen_ref: "x".into(),
        summary: String::new(),
        documents: vec![],
    };
    let refusal = world.act("MOIC", action).unwrap_err();
    assert!(
        matches!(refusal, Refusal::NotAFrontOffice { .. }),
        "{refusal}"
    );
    assert_eq!(refusal.class(), RefusalClass::PermissionDenied);
    assert!(world.events.is_empty());
}

#[test]
fn a_case_for_a_service_outside_the_catalogue_is_refused() {
    let mut world = World::new();
    let action = Action::Open {
        service: ServiceCode::parse("moon-landing").unwrap(),
        citizen_ref: "x".into(),
        summary: String::new(),
        documents: vec![],
    };
    let refusal = world.act(FRONT, action).unwrap_err();
    assert_eq!(refusal.class(), RefusalClass::InvalidArgument);
}

#[test]
fn commands_on_a_case_that_does_not_exist_are_not_found() {
    let mut world = World::new();
    assert_eq!(
        world.accept("MOIC").unwrap_err().class(),
        RefusalClass::NotFound
    );
}

#[test]
fn the_origin_hands_off_and_the_receiver_gets_a_pending_task() {
    let mut world = World::new();
    world.open("enterprise-registration");
    let event = world.hand_off(FRONT, "MOIC").unwrap();
    assert_eq!(event.to, Some(code("MOIC")));
    let task = &world.state().tasks[&code("MOIC")];
    assert_eq!(task.state, TaskState::Pending);
    assert_eq!(task.handed_by, code(FRONT));
    assert_eq!(world.state().status(), CaseStatus::InProgress);
}

#[test]
fn handoff_to_oneself_is_invalid_argument() {
    let mut world = World::new();
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MOIC").unwrap();
    world.accept("MOIC").unwrap();
    let refusal = world.hand_off("MOIC", "MOIC").unwrap_err();
    assert!(matches!(refusal, Refusal::HandOffToSelf { .. }));
    assert_eq!(refusal.class(), RefusalClass::InvalidArgument);
}

#[test]
fn handoff_to_an_unknown_agency_is_invalid_argument() {
    let mut world = World::new();
    world.open("enterprise-registration");
    let refusal = world.hand_off(FRONT, "MOXX").unwrap_err();
    assert!(matches!(refusal, Refusal::UnknownReceiver { .. }));
}

#[test]
fn handoff_to_a_merged_ministry_names_its_successor() {
    let mut world = World::new();
    world.open("land-title-transfer");
    let refusal = world.hand_off(FRONT, "MONRE").unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "agency MONRE was merged into MAE; hand off to MAE"
    );
}

#[test]
fn handoff_to_a_front_office_is_refused() {
    let mut world = World::new();
    world.open("land-title-transfer");
    assert!(matches!(
        world.hand_off(FRONT, "ODSC-CPS-PAKSE").unwrap_err(),
        Refusal::ReceiverIsFrontOffice { .. }
    ));
}

#[test]
fn a_second_open_task_for_the_same_agency_is_refused() {
    let mut world = World::new();
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MOIC").unwrap();
    let refusal = world.hand_off(FRONT, "MOIC").unwrap_err();
    assert!(matches!(refusal, Refusal::TaskAlreadyOpen { .. }));
    assert_eq!(refusal.class(), RefusalClass::FailedPrecondition);
}

#[test]
fn an_agency_without_a_task_cannot_hand_the_case_on() {
    let mut world = World::new();
    world.open("enterprise-registration");
    let refusal = world.hand_off("MOF", "MOPS").unwrap_err();
    assert!(matches!(refusal, Refusal::NoTask { .. }));
    assert_eq!(refusal.class(), RefusalClass::PermissionDenied);
}

#[test]
fn a_holder_hands_on_only_after_accepting() {
    let mut world = World::new();
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MOIC").unwrap();
    assert!(matches!(
        world.hand_off("MOIC", "MOF").unwrap_err(),
        Refusal::TaskNotAccepted { .. }
    ));
    world.accept("MOIC").unwrap();
    world.hand_off("MOIC", "MOF").unwrap();
    assert_eq!(world.state().tasks[&code("MOF")].handed_by, code("MOIC"));
}

#[test]
fn only_the_receiver_accepts_a_pending_task_and_only_once() {
    let mut world = World::new();
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MOIC").unwrap();
    assert!(matches!(
        world.accept("MOF").unwrap_err(),
        Refusal::NoTask { .. }
    ));
    let accepted = world.accept("MOIC").unwrap();
    assert_eq!(accepted.to, Some(code(FRONT)), "the sender is told");
    assert!(matches!(
        world.accept("MOIC").unwrap_err(),
        Refusal::TaskAlreadyAccepted { .. }
    ));
}

#[test]
fn only_the_holder_completes_and_only_after_accepting() {
    let mut world = World::new();
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MOIC").unwrap();
    assert!(matches!(
        world.complete("MOIC").unwrap_err(),
        Refusal::TaskNotAccepted { .. }
    ));
    assert!(matches!(
        world.complete("MOF").unwrap_err(),
        Refusal::NoTask { .. }
    ));
    world.accept("MOIC").unwrap();
    let done = world.complete("MOIC").unwrap();
    assert_eq!(done.to, Some(code(FRONT)));
    assert!(world.state().tasks.is_empty());
    assert_eq!(world.state().past_tasks.len(), 1);
}

#[test]
fn a_pending_task_can_be_sent_back_with_a_reason() {
    let mut world = World::new();
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MOF").unwrap();
    let empty = world
        .act(
            "MOF",
            Action::SendBack {
                reason: "  ".into(),
            },
        )
        .unwrap_err();
    assert_eq!(empty, Refusal::Empty { field: "reason" });
    let back = world.send_back("MOF").unwrap();
    assert_eq!(back.to, Some(code(FRONT)));
    assert!(world.state().tasks.is_empty());
}

#[test]
fn info_requests_go_to_the_originating_front_office() {
    let mut world = World::new();
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MOIC").unwrap();
    world.accept("MOIC").unwrap();
    world.hand_off("MOIC", "MOF").unwrap();
    world.accept("MOF").unwrap();
    let asked = world.request_info("MOF").unwrap();
    assert_eq!(asked.to, Some(code(FRONT)));
    assert_eq!(world.state().status(), CaseStatus::AwaitingInfo);
}

#[test]
fn parallel_reviews_hold_tasks_at_several_agencies() {
    let mut world = World::new();
    world.open("construction-permit");
    world.hand_off(FRONT, "MPWT").unwrap();
    world.hand_off(FRONT, "MAE").unwrap();
    assert_eq!(world.state().tasks.len(), 2);
    world.accept("MAE").unwrap();
    world.complete("MAE").unwrap();
    assert_eq!(
        world
            .state()
            .tasks
            .keys()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["MPWT"]
    );
}

#[test]
fn only_the_originating_front_office_resolves() {
    let mut world = World::new();
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MOIC").unwrap();
    world.accept("MOIC").unwrap();
    let refusal = world.resolve("MOIC", Resolution::Denied).unwrap_err();
    assert!(matches!(refusal, Refusal::NotOrigin { .. }));
    let refusal = world
        .resolve("ODSC-CPS-PAKSE", Resolution::Withdrawn)
        .unwrap_err();
    assert_eq!(refusal.class(), RefusalClass::PermissionDenied);
}

#[test]
fn approval_waits_for_every_open_task_but_withdrawal_does_not() {
    let mut world = World::new();
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MOIC").unwrap();
    assert!(matches!(
        world.resolve(FRONT, Resolution::Approved).unwrap_err(),
        Refusal::OpenTasksRemain { .. }
    ));
    world.resolve(FRONT, Resolution::Withdrawn).unwrap();
    assert_eq!(
        world.state().status(),
        CaseStatus::Resolved(Resolution::Withdrawn)
    );
    assert!(world.state().tasks.is_empty());
}

#[test]
fn nothing_happens_on_a_resolved_case() {
    let mut world = World::new();
    world.open("enterprise-registration");
    world.resolve(FRONT, Resolution::Withdrawn).unwrap();
    for refusal in [
        world.hand_off(FRONT, "MOIC").unwrap_err(),
        world.resolve(FRONT, Resolution::Approved).unwrap_err(),
        world.accept("MOIC").unwrap_err(),
    ] {
        assert!(matches!(refusal, Refusal::CaseResolved { .. }), "{refusal}");
        assert_eq!(refusal.class(), RefusalClass::FailedPrecondition);
    }
    assert_eq!(world.events.len(), 2);
}

#[test]
fn oversize_text_is_refused_before_anything_else() {
    let mut world = World::new();
    world.open("enterprise-registration");
    let huge = "ກ".repeat(2000); // 3 bytes each: 6000 bytes
    let refusal = world
        .act(
            FRONT,
            Action::HandOff {
                to: code("MOIC"),
                instructions: huge,
                documents: vec![],
                due_working_days: None,
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            refusal,
            Refusal::TooLong {
                field: "instructions",
                max: 4096,
                found: 6000
            }
        ),
        "{refusal}"
    );
    assert_eq!(world.state().version, 1);
}

#[test]
fn a_merged_ministry_still_finishes_the_task_it_held() {
    // Cases in flight at a merge: the task was handed to MAF under the 2021 registry, then the
    // 2025 registry (MAF merged into MAE) takes over; MAF may still complete it.
    let old = onedoor_case::Registry::load(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/registry/lao-2021.toml"),
    )
    .unwrap();
    let mut world = World::with_registry(old);
    world.open("construction-permit");
    world.hand_off(FRONT, "MONRE").unwrap();
    world.registry = support::shipped_registry();
    world.accept("MONRE").unwrap();
    world.complete("MONRE").unwrap();
    assert!(world.state().tasks.is_empty());
}

#[test]
fn planned_steps_take_their_limit_from_the_catalogue_and_others_the_default() {
    let mut world = World::new();
    world.open("enterprise-registration"); // Monday 2026-11-23 09:00
    let to_moic = world.hand_off(FRONT, "MOIC").unwrap(); // MOIC: 5 working days
    let EventBody::HandedOff { due_at, .. } = to_moic.body else {
        panic!("not a hand-off")
    };
    assert_eq!(due_at, time::macros::datetime!(2026-11-30 23:59:59 +07:00));
    let to_moh = world.hand_off(FRONT, "MOH").unwrap(); // not on the route: default 5
    let EventBody::HandedOff { due_at, .. } = to_moh.body else {
        panic!("not a hand-off")
    };
    assert_eq!(due_at, time::macros::datetime!(2026-11-30 23:59:59 +07:00));
}

#[test]
fn due_times_skip_national_day() {
    let mut world = World::new();
    world.now = time::macros::datetime!(2026-11-30 10:00 +07:00); // Monday; Wed 2 Dec is National Day
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MOIC").unwrap();
    world.accept("MOIC").unwrap();
    let to_mof = world.hand_off("MOIC", "MOF").unwrap(); // MOF: 3 working days: Tue, Thu, Fri
    let EventBody::HandedOff { due_at, .. } = to_mof.body else {
        panic!("not a hand-off")
    };
    assert_eq!(due_at, time::macros::datetime!(2026-12-04 23:59:59 +07:00));
}

#[test]
fn the_origin_answers_an_info_request_with_a_hand_off_that_restarts_the_clock() {
    let mut world = World::new();
    world.open("enterprise-registration");
    world.hand_off(FRONT, "MOIC").unwrap();
    world.accept("MOIC").unwrap();
    world.request_info("MOIC").unwrap();
    let due_before = world.state().tasks[&code("MOIC")].due_at;
    world.now += time::Duration::days(7);
    world.hand_off(FRONT, "MOIC").unwrap();
    let task = &world.state().tasks[&code("MOIC")];
    assert_eq!(task.info_requested, None);
    assert_eq!(
        task.state,
        TaskState::Accepted,
        "the task goes on, it is not a new one"
    );
    assert!(task.due_at > due_before);
    assert_eq!(world.state().status(), CaseStatus::InProgress);
    // Without an open request, a second hand-off is still refused.
    assert!(matches!(
        world.hand_off(FRONT, "MOIC").unwrap_err(),
        Refusal::TaskAlreadyOpen { .. }
    ));
}

#[test]
fn every_event_names_the_event_it_follows_from() {
    let mut world = World::new();
    let opened = world.open("enterprise-registration");
    assert_eq!(opened.causation, None);
    let to_moic = world.hand_off(FRONT, "MOIC").unwrap();
    assert_eq!(to_moic.causation, Some(opened.event_id));
    assert_eq!(
        world.accept("MOIC").unwrap().causation,
        Some(to_moic.event_id)
    );
    let to_mof = world.hand_off("MOIC", "MOF").unwrap();
    assert_eq!(
        to_mof.causation,
        Some(to_moic.event_id),
        "hand-on follows from the holder's task"
    );
    assert_eq!(
        world.send_back("MOF").unwrap().causation,
        Some(to_mof.event_id)
    );
    assert_eq!(
        world.complete("MOIC").unwrap().causation,
        Some(to_moic.event_id)
    );
    assert_eq!(
        world
            .resolve(FRONT, Resolution::Approved)
            .unwrap()
            .causation,
        Some(opened.event_id)
    );
}

#[test]
fn a_hand_off_may_set_its_own_time_limit_within_bounds() {
    let mut world = World::new();
    world.open("enterprise-registration"); // Monday 2026-11-23
    let action = |days| Action::HandOff {
        to: code("MOIC"),
        instructions: String::new(),
        documents: vec![],
        due_working_days: Some(days),
    };
    assert!(matches!(
        world.act(FRONT, action(0)).unwrap_err(),
        Refusal::BadDueDays { .. }
    ));
    assert!(matches!(
        world.act(FRONT, action(91)).unwrap_err(),
        Refusal::BadDueDays { .. }
    ));
    let event = world.act(FRONT, action(1)).unwrap();
    let EventBody::HandedOff { due_at, .. } = event.body else {
        panic!("not a hand-off")
    };
    assert_eq!(due_at, time::macros::datetime!(2026-11-24 23:59:59 +07:00));
}

#[test]
fn malformed_document_references_are_refused() {
    let mut world = World::new();
    world.open("enterprise-registration");
    let doc = |sha: &str| onedoor_case::DocumentRef {
        name: "site-plan.pdf".into(),
        sha256: sha.into(),
        uri: "https://docs.mpwt.gov.la/site-plan.pdf".into(),
        media_type: "application/pdf".into(),
        size_bytes: 1024,
    };
    let hand_off = |documents| Action::HandOff {
        to: code("MPWT"),
        instructions: String::new(),
        documents,
        due_working_days: None,
    };
    let refusal = world.act(FRONT, hand_off(vec![doc("ABC")])).unwrap_err();
    assert!(matches!(refusal, Refusal::BadDocument { .. }), "{refusal}");
    let good = doc(&"a".repeat(64));
    let refusal = world
        .act(FRONT, hand_off(vec![good.clone(); 33]))
        .unwrap_err();
    assert!(
        matches!(
            refusal,
            Refusal::TooMany {
                max: 32,
                found: 33,
                ..
            }
        ),
        "{refusal}"
    );
    let event = world.act(FRONT, hand_off(vec![good.clone()])).unwrap();
    assert!(
        matches!(event.body, EventBody::HandedOff { documents, .. } if documents == vec![good])
    );
}
