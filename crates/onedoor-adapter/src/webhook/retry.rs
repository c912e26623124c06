//! [`RetrySchedule`]: how long the adapter waits before posting an item again after its
//! receiver failed (exponential, capped, with jitter).

use std::time::Duration;

/// Pause after failed attempt `n` (1-based): a random point between half of
/// `first · 2^(n−1)` (capped at `max`) and all of it.
///
/// The jitter spreads out the retries of many items that failed together (a receiver that was
/// down), so it is not hit by all of them at the same instant when it comes back. Drawing from
/// the upper half only ("equal jitter") keeps each pause at least as long as the one before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Default 30 s: long enough for a receiver restarting after a deploy.
    pub first: Duration,
    /// Default 30 min, the longest step of the inbox's own redelivery schedule.
    pub max: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule {
            first: Duration::from_secs(30),
            max: Duration::from_secs(30 * 60),
        }
    }
}

impl RetrySchedule {
    /// The longest pause after failed attempt `attempt`: `first · 2^(attempt−1)`, at most `max`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.max(1).saturating_sub(1).min(31);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }

    /// The pause to use after failed attempt `attempt`, jittered within the upper half of
    /// [`RetrySchedule::ceiling`].
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        ceiling / 2 + ceiling.mul_f64(rand::random::<f64>() / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap() {
        let schedule = RetrySchedule {
            first: Duration::from_secs(30),
            max: Duration::from_secs(300),
        };
        let ceilings: Vec<u64> = (1..=6).map(|n| schedule.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [30, 60, 120, 240, 300, 300]);
        assert_eq!(schedule.ceiling(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn jitter_stays_in_the_upper_half_so_pauses_never_shrink() {
        let schedule = RetrySchedule::default();
        for attempt in 1..=8 {
            let ceiling = schedule.ceiling(attempt);
            for _ in 0..100 {
                let delay = schedule.delay(attempt);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "{delay:?} vs {ceiling:?}"
                );
            }
        }
    }
}
