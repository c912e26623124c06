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
}

impl Mode {
    /// The mode's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Spread => "spread",
            Mode::Hot { .. } => "hot",
        }
    }
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
        let (mode, warmup, total) = match args.hot_cases {
            None => (Mode::Spread, args.warmup, args.warmup + args.count),
            Some(cases) => {
                let pairs = cases as u64 * agencies.ministries.len() as u64;
                let warmup = args.warmup.div_ceil(pairs) * pairs;
                (
                    Mode::Hot { cases },
                    warmup,
                    warmup + args.count.div_ceil(pairs) * pairs,
                )
            }
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
            Mode::Hot { cases } => cases,
        }
    }

    /// (case, ministry) pairs: the hot mode's workers.
    pub fn pairs(&self) -> usize {
        match self.mode {
            Mode::Spread => 0,
            Mode::Hot { cases } => cases * self.ministries.len(),
        }
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
    fn instructions_have_the_asked_size_and_keys_parse_back() {
        let plan = plan(Mode::Spread, 10);
        assert_eq!(plan.instructions(7).len(), 700);
        assert_eq!(plan.parse_handoff_key(&plan.handoff_key(7)), Some(7));
        assert_eq!(plan.parse_handoff_key(&plan.open_key(7)), None);
        assert_eq!(plan.parse_handoff_key("bench-OTHER-7"), None);
    }
}
