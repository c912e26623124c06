//! Answers to a task handed out by an agency the registry has since ended: the holder's
//! acceptance, completion or send-back goes to the sender's successor (the worker never names
//! the receiver), and readers believe the old address, the successor, and nothing else.

mod support;

use std::path::PathBuf;

use onedoor_case::{
    AgencyCode, CaseEvent, CaseState, EventBody, EventId, Refusal, Registry, answer_receiver,
    authorize_in_registry,
};
use proptest::prelude::*;
use support::{FRONT, World, code, shipped_registry};

fn registry_2021() -> Registry {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2021.toml");
    Registry::load(&path).expect("2021 registry is valid")
}

/// Agencies 2025 ends with a successor: (code, successor).
const ENDED: [(&str, &str); 6] = [
    ("MAF", "MAE"),
    ("MONRE", "MAE"),
    ("MEM", "MOIC"),
    ("MPI", "MOF"),
    ("MICT", "MCT"),
    ("MOHA", "PMO"),
];
/// Agencies current in both registries, which may hold a task across the change.
const HOLDERS: [&str; 7] = ["MOIC", "MOF", "MOJ", "MPWT", "MOH", "MOES", "PMO"];

/// Under 2021, the front office hands the case to `sender`, which accepts and hands it on to
/// `holder`; then the bus moves to 2025 (the sender's own task may stay open: it is the
/// handed-out one that matters here).
fn handed_out_in_2021(sender: &str, holder: &str) -> World {
    let mut world = World::with_registry(registry_2021());
    world.open("investment-licence");
    world
        .hand_off(FRONT, sender)
        .expect("front office hands off");
    world.accept(sender).expect("sender accepts");
    world.hand_off(sender, holder).expect("sender hands on");
    world.registry = shipped_registry();
    world
}

/// `event` re-addressed to `to`, as a forger (or an adapter on another registry) might write it.
fn addressed(event: &CaseEvent, to: &str) -> CaseEvent {
    CaseEvent {
        to: Some(code(to)),
        event_id: EventId::generate(),
        ..event.clone()
    }
}

/// Would a reader holding `registry` believe `event` after `before`: the fold, then the
/// registry's half of the rules.
fn believed(before: &CaseState, event: &CaseEvent, registry: &Registry) -> Result<(), String> {
    authorize_in_registry(Some(before), event, registry).map_err(|r| r.to_string())?;
    CaseState::apply(Some(before.clone()), event)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn answers_to_a_merged_sender_go_to_its_successor() {
    let mut world = handed_out_in_2021("MPI", "MOIC");
    let accepted = world.accept("MOIC").expect("accept");
    assert_eq!(accepted.to, Some(code("MOF")));
    let completed = world.complete("MOIC").expect("complete");
    assert_eq!(completed.to, Some(code("MOF")));
    assert!(!world.state().tasks.contains_key(&code("MOIC")));

    let mut renamed = handed_out_in_2021("MICT", "MOJ");
    let sent_back = renamed.send_back("MOJ").expect("send back, unread");
    assert_eq!(sent_back.to, Some(code("MCT")));
}

#[test]
fn under_the_registry_that_still_lists_the_sender_answers_go_to_it() {
    let mut world = handed_out_in_2021("MPI", "MOIC");
    world.registry = registry_2021();
    let accepted = world.accept("MOIC").expect("accept");
    assert_eq!(accepted.to, Some(code("MPI")));
}

/// MPI handed MOF a task, then merged into MOF: MOF does not answer itself.
#[test]
fn a_holder_that_is_the_senders_successor_answers_the_old_address() {
    let mut world = handed_out_in_2021("MPI", "MOF");
    let accepted = world.accept("MOF").expect("accept");
    assert_eq!(accepted.to, Some(code("MPI")));
    world.complete("MOF").expect("complete");
}

#[test]
fn readers_believe_the_old_address_and_the_successor_and_nothing_else() {
    let world = handed_out_in_2021("MPI", "MOIC");
    let before = world.state().clone();
    let mut probe = world;
    let decided = probe.accept("MOIC").expect("accept");
    let new = shipped_registry();

    believed(&before, &decided, &new).expect("the successor");
    believed(&before, &addressed(&decided, "MPI"), &new).expect("the old address");
    let err = believed(&before, &addressed(&decided, "MOJ"), &new).unwrap_err();
    assert!(
        err.contains("must go to Some(AgencyCode(\"MOF\"))") || err.contains("MOF"),
        "{err}"
    );
    let err = believed(&before, &addressed(&decided, "MOIC"), &new).unwrap_err();
    assert!(err.contains("accepted"), "an answer to itself: {err}");
    // Under 2021 MPI is current: the successor is not a receiver yet.
    let err = believed(&before, &decided, &registry_2021()).unwrap_err();
    assert!(err.contains("MPI"), "{err}");
}

/// Without a registry the fold cannot know successors: it lets another receiver through and
/// the registry's half refuses it, with the receiver it expected.
#[test]
fn the_registry_half_names_the_receiver_it_expected() {
    let world = handed_out_in_2021("MEM", "MPWT");
    let before = world.state().clone();
    let mut probe = world;
    let decided = probe.accept("MPWT").expect("accept");
    let forged = addressed(&decided, "MOF");
    CaseState::apply(Some(before.clone()), &forged).expect("the fold cannot tell");
    let refusal = authorize_in_registry(Some(&before), &forged, &shipped_registry()).unwrap_err();
    assert!(
        matches!(
            &refusal,
            Refusal::WrongReceiver { expected: Some(e), found: Some(f), .. }
                if *e == code("MOIC") && *f == code("MOF")
        ),
        "{refusal}"
    );
}

/// An agency merged into another that is renamed later: under the later registry the answer
/// written to the first successor still verifies, and new answers go to the final one.
#[test]
fn an_answer_to_an_earlier_successor_verifies_under_a_later_registry() {
    let later = later_registry();
    let mut world = handed_out_in_2021("MPI", "MOIC");
    let accepted = world.accept("MOIC").expect("accept under 2025");
    assert_eq!(accepted.to, Some(code("MOF")));
    let task = &world.state().tasks[&code("MOIC")];
    assert_eq!(answer_receiver(task, &later), &code("MFE"));
    let before = world.state().clone();
    world.registry = later.clone();
    let completed = world
        .complete("MOIC")
        .expect("complete under the later one");
    assert_eq!(completed.to, Some(code("MFE")));
    believed(&before, &addressed(&completed, "MOF"), &later).expect("written under 2025");
    let err = believed(&before, &addressed(&completed, "MOJ"), &later).unwrap_err();
    assert!(err.contains("MFE"), "{err}");
}

/// 2025 with MOF renamed to MFE (a made-up code): MPI's final successor is MFE now.
fn later_registry() -> Registry {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2025.toml");
    let text = std::fs::read_to_string(path).expect("read 2025");
    let text = text
        .replacen("version = \"2025-03\"", "version = \"2026-01\"", 1)
        .replacen(
            "effective_from = 2025-05-01",
            "effective_from = 2026-01-05",
            1,
        )
        .replace("merged_into = \"MOF\"", "merged_into = \"MFE\"")
        .replace("agency = \"MOF\"", "agency = \"MFE\"");
    let mof = "code = \"MOF\"\n";
    let at = text.find(mof).expect("MOF entry");
    let text = format!(
        "{}code = \"MOF\"\nrenamed_to = \"MFE\"\n{}\n[[agency]]\ncode = \"MFE\"\nkind = \"ministry\"\nname_en = \"Ministry of Finance and Economy\"\nname_lo = \"ກະຊວງການເງິນ ແລະ ເສດຖະກິດ\"\n",
        &text[..at],
        &text[at + mof.len()..]
    );
    Registry::from_toml(&text, "later.toml").expect("the later registry is valid")
}

fn pair() -> impl Strategy<Value = ((&'static str, &'static str), &'static str)> {
    (
        prop::sample::select(ENDED.to_vec()),
        prop::sample::select(HOLDERS.to_vec()),
    )
}

fn answer() -> impl Strategy<Value = u8> {
    0u8..3
}

fn all_agencies() -> Vec<AgencyCode> {
    shipped_registry().agencies.keys().cloned().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For every ended sender, holder and kind of answer: the decided receiver is the
    /// sender's successor (or the old address when that is the holder itself), and readers
    /// believe exactly the old address and receivers sharing the sender's final successor.
    #[test]
    fn decided_answers_reach_the_successor_and_readers_agree(
        ((sender, successor), holder) in pair(),
        kind in answer(),
    ) {
        let mut world = handed_out_in_2021(sender, holder);
        if kind == 1 {
            world.accept(holder).expect("accept");
        }
        let before = world.state().clone();
        let decided = match kind {
            0 => world.accept(holder),
            1 => world.complete(holder),
            _ => world.send_back(holder),
        }.expect("the holder answers");
        let expected = if successor == holder { sender } else { successor };
        prop_assert_eq!(decided.to.clone(), Some(code(expected)));
        let is_answer = matches!(
            decided.body,
            EventBody::Accepted | EventBody::Completed { .. } | EventBody::SentBack { .. }
        );
        prop_assert!(is_answer);
        let new = shipped_registry();
        for to in all_agencies() {
            let forged = addressed(&decided, to.as_str());
            let ok = believed(&before, &forged, &new).is_ok();
            let should = to.as_str() != holder
                && (to.as_str() == sender
                    || new.successor_of(&to) == Some(&code(successor)));
            prop_assert_eq!(ok, should, "answer to {}", to);
        }
    }
}
