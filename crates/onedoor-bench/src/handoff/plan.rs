//! Which calls a run makes, decided before any is made: the cases, and for job `j` its case,
//! sender and receiver, its idempotency key and its instructions.
//!
//! # Legal event patterns
//!
//! The case rules allow one open task per agency per case, and a hand-off needs the sender to
//! be the case's origin (or an accepted task holder). So:
//!
//! - **spread** (default): every case is opened first; then each case receives one hand-off to
//!   each ministry, from its origin. Job `j` goes to ministry `j mod M`, and cases are offset per
//!   ministry, so consecutive calls touch different cases and different inboxes, and calls in
//!   flight at once never share a case (while there are more cases than callers).
//! - **hot** (`--hot-cases N`): N cases, and for each (case, ministry) pair one worker loops:
//!   hand off to the ministry, wait until the ministry's system has it, the ministry sends it
//!   back (ending its task), repeat. The N × M workers of a case race for it: every write loses
//!   and re-decides when another landed first, and each case's history grows by two events per
//!   hand-off.
//! - **growth** (`--case-length N`): C cases (`--concurrency`), each with one worker and its
//!   own ministry (case `c` goes to ministry `c mod M`), so nothing contends. The worker loops
//!   as in hot mode (hand off, wait for it to arrive, send back); the warm-up is the rounds that
//!   grow every case to at least N events (1 opening + 2 per round), the measured rounds come
//!   after them.
//!
//! Job numbers are carried in the idempotency key (`bench-<run>-<j>`), which the event keeps,
//! so a receiver knows which call it is looking at; the event id it must have is derived from
//! that key exactly as the adapter derives it.

use onedoor_case::AgencyCode;

use super::BenchArgs;
use super::bus::Agencies;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Spread,
    Hot { cases: usize },
    Growth { cases: usize, length: u64 },
}

impl Mode {
    /// The mode's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Spread => "spread",
            Mode::Hot { .. } => "hot",
            Mode::Growth { .. } => "case-length",
        }
    }
}

/// Rounds (a hand-off and its send-back: two events) that take a freshly opened case (one
/// event) to at least `length` events.
fn rounds_to_reach(length: u64) -> u64 {
    length.saturating_sub(1).div_ceil(2)
}

/// Which calls the run makes. Pure: job `j` always means the same case, sender and receiver.
#[derive(Debug, Clone)]
pub struct Plan {
    pub run: String,
    pub mode: Mode,
    pub fronts: Vec<AgencyCode>,
    pub ministries: Vec<AgencyCode>,
    /// Jobs `0..warmup` are sent but left out of the figures.
    pub warmup: u64,
    pub total: u64,
    pub instructions_bytes: usize,
}

/// One hand-off: which case, from which front office, to which ministry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    pub case: usize,
    pub front: usize,
    pub ministry: usize,
}

impl Plan {
    /// The plan of run `run`: `--count` measured hand-offs after `--warmup` ones, rounded up
    /// in hot mode to whole rounds over every (case, ministry) pair.
    pub fn new(run: &str, args: &BenchArgs, agencies: &Agencies) -> Plan {
        let count = args.count();
        let (mode, warmup, total) = match (args.hot_cases, args.case_length) {
            (Some(cases), _) => {
                let pairs = cases as u64 * agencies.ministries.len() as u64;
                let warmup = args.warmup.div_ceil(pairs) * pairs;
                (
                    Mode::Hot { cases },
                    warmup,
                    warmup + count.div_ceil(pairs) * pairs,
                )
            }
            (None, Some(length)) => {
                let cases = args.concurrency;
                let pairs = cases as u64;
                let warmup = rounds_to_reach(length) * pairs;
                (
                    Mode::Growth { cases, length },
                    warmup,
                    warmup + count.div_ceil(pairs) * pairs,
                )
            }
            (None, None) => (Mode::Spread, args.warmup, args.warmup + count),
        };
        Plan {
            run: run.to_owned(),
            mode,
            fronts: agencies.fronts.clone(),
            ministries: agencies.ministries.clone(),
            warmup,
            total,
            instructions_bytes: args.instructions_bytes,
        }
    }

    /// Cases to open before the hand-offs start.
    pub fn cases(&self) -> usize {
        match self.mode {
            Mode::Spread => usize::try_from(self.total.div_ceil(self.ministries.len() as u64))
                .unwrap_or(usize::MAX),
            Mode::Hot { cases } | Mode::Growth { cases, .. } => cases,
        }
    }

    /// (case, ministry) pairs, one worker each: hot mode's every case with every ministry,
    /// growth mode's every case with its own ministry; none in spread mode.
    pub fn pairs(&self) -> usize {
        match self.mode {
            Mode::Spread => 0,
            Mode::Hot { cases } => cases * self.ministries.len(),
            Mode::Growth { cases, .. } => cases,
        }
    }

    /// Growth mode: the events a case holds before its first and before its last measured
    /// hand-off.
    pub fn measured_case_events(&self) -> Option<(u64, u64)> {
        let Mode::Growth { cases, .. } = self.mode else {
            return None;
        };
        let cases = cases as u64;
        let before = |rounds: u64| 1 + 2 * rounds;
        Some((
            before(self.warmup / cases),
            before((self.total / cases).saturating_sub(1)),
        ))
    }

    pub fn front_of_case(&self, case: usize) -> usize {
        case % self.fronts.len()
    }

    pub fn job(&self, j: u64) -> Job {
        let m = self.ministries.len();
        let (case, ministry) = match self.mode {
            Mode::Spread => {
                let cases = self.cases();
                let ministry = (j % m as u64) as usize;
                let k = (j / m as u64) as usize;
                // Offset each ministry's walk over the cases, so that the calls in flight at
                // once are on different cases.
                ((k + ministry * (cases / m).max(1)) % cases, ministry)
            }
            Mode::Hot { .. } => {
                let pair = (j % self.pairs() as u64) as usize;
                (pair / m, pair % m)
            }
            Mode::Growth { .. } => {
                let case = (j % self.pairs() as u64) as usize;
                (case, case % m)
            }
        };
        Job {
            case,
            front: self.front_of_case(case),
            ministry,
        }
    }

    pub fn is_measured(&self, j: u64) -> bool {
        j >= self.warmup
    }

    pub fn key_prefix(&self) -> String {
        format!("bench-{}-", self.run)
    }

    pub fn handoff_key(&self, j: u64) -> String {
        format!("bench-{}-{j}", self.run)
    }

    pub fn open_key(&self, case: usize) -> String {
        format!("bench-{}-open-{case}", self.run)
    }

    pub fn sendback_key(&self, j: u64) -> String {
        format!("bench-{}-back-{j}", self.run)
    }

    /// The job number in a hand-off's idempotency key, if the key is this run's.
    pub fn parse_handoff_key(&self, key: &str) -> Option<u64> {
        key.strip_prefix(&self.key_prefix())?.parse().ok()
    }

    /// Padded to `instructions_bytes`, so events have the payload size asked for.
    pub fn instructions(&self, j: u64) -> String {
        let mut text = format!("bench {} hand-off {j}: please review. ", self.run);
        while text.len() < self.instructions_bytes {
            text.push_str("documents attached; see the case file. ");
        }
        text.truncate(self.instructions_bytes);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(mode: Mode, total: u64) -> Plan {
        Plan {
            run: "R".into(),
            mode,
            fronts: vec![AgencyCode::parse("ODSC-VTE-SAYSETTHA").expect("code")],
            ministries: ["MOIC", "MOF", "MPWT"]
                .iter()
                .map(|c| AgencyCode::parse(c).expect("code"))
                .collect(),
            warmup: 0,
            total,
            instructions_bytes: 700,
        }
    }

    #[test]
    fn spread_jobs_give_each_case_one_hand_off_per_ministry() {
        let plan = plan(Mode::Spread, 3_000);
        let mut seen = std::collections::HashSet::new();
        for j in 0..plan.total {
            let job = plan.job(j);
            assert!(job.case < plan.cases());
            assert!(
                seen.insert((job.case, job.ministry)),
                "job {j} repeats {job:?}"
            );
        }
    }

    #[test]
    fn spread_calls_in_flight_together_are_on_different_cases() {
        let plan = plan(Mode::Spread, 30_000);
        let window = 64;
        for start in (0..plan.total - window).step_by(997) {
            let cases: std::collections::HashSet<usize> =
                (start..start + window).map(|j| plan.job(j).case).collect();
            assert_eq!(cases.len() as u64, window, "window at {start}");
        }
    }

    #[test]
    fn hot_jobs_cycle_over_every_case_and_ministry_pair() {
        let plan = plan(Mode::Hot { cases: 2 }, 60);
        assert_eq!(plan.pairs(), 6);
        assert_eq!(plan.job(0), plan.job(6));
        assert_eq!(plan.job(5).case, 1);
        assert_eq!(plan.job(5).ministry, 2);
    }

    #[test]
    fn growth_jobs_give_each_case_its_own_ministry_and_reach_the_length_first() {
        let mut plan = plan(
            Mode::Growth {
                cases: 4,
                length: 10,
            },
            0,
        );
        plan.warmup = rounds_to_reach(10) * 4;
        plan.total = plan.warmup + 2 * 4;
        for j in 0..plan.total {
            let job = plan.job(j);
            assert_eq!(job.case as u64, j % 4);
            assert_eq!(job.ministry, job.case % 3);
        }
        // 1 opening + 5 rounds of two: 11 events before the first measured hand-off, 13 before
        // the second and last.
        assert_eq!(plan.measured_case_events(), Some((11, 13)));
        assert_eq!(rounds_to_reach(1), 0);
        assert_eq!(rounds_to_reach(3), 1);
        assert_eq!(rounds_to_reach(1000), 500);
    }

    #[test]
    fn instructions_have_the_asked_size_and_keys_parse_back() {
        let plan = plan(Mode::Spread, 10);
        assert_eq!(plan.instructions(7).len(), 700);
        assert_eq!(plan.parse_handoff_key(&plan.handoff_key(7)), Some(7));
        assert_eq!(plan.parse_handoff_key(&plan.open_key(7)), None);
        assert_eq!(plan.parse_handoff_key("bench-OTHER-7"), None);
    }
}
