//! A limit on failed sign-ins, per account name and per client address: after
//! [`MAX_FAILURES`] failures within [`WINDOW`], further attempts are refused (429 with
//! `Retry-After`) without checking the password, so a right guess is not even noticed while
//! limited. A successful sign-in clears the account's failures (not the address's: one valid
//! account must not let an address try other accounts' passwords without limit).
//!
//! Memory is bounded: at most [`MAX_KEYS`] names and addresses are remembered; when full,
//! those whose window has passed go first, then the least recently failed.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_KEYS: usize = 10_000;
/// Account names are remembered by their first bytes only; longer names are not real ones.
const MAX_NAME_BYTES: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

fn account(name: &str) -> Key {
    let mut end = name.len().min(MAX_NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    Key::Account(name[..end].to_owned())
}

#[derive(Debug, Default)]
pub struct SignInLimiter {
    /// Times of the recent failures, oldest first, at most [`MAX_FAILURES`] each.
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl SignInLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, VecDeque<Instant>>> {
        // The map stays a valid map whatever panicked while holding it.
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(wait)` while the account or the address is limited.
    pub fn check(&self, name: &str, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let failures = self.lock();
        let wait = [account(name), Key::Address(address)]
            .iter()
            .filter_map(|key| failures.get(key))
            .filter(|times| times.len() >= MAX_FAILURES)
            .filter_map(|times| times.front())
            .map(|oldest| (*oldest + WINDOW).saturating_duration_since(now))
            .filter(|wait| !wait.is_zero())
            .max();
        match wait {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn failed(&self, name: &str, address: IpAddr, now: Instant) {
        let mut failures = self.lock();
        if failures.len() + 2 > MAX_KEYS {
            failures.retain(|_, times| times.back().is_some_and(|t| now < *t + WINDOW));
        }
        while failures.len() + 2 > MAX_KEYS {
            let Some(stalest) = failures
                .iter()
                .min_by_key(|(_, times)| times.back().copied())
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            failures.remove(&stalest);
        }
        for key in [account(name), Key::Address(address)] {
            let times = failures.entry(key).or_default();
            while times.front().is_some_and(|t| now >= *t + WINDOW) {
                times.pop_front();
            }
            if times.len() >= MAX_FAILURES {
                times.pop_front();
            }
            times.push_back(now);
        }
    }

    pub fn succeeded(&self, name: &str) {
        self.lock().remove(&account(name));
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const AWAY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn five_failures_limit_the_account_and_the_address_for_the_window() {
        let limiter = SignInLimiter::default();
        let start = Instant::now();
        for i in 0..MAX_FAILURES {
            assert!(limiter.check("somchai", HOME, start).is_ok(), "attempt {i}");
            limiter.failed("somchai", HOME, start);
        }
        let wait = limiter.check("somchai", HOME, start).expect_err("limited");
        assert_eq!(wait, WINDOW);
        // The account from elsewhere, and the address for another account: both limited.
        assert!(limiter.check("somchai", AWAY, start).is_err());
        assert!(limiter.check("other", HOME, start).is_err());
        assert!(limiter.check("other", AWAY, start).is_ok());
        assert!(limiter.check("somchai", AWAY, start + WINDOW).is_ok());
    }

    #[test]
    fn success_clears_the_account_but_not_the_address() {
        let limiter = SignInLimiter::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            limiter.failed("somchai", HOME, now);
        }
        limiter.succeeded("somchai");
        assert!(limiter.check("somchai", AWAY, now).is_ok());
        assert!(limiter.check("somchai", HOME, now).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = SignInLimiter::default();
        let now = Instant::now();
        let mut later = now;
        for i in 0..(MAX_KEYS + 50) {
            later = now + Duration::from_millis(i as u64);
            limiter.failed(&format!("guess-{i}"), HOME, later);
        }
        assert!(limiter.remembered() <= MAX_KEYS);
        assert!(
            limiter.check("x", HOME, later).is_err(),
            "the address is still limited"
        );
        let long = "ລ".repeat(200);
        limiter.failed(&long, AWAY, now);
    }
}
