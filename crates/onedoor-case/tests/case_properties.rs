//! Properties of the case rules over random command sequences from random agencies.

mod support;

use onedoor_case::{Action, AgencyKind, CaseState, CaseStatus, Resolution, ServiceCode, TaskState};
use proptest::prelude::*;
use support::{FRONT, World, code, shipped_registry};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// Agencies commands come from and go to: front offices, ministries on and off the routes, a
/// merged-away ministry and an unknown code.
const AGENCIES: [&str; 9] = [
    FRONT,
    "ODSC-CPS-PAKSE",
    "MOIC",
    "MOF",
    "MOPS",
    "MPWT",
    "MAE",
    "MONRE",
    "MOXX",
];
const SERVICES: [&str; 3] = [
    "enterprise-registration",
    "construction-permit",
    "no-such-service",
];

fn agency() -> impl Strategy<Value = &'static str> {
    // The route's agencies most of the time, the odd ones now and then.
    prop_oneof![4 => prop::sample::select(AGENCIES[..7].to_vec()), 1 => prop::sample::select(AGENCIES.to_vec())]
}

fn text() -> impl Strategy<Value = String> {
    // Mostly valid text, so sequences get past input checks and reach deep states.
    prop_oneof![8 => Just("ok".to_owned()), 1 => Just(String::new()), 1 => Just("x".repeat(5000))]
}

fn action() -> impl Strategy<Value = Action> {
    let resolution = prop::sample::select(vec![
        Resolution::Approved,
        Resolution::Denied,
        Resolution::Withdrawn,
    ]);
    prop_oneof![
        1 => (prop::sample::select(SERVICES.to_vec()), text())
            .prop_map(|(s, t)| Action::Open { service: ServiceCode::parse(s).expect("valid"), citizen_ref: t.clone(), summary: t, documents: vec![] }),
        6 => (agency(), text()).prop_map(|(to, instructions)| Action::HandOff { to: code(to), instructions, documents: vec![], due_working_days: None }),
        3 => Just(Action::Accept),
        3 => text().prop_map(|outcome| Action::Complete { outcome, note: String::new(), documents: vec![] }),
        1 => text().prop_map(|reason| Action::SendBack { reason }),
        1 => text().prop_map(|question| Action::RequestInfo { question }),
        1 => (agency(), text()).prop_map(|(holder, reason)| Action::TakeBack { holder: code(holder), reason }),
        // Rare: a resolution ends the sequence's interesting part.
        1 => (resolution, text()).prop_map(|(resolution, note)| Action::Resolve { resolution, note }),
    ]
}

/// Who sends a command: resolved against the case when it runs, so random sequences often hit
/// an agency that may act (the origin, a task holder) and still try everyone else.
#[derive(Debug, Clone)]
enum Who {
    Origin,
    Holder(prop::sample::Index),
    Anyone(&'static str),
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        2 => Just(Who::Origin),
        5 => any::<prop::sample::Index>().prop_map(Who::Holder),
        2 => agency().prop_map(Who::Anyone),
    ]
}

/// A case always starts with a valid opening so the sequences reach the interesting states.
fn commands() -> impl Strategy<Value = Vec<(Who, Action, i64)>> {
    prop::collection::vec((who(), action(), 0i64..72), 1..60)
}

fn run(commands: &[(Who, Action, i64)]) -> World {
    let mut world = World::new();
    world.open("construction-permit");
    for (who, action, hours) in commands {
        world.now += Duration::hours(*hours);
        let before = world.state.clone();
        let count = world.events.len();
        let holders: Vec<String> = world.state().tasks.keys().map(|c| c.to_string()).collect();
        let agency = match who {
            Who::Origin => FRONT.to_owned(),
            Who::Holder(i) if !holders.is_empty() => holders[i.index(holders.len())].clone(),
            Who::Holder(_) => FRONT.to_owned(),
            Who::Anyone(code) => (*code).to_owned(),
        };
        if world.act(&agency, action.clone()).is_err() {
            assert_eq!(world.state, before, "a refused command changed the state");
            assert_eq!(
                world.events.len(),
                count,
                "a refused command wrote an event"
            );
        }
    }
    world
}

fn check_invariants(state: &CaseState) {
    let registry = shipped_registry();
    if state.is_resolved() {
        assert!(state.tasks.is_empty(), "a resolved case holds no tasks");
    }
    for (holder, task) in &state.tasks {
        assert_eq!(holder, &task.agency);
        assert_ne!(holder, &state.origin);
        let kind = registry.agency(holder).map(|a| a.kind);
        assert!(
            matches!(
                kind,
                Some(AgencyKind::Ministry | AgencyKind::MinisterialBody)
            ),
            "{holder} cannot hold a task"
        );
        assert!(task.due_at > task.handed_off_at);
        assert_eq!(
            task.accepted_at.is_some(),
            task.state == TaskState::Accepted
        );
    }
    match state.status() {
        CaseStatus::InProgress | CaseStatus::AwaitingInfo => assert!(!state.tasks.is_empty()),
        CaseStatus::AtFrontOffice => assert!(state.tasks.is_empty()),
        CaseStatus::Resolved(_) => assert!(state.resolution.is_some()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn accepted_events_fold_to_a_valid_state_with_gapless_versions(commands in commands()) {
        let world = run(&commands);
        for (index, event) in world.events.iter().enumerate() {
            prop_assert_eq!(event.version, index as u64 + 1);
            prop_assert_eq!(event.causation.is_none(), index == 0, "only the opening has no cause");
            if let Some(cause) = event.causation {
                prop_assert!(world.events[..index].iter().any(|e| e.event_id == cause), "cause is an earlier event");
            }
        }
        let folded = CaseState::fold(&world.events).expect("history folds").expect("non-empty");
        check_invariants(&folded);
    }

    #[test]
    fn folding_the_whole_history_equals_applying_events_one_by_one(commands in commands()) {
        let world = run(&commands);
        let folded = CaseState::fold(&world.events).expect("history folds");
        prop_assert_eq!(folded.as_ref(), world.state.as_ref());
        let mut stepwise = None;
        for event in &world.events {
            stepwise = Some(CaseState::apply(stepwise, event).expect("event folds"));
        }
        prop_assert_eq!(stepwise, folded);
    }

    #[test]
    fn replaying_an_event_or_skipping_one_is_detected(commands in commands(), pick in any::<prop::sample::Index>()) {
        let world = run(&commands);
        if world.events.len() < 3 {
            return Ok(());
        }
        let i = pick.index(world.events.len() - 1) + 1; // never the opening event
        let mut doubled = world.events.clone();
        doubled.insert(i, world.events[i].clone());
        prop_assert!(CaseState::fold(&doubled).is_err());
        let mut skipped = world.events.clone();
        skipped.remove(i - 1);
        prop_assert!(CaseState::fold(&skipped).is_err());
    }

    #[test]
    fn an_event_applied_in_place_either_folds_or_changes_nothing(
        commands in commands(),
        at in any::<prop::sample::Index>(),
        body_of in any::<prop::sample::Index>(),
        sender in agency(),
        receiver in agency(),
    ) {
        // The next event of a prefix, with another event's body, sender and receiver: mostly
        // refused, by any of the checks. The verifiers fold long histories in place, so a
        // refusal that changed half the state would corrupt every later check.
        let world = run(&commands);
        let n = world.events.len();
        let i = at.index(n);
        let mut state = CaseState::fold(&world.events[..i]).expect("prefix folds");
        let before = state.clone();
        let mut stray = world.events[body_of.index(n)].clone();
        stray.version = i as u64 + 1;
        stray.from = code(sender);
        stray.to = Some(code(receiver)).filter(|_| stray.to.is_some());
        let expected = CaseState::apply(before.clone(), &stray);
        match CaseState::apply_in_place(&mut state, &stray) {
            Ok(()) => prop_assert_eq!(state, expected.ok()),
            Err(_) => {
                prop_assert!(expected.is_err());
                prop_assert_eq!(state, before, "a refused event changed the state");
            }
        }
    }

    #[test]
    fn due_times_fall_on_working_days_after_exactly_the_limit(
        start_minutes in 0i64..(3 * 365 * 24 * 60),
        working_days in 1u32..30,
    ) {
        let calendar = shipped_registry().calendar;
        let start: OffsetDateTime = datetime!(2025-01-01 00:00 +07:00) + Duration::minutes(start_minutes);
        let due = calendar.due_at(start, working_days);
        let due_day = due.to_offset(calendar.utc_offset).date();
        prop_assert!(calendar.is_working_day(due_day), "due on {due_day}, not a working day");
        prop_assert!(due > start);
        // Exactly `working_days` working days lie after the start day, up to the due day.
        let mut day = start.to_offset(calendar.utc_offset).date();
        let mut counted = 0;
        while day < due_day {
            day = day.next_day().expect("in range");
            if calendar.is_working_day(day) { counted += 1; }
        }
        prop_assert_eq!(counted, working_days);
    }
}

/// Guards the generator itself: if most commands were refused, the properties above would only
/// ever see trivial cases and could not fail.
#[test]
fn random_sequences_reach_deep_into_the_case() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut deep, mut resolved, mut parallel) = (0, 0, 0);
    for _ in 0..200 {
        let commands = commands()
            .new_tree(&mut runner)
            .expect("generates")
            .current();
        let world = run(&commands);
        deep += usize::from(world.events.len() >= 5);
        resolved += usize::from(world.state().is_resolved());
        parallel += usize::from(world.state().past_tasks.len() + world.state().tasks.len() >= 2);
    }
    assert!(deep >= 100, "only {deep}/200 sequences reached 5 events");
    assert!(
        resolved >= 20,
        "only {resolved}/200 sequences resolved the case"
    );
    assert!(
        parallel >= 50,
        "only {parallel}/200 sequences had two tasks"
    );
}
