//! [`InboxSettings`]: the knobs of one agency's inbox, with defaults chosen for ministry systems
//! and a [`InboxSettings::validate`] that refuses what the server would refuse (or silently
//! misbehave on) before anything is created.

use std::time::Duration;

use crate::error::BusError;
use crate::stream::fmt_duration;

/// The inbox of one agency: how much one session may hold, how often an event is retried, and
/// how long a ministry system has to acknowledge each delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxSettings {
    /// Most un-acknowledged events one [`crate::Inbox`] session holds at once; also the
    /// consumer's `max_ack_pending`, so the server never hands the agency more than this across
    /// all its sessions. Default 32: enough to keep a ministry system busy, small enough that a
    /// stalled client ties up few events (each held event waits out its ack wait before anyone
    /// else gets it).
    pub max_in_flight: usize,
    /// Deliveries of one event before it is given up on and recorded as stuck. Default 8; must
    /// exceed `backoff.len()` (a server rule).
    pub max_deliver: u32,
    /// Ack wait of each delivery: delivery `n` (1-based) must be acknowledged within
    /// `backoff[n - 1]`, the last step repeating. JetStream uses `backoff[0]` as the consumer's
    /// `ack_wait` (docs/jetstream.md §4), so there is no separate ack wait setting.
    ///
    /// Default 30 s, 1 m, 2 m, 5 m, 10 m, 15 m, 30 m: the first step is NATS's usual ack wait
    /// and gives a slow ministry system time to store an event before it is sent again; the
    /// later steps spread retries of a client that keeps failing over about an hour and a half
    /// before the event is shown to staff as stuck. Attempts are only spent while a client is
    /// connected and pulling, so a ministry system that is simply offline loses no attempts.
    pub backoff: Vec<Duration>,
    /// How long one pull request waits on the server for events. Idle sessions re-pull this
    /// often, and a pull lost to a server restart is noticed within this plus a small grace.
    /// Default 5 s.
    pub pull_expires: Duration,
    /// When a session ends, each event it still holds is released (NAK with a delay) so a new
    /// session gets it without waiting out a long ack wait. The delay is what was left of the
    /// delivery's ack wait, capped by this. Default 30 s (see [`crate::inbox`] "releasing").
    pub release_delay_cap: Duration,
}

impl Default for InboxSettings {
    fn default() -> Self {
        Self {
            max_in_flight: 32,
            max_deliver: 8,
            backoff: [30, 60, 120, 300, 600, 900, 1800]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            pull_expires: Duration::from_secs(5),
            release_delay_cap: Duration::from_secs(30),
        }
    }
}

/// The server refuses `max_ack_pending` above its own limits long before this; a session holding
/// more would also make "release on disconnect" a burst of thousands of NAKs.
pub const MAX_IN_FLIGHT_LIMIT: usize = 10_000;

/// A step shorter than this is below a round trip to a ministry system, so every delivery would
/// be re-sent before it could be acknowledged.
pub const MIN_BACKOFF_STEP: Duration = Duration::from_millis(50);

/// The server keeps a pull request at least this long; shorter would be a busy loop.
pub const MIN_PULL_EXPIRES: Duration = Duration::from_millis(100);

impl InboxSettings {
    pub fn validate(&self) -> Result<(), BusError> {
        let invalid = |field: &'static str, reason: String| {
            Err(BusError::InvalidInboxSettings { field, reason })
        };
        if !(1..=MAX_IN_FLIGHT_LIMIT).contains(&self.max_in_flight) {
            return invalid(
                "max_in_flight",
                format!(
                    "is {}, but must be between 1 and {MAX_IN_FLIGHT_LIMIT}",
                    self.max_in_flight
                ),
            );
        }
        if self.backoff.is_empty() {
            return invalid(
                "backoff",
                "is empty, but needs at least one step (the first is the ack wait)".to_owned(),
            );
        }
        if let Some(step) = self.backoff.iter().find(|s| **s < MIN_BACKOFF_STEP) {
            return invalid(
                "backoff",
                format!(
                    "has a step of {}, but each must be at least {}",
                    fmt_duration(*step),
                    fmt_duration(MIN_BACKOFF_STEP)
                ),
            );
        }
        // A server rule (nats-server refuses the consumer otherwise); also means every step is
        // used at least once.
        if (self.max_deliver as usize) <= self.backoff.len() {
            return invalid(
                "max_deliver",
                format!(
                    "is {}, but must be greater than the {} backoff steps",
                    self.max_deliver,
                    self.backoff.len()
                ),
            );
        }
        if self.pull_expires < MIN_PULL_EXPIRES {
            return invalid(
                "pull_expires",
                format!(
                    "is {}, but must be at least {}",
                    fmt_duration(self.pull_expires),
                    fmt_duration(MIN_PULL_EXPIRES)
                ),
            );
        }
        Ok(())
    }

    /// The ack wait of delivery `attempt` (1-based): `backoff[attempt - 1]`, the last step
    /// repeating, as the server applies it.
    pub fn ack_wait_for(&self, attempt: u32) -> Duration {
        let index = (attempt.max(1) as usize - 1).min(self.backoff.len().saturating_sub(1));
        self.backoff.get(index).copied().unwrap_or(MIN_BACKOFF_STEP)
    }

    /// The consumer's `ack_wait` as the server reports it once `backoff` is set.
    pub fn ack_wait(&self) -> Duration {
        self.ack_wait_for(1)
    }

    /// The longest step: after this long past its deadline, a held delivery has certainly been
    /// redelivered (to this process or another), so its handle is forgotten.
    pub(crate) fn longest_step(&self) -> Duration {
        self.backoff
            .iter()
            .copied()
            .max()
            .unwrap_or(MIN_BACKOFF_STEP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        InboxSettings::default()
            .validate()
            .expect("defaults validate");
    }

    #[test]
    fn each_delivery_waits_its_own_backoff_step_and_the_last_step_repeats() {
        let settings = InboxSettings {
            backoff: vec![Duration::from_secs(1), Duration::from_secs(5)],
            max_deliver: 4,
            ..InboxSettings::default()
        };
        let waits: Vec<u64> = (1..=4)
            .map(|n| settings.ack_wait_for(n).as_secs())
            .collect();
        assert_eq!(waits, [1, 5, 5, 5]);
        assert_eq!(settings.ack_wait(), Duration::from_secs(1));
    }

    #[test]
    fn max_deliver_must_exceed_the_backoff_steps() {
        let settings = InboxSettings {
            max_deliver: 7,
            ..InboxSettings::default()
        };
        let err = settings.validate().expect_err("7 deliveries, 7 steps");
        assert!(err.to_string().contains("max_deliver is 7"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_field() {
        let cases: [(&str, InboxSettings); 4] = [
            (
                "max_in_flight",
                InboxSettings {
                    max_in_flight: 0,
                    ..InboxSettings::default()
                },
            ),
            (
                "backoff",
                InboxSettings {
                    backoff: vec![],
                    ..InboxSettings::default()
                },
            ),
            (
                "backoff",
                InboxSettings {
                    backoff: vec![Duration::from_millis(1)],
                    ..InboxSettings::default()
                },
            ),
            (
                "pull_expires",
                InboxSettings {
                    pull_expires: Duration::from_millis(10),
                    ..InboxSettings::default()
                },
            ),
        ];
        for (field, settings) in cases {
            let err = settings.validate().expect_err(field);
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid inbox settings: {field}")),
                "{err}"
            );
        }
    }
}
