//! Random case histories written through the real write path, after the case rules' own
//! property-test generators (`onedoor-case/tests/case_properties.rs`): commands from the origin,
//! from a task holder or from anyone, most of them valid so histories reach deep states
//! (parallel tasks, info requests and answers, send-backs, tasks taken back, resolutions).
//! Refused commands write nothing, as in production.

use onedoor_case::{Action, CaseId, CaseState, Resolution, ServiceCode};
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use time::Duration;

use onedoor_testkit::{FRONT, MONDAY, OTHER_FRONT, TestBus, code};

/// Ministries on and off the routes, a merged-away one, and both front offices.
const AGENCIES: [&str; 8] = [
    FRONT,
    OTHER_FRONT,
    "MOIC",
    "MOF",
    "MOPS",
    "MPWT",
    "MAE",
    "MONRE",
];
const SERVICES: [&str; 2] = ["enterprise-registration", "construction-permit"];

#[derive(Debug, Clone)]
enum Who {
    Origin,
    Holder(prop::sample::Index),
    Anyone(&'static str),
}

fn action() -> impl Strategy<Value = Action> {
    let resolution = prop::sample::select(vec![
        Resolution::Approved,
        Resolution::Denied,
        Resolution::Withdrawn,
    ]);
    prop_oneof![
        12 => (receiver(), prop::option::of(1u32..8)).prop_map(|(to, days)| Action::HandOff {
            to: code(to),
            instructions: "please review".into(),
            documents: vec![],
            due_working_days: days,
        }),
        6 => Just(Action::Accept),
        6 => Just(Action::Complete { outcome: "done".into(), note: String::new(), documents: vec![] }),
        2 => Just(Action::SendBack { reason: "wrong agency".into() }),
        2 => Just(Action::RequestInfo { question: "copy of the lease?".into() }),
        2 => receiver().prop_map(|holder| Action::TakeBack { holder: code(holder), reason: "wrong ministry".into() }),
        // Rare: a resolution ends the history.
        1 => resolution.prop_map(|resolution| Action::Resolve { resolution, note: String::new() }),
    ]
}

/// Mostly ministries that can take a task; now and then a front office, a merged-away ministry
/// or the sender itself, which the rules refuse.
fn receiver() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        5 => prop::sample::select(AGENCIES[2..7].to_vec()),
        1 => prop::sample::select(AGENCIES.to_vec()),
    ]
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        2 => Just(Who::Origin),
        5 => any::<prop::sample::Index>().prop_map(Who::Holder),
        2 => prop::sample::select(AGENCIES.to_vec()).prop_map(Who::Anyone),
    ]
}

/// One case's plan: service, and commands with the hours that pass before each.
fn plan() -> impl Strategy<Value = (&'static str, Vec<(Who, Action, i64)>)> {
    (
        prop::sample::select(SERVICES.to_vec()),
        prop::collection::vec((who(), action(), 0i64..60), 8..40),
    )
}

/// The seed: `ONEDOOR_TEST_SEED` to replay a failure, else a fresh one, printed either way.
pub fn seed() -> u64 {
    let seed = std::env::var("ONEDOOR_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| ulid::Ulid::generate().random() as u64);
    eprintln!("random histories from seed {seed} (set ONEDOOR_TEST_SEED={seed} to replay)");
    seed
}

/// Writes `count` random case histories; returns their ids and how many events were written.
pub async fn write_random_histories(
    bus: &TestBus,
    count: usize,
    seed: u64,
) -> anyhow::Result<(Vec<CaseId>, u64)> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let mut cases = Vec::with_capacity(count);
    let mut written = 0;
    let mut depths = Vec::with_capacity(count);
    for index in 0..count {
        let (service, commands) = plan()
            .new_tree(&mut runner)
            .map_err(|e| anyhow::anyhow!("generating a history: {e}"))?
            .current();
        let mut at = MONDAY + Duration::minutes(index as i64 * 7);
        let case_id = bus
            .open(
                FRONT,
                ServiceCode::parse(service)?.as_str(),
                &format!("LA-REF-{index:04}"),
                &format!("application {index}: ຮ້ານຄ້າ {service}"),
                at,
            )
            .await?;
        written += 1;
        let opened = bus.log.load(case_id).await?;
        let mut state = CaseState::fold(opened.iter().map(|s| &s.event))?;
        for (who, action, hours) in commands {
            at += Duration::hours(hours);
            let Some(current) = state.as_ref() else { break };
            let holders: Vec<String> = current.tasks.keys().map(|c| c.to_string()).collect();
            let agency = match who {
                Who::Origin => FRONT.to_owned(),
                Who::Holder(i) if !holders.is_empty() => holders[i.index(holders.len())].clone(),
                Who::Holder(_) => FRONT.to_owned(),
                Who::Anyone(code) => code.to_owned(),
            };
            match bus.act(case_id, &agency, action, at).await {
                Ok(done) => {
                    written += 1;
                    state = Some(CaseState::apply(state.take(), &done.event)?);
                }
                Err(onedoor_bus::BusError::Refused(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
        cases.push(case_id);
        depths.push(state.as_ref().map_or(0, |s| s.version));
    }
    eprintln!("random histories: versions per case {depths:?}");
    Ok((cases, written))
}
