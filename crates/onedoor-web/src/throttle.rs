//! Delays on sign-in attempts that slow a password guesser down without locking the clerk out
//! (the reasoning is in `docs/web-security.md`).
//!
//! Each attempt first *reserves* its lanes, under one lock, before the password is hashed; the
//! hash's outcome then settles them. A lane is an account name, a client address (see
//! `client`), or a known device (a cookie handed out by a successful sign-in):
//!
//! - a lane lets `free` attempts run (even at once) with no delay, and after that one attempt
//!   at a time, each only once the delay of the last failure has passed: 1 s, 2 s, 4 s … up
//!   to [`Policy::cap`]. Two requests racing on one lane cannot both pass: the first
//!   reservation is seen by the second.
//! - a stranger (no device cookie for the account) takes the account's lane and the address's;
//!   a clerk with a device cookie for the account takes only that device's lane, so a
//!   stranger's wrong passwords elsewhere never delay them. A device that fails
//!   [`DEVICE_MAX_FAILURES`] times in a row is forgotten (a stolen cookie buys a few guesses).
//! - a supervisor can clear an account's delay ([`SignInLimiter::unlock`]).
//!
//! Memory is bounded: lanes of names that are not accounts, and of addresses, are at most
//! [`MAX_LANES`] each (idle ones go first, then the least recently failed); accounts' lanes
//! are as many as the accounts; devices at most [`DEVICES_PER_ACCOUNT`] per account.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a kind of lane slows down.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Attempts that may run (even at once) with no delay; the failure that uses up the last
    /// of them delays the next attempt by `base`, and each failure after it doubles that.
    pub free: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Policy {
    /// The delay after the `n`-th counted failure (1-based): base, 2·base, 4·base … cap.
    pub fn delay(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(30);
        self.base.saturating_mul(1 << doublings).min(self.cap)
    }
}

/// An account name (known or not: both behave the same, so the limit tells nobody which names
/// exist).
pub const ACCOUNT: Policy = Policy {
    free: 1,
    base: Duration::from_secs(1),
    cap: Duration::from_secs(5 * 60),
};
/// An address: an office behind one NAT has several clerks who mistype now and then.
pub const ADDRESS: Policy = Policy {
    free: 10,
    base: Duration::from_secs(1),
    cap: Duration::from_secs(5 * 60),
};
/// A known device: its own clerk's typos.
pub const DEVICE: Policy = ACCOUNT;
pub const DEVICE_MAX_FAILURES: u32 = 5;
pub const DEVICES_PER_ACCOUNT: usize = 8;
/// Refused at once while another attempt on the same lane is running.
const BUSY: Duration = Duration::from_secs(1);
/// A lane with no failure for this long starts afresh.
const FORGET: Duration = Duration::from_secs(30 * 60);
const MAX_LANES: usize = 10_000;
/// Names are remembered by their first bytes only; longer names are not real ones.
const MAX_NAME_BYTES: usize = 128;

#[derive(Debug, Clone)]
struct Lane {
    failures: u32,
    pending: u32,
    not_before: Instant,
    last_failure: Instant,
}

impl Lane {
    fn new(now: Instant) -> Self {
        Lane {
            failures: 0,
            pending: 0,
            not_before: now,
            last_failure: now,
        }
    }

    fn reserve(&mut self, policy: Policy, now: Instant) -> Result<(), Duration> {
        if self.pending == 0 && self.failures > 0 && now >= self.last_failure + FORGET {
            *self = Lane::new(now);
        }
        if self.failures + self.pending < policy.free {
            self.pending += 1;
            return Ok(());
        }
        if now < self.not_before {
            return Err(self.not_before - now);
        }
        if self.pending > 0 {
            return Err(BUSY);
        }
        self.pending += 1;
        Ok(())
    }

    fn release(&mut self) {
        self.pending = self.pending.saturating_sub(1);
    }

    fn fail(&mut self, policy: Policy, now: Instant) {
        self.release();
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
        if self.failures >= policy.free {
            self.not_before = now + policy.delay(self.failures + 1 - policy.free);
        }
    }

    fn clear(&mut self, now: Instant) {
        self.failures = 0;
        self.not_before = now;
    }

    fn idle(&self, now: Instant) -> bool {
        self.pending == 0 && now >= self.not_before
    }
}

fn name_key(name: &str) -> String {
    let mut end = name.len().min(MAX_NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

/// Drops lanes from a bounded map until one more fits: idle ones first, then the least
/// recently failed of those not running.
fn make_room<K: Clone + Eq + std::hash::Hash>(map: &mut HashMap<K, Lane>, now: Instant) {
    if map.len() < MAX_LANES {
        return;
    }
    map.retain(|_, lane| !lane.idle(now));
    while map.len() >= MAX_LANES {
        let Some(stalest) = map
            .iter()
            .filter(|(_, lane)| lane.pending == 0)
            .min_by_key(|(_, lane)| lane.last_failure)
            .map(|(key, _)| key.clone())
        else {
            break;
        };
        map.remove(&stalest);
    }
}

#[derive(Debug)]
struct Device {
    account: String,
    lane: Lane,
    issued: Instant,
}

#[derive(Debug, Default)]
struct Lanes {
    /// Accounts of the accounts file: never dropped to make room.
    accounts: HashMap<String, Lane>,
    /// Names that are not accounts.
    strangers: HashMap<String, Lane>,
    addresses: HashMap<IpAddr, Lane>,
    /// By device token.
    devices: HashMap<String, Device>,
}

/// Which lanes an attempt holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    Device(String),
    Stranger { known: bool, address: IpAddr },
}

/// A reserved attempt; dropped unsettled (the client went away, the hash was refused), it
/// counts as never made.
#[must_use]
pub struct Attempt<'a> {
    limiter: &'a SignInLimiter,
    name: String,
    held: Held,
    settled: bool,
}

impl Attempt<'_> {
    /// Whether this attempt came with a device cookie known for its account.
    pub fn known_device(&self) -> bool {
        matches!(self.held, Held::Device(_))
    }

    pub fn failed(mut self, now: Instant) {
        self.settled = true;
        self.limiter
            .settle(&self.name, &self.held, Some(false), now);
    }

    pub fn succeeded(mut self, now: Instant) {
        self.settled = true;
        self.limiter.settle(&self.name, &self.held, Some(true), now);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.limiter
                .settle(&self.name, &self.held, None, Instant::now());
        }
    }
}

/// What a supervisor sees of an account's delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delayed {
    pub name: String,
    pub failures: u32,
    pub wait: Duration,
}

#[derive(Debug, Default)]
pub struct SignInLimiter {
    lanes: Mutex<Lanes>,
}

impl SignInLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Lanes> {
        // Every update leaves the maps valid maps whatever panicked while holding them.
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves an attempt on `name` (`known`: an account of the file) from `address` with the
    /// device cookie `device`, or says how long to wait.
    pub fn reserve(
        &self,
        name: &str,
        known: bool,
        address: IpAddr,
        device: Option<&str>,
        now: Instant,
    ) -> Result<Attempt<'_>, Duration> {
        let name = name_key(name);
        let mut lanes = self.lock();
        let device =
            device.filter(|token| lanes.devices.get(*token).is_some_and(|d| d.account == name));
        let held = match device {
            Some(token) => {
                let entry = lanes.devices.get_mut(token);
                if let Some(entry) = entry {
                    entry.lane.reserve(DEVICE, now)?;
                }
                Held::Device(token.to_owned())
            }
            None => {
                lanes.reserve_stranger(&name, known, address, now)?;
                Held::Stranger { known, address }
            }
        };
        Ok(Attempt {
            limiter: self,
            name,
            held,
            settled: false,
        })
    }

    /// `Some(true)`: succeeded; `Some(false)`: failed; `None`: abandoned.
    fn settle(&self, name: &str, held: &Held, outcome: Option<bool>, now: Instant) {
        let mut lanes = self.lock();
        match held {
            Held::Device(token) => {
                let Some(device) = lanes.devices.get_mut(token) else {
                    return;
                };
                match outcome {
                    Some(true) => {
                        device.lane.release();
                        device.lane.clear(now);
                    }
                    Some(false) => device.lane.fail(DEVICE, now),
                    None => device.lane.release(),
                }
                if device.lane.failures >= DEVICE_MAX_FAILURES {
                    lanes.devices.remove(token);
                }
            }
            Held::Stranger { known, address } => {
                lanes.settle_stranger(name, *known, *address, outcome, now);
            }
        }
    }

    /// A new device token for `name`, after a successful sign-in; the account's oldest device
    /// is forgotten beyond [`DEVICES_PER_ACCOUNT`].
    pub fn new_device(&self, name: &str, now: Instant) -> String {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let name = name_key(name);
        let mut lanes = self.lock();
        let mut mine: Vec<(Instant, String)> = lanes
            .devices
            .iter()
            .filter(|(_, d)| d.account == name)
            .map(|(t, d)| (d.issued, t.clone()))
            .collect();
        mine.sort();
        let excess = (mine.len() + 1).saturating_sub(DEVICES_PER_ACCOUNT);
        for (_, old) in mine.into_iter().take(excess) {
            lanes.devices.remove(&old);
        }
        let device = Device {
            account: name,
            lane: Lane::new(now),
            issued: now,
        };
        lanes.devices.insert(token.clone(), device);
        token
    }

    /// Clears an account's delay (a supervisor's decision); `false` if it had none.
    pub fn unlock(&self, name: &str, now: Instant) -> bool {
        let mut lanes = self.lock();
        match lanes.accounts.get_mut(&name_key(name)) {
            Some(lane) if lane.failures > 0 => {
                lane.clear(now);
                true
            }
            _ => false,
        }
    }

    /// Accounts with failures counted against them, most failures first.
    pub fn delayed(&self, now: Instant) -> Vec<Delayed> {
        let lanes = self.lock();
        let mut delayed: Vec<Delayed> = lanes
            .accounts
            .iter()
            .filter(|(_, lane)| lane.failures > 0 && now < lane.last_failure + FORGET)
            .map(|(name, lane)| Delayed {
                name: name.clone(),
                failures: lane.failures,
                wait: lane.not_before.saturating_duration_since(now),
            })
            .collect();
        delayed.sort_by(|a, b| b.failures.cmp(&a.failures).then(a.name.cmp(&b.name)));
        delayed
    }
}

impl Lanes {
    fn name_lane(&mut self, name: &str, known: bool, now: Instant) -> &mut Lane {
        if known {
            return self
                .accounts
                .entry(name.to_owned())
                .or_insert_with(|| Lane::new(now));
        }
        if !self.strangers.contains_key(name) {
            make_room(&mut self.strangers, now);
        }
        self.strangers
            .entry(name.to_owned())
            .or_insert_with(|| Lane::new(now))
    }

    fn address_lane(&mut self, address: IpAddr, now: Instant) -> &mut Lane {
        if !self.addresses.contains_key(&address) {
            make_room(&mut self.addresses, now);
        }
        self.addresses
            .entry(address)
            .or_insert_with(|| Lane::new(now))
    }

    fn reserve_stranger(
        &mut self,
        name: &str,
        known: bool,
        address: IpAddr,
        now: Instant,
    ) -> Result<(), Duration> {
        self.name_lane(name, known, now).reserve(ACCOUNT, now)?;
        if let Err(wait) = self.address_lane(address, now).reserve(ADDRESS, now) {
            self.name_lane(name, known, now).release();
            return Err(wait);
        }
        Ok(())
    }

    fn settle_stranger(
        &mut self,
        name: &str,
        known: bool,
        address: IpAddr,
        outcome: Option<bool>,
        now: Instant,
    ) {
        let account = self.name_lane(name, known, now);
        match outcome {
            Some(true) => {
                account.release();
                account.clear(now);
            }
            Some(false) => account.fail(ACCOUNT, now),
            None => account.release(),
        }
        // A right password for one account says nothing about the address's other guesses.
        let place = self.address_lane(address, now);
        match outcome {
            Some(false) => place.fail(ADDRESS, now),
            _ => place.release(),
        }
    }
}

#[cfg(test)]
mod tests;
