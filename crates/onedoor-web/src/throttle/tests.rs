use std::net::Ipv4Addr;

use super::*;

const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const AWAY: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

fn fail(limiter: &SignInLimiter, name: &str, from: IpAddr, now: Instant) {
    limiter
        .reserve(name, true, from, None, now)
        .expect("not delayed")
        .failed(now);
}

#[test]
fn delays_double_up_to_the_cap() {
    assert_eq!(ACCOUNT.delay(1), Duration::from_secs(1));
    assert_eq!(ACCOUNT.delay(2), Duration::from_secs(2));
    assert_eq!(ACCOUNT.delay(4), Duration::from_secs(8));
    assert_eq!(ACCOUNT.delay(9), Duration::from_secs(256));
    assert_eq!(ACCOUNT.delay(10), ACCOUNT.cap);
    assert_eq!(ACCOUNT.delay(u32::MAX), ACCOUNT.cap);
}

#[test]
fn each_failure_delays_the_account_longer_and_never_for_good() {
    let limiter = SignInLimiter::default();
    let mut now = Instant::now();
    for n in 1..=12 {
        fail(&limiter, "somchai", AWAY, now);
        let wait = limiter
            .reserve("somchai", true, HOME, None, now)
            .err()
            .expect("delayed right after a failure");
        assert_eq!(wait, ACCOUNT.delay(n), "after failure {n}");
        now += wait;
    }
    assert!(limiter.reserve("somchai", true, HOME, None, now).is_ok());
}

#[test]
fn two_racing_attempts_on_one_account_cannot_both_run() {
    let limiter = SignInLimiter::default();
    let now = Instant::now();
    let first = limiter
        .reserve("somchai", false, HOME, None, now)
        .expect("first");
    let second = limiter.reserve("somchai", false, AWAY, None, now);
    assert_eq!(second.err(), Some(BUSY));
    // Abandoned (the client went away): it counts as never made.
    drop(first);
    assert!(limiter.reserve("somchai", false, AWAY, None, now).is_ok());
}

#[test]
fn an_address_gets_its_free_attempts_then_one_at_a_time() {
    let limiter = SignInLimiter::default();
    let now = Instant::now();
    let running: Vec<_> = (0..ADDRESS.free)
        .map(|i| {
            limiter
                .reserve(&format!("guess-{i}"), false, HOME, None, now)
                .expect("free")
        })
        .collect();
    assert!(limiter.reserve("one-more", false, HOME, None, now).is_err());
    assert!(limiter.reserve("one-more", false, AWAY, None, now).is_ok());
    for attempt in running {
        attempt.failed(now);
    }
    // The free attempts used up, the next waits, then runs alone, and its failure doubles
    // the wait.
    let wait = limiter
        .reserve("again", false, HOME, None, now)
        .err()
        .expect("the address is delayed");
    assert_eq!(wait, ADDRESS.delay(1));
    let later = now + wait;
    let next = limiter
        .reserve("again", false, HOME, None, later)
        .expect("one");
    let racing = limiter.reserve("racing", false, HOME, None, later);
    assert_eq!(racing.err(), Some(BUSY));
    next.failed(later);
    let wait = limiter
        .reserve("later", false, HOME, None, later)
        .err()
        .expect("the address is delayed");
    assert_eq!(wait, ADDRESS.delay(2));
}

#[test]
fn a_known_device_is_not_delayed_by_strangers_and_a_stolen_one_runs_out() {
    let limiter = SignInLimiter::default();
    let now = Instant::now();
    let device = limiter.new_device("somchai", now);
    fail(&limiter, "somchai", AWAY, now);
    for _ in 0..3 {
        let attempt = limiter
            .reserve("somchai", true, AWAY, Some(&device), now)
            .expect("the clerk's computer is let through");
        assert!(attempt.known_device());
        attempt.succeeded(now);
    }
    // The account's delay still applies without the cookie, and the cookie is this account's.
    assert!(limiter.reserve("somchai", true, HOME, None, now).is_err());
    let other = limiter
        .reserve("boss", true, HOME, Some(&device), now)
        .expect("a stranger's lane");
    assert!(!other.known_device());
    drop(other);

    let mut later = now;
    for _ in 0..DEVICE_MAX_FAILURES {
        let attempt = limiter
            .reserve("somchai", true, HOME, Some(&device), later)
            .expect("waited");
        assert!(attempt.known_device());
        attempt.failed(later);
        later += DEVICE.cap;
    }
    let forgotten = limiter
        .reserve("somchai", true, HOME, Some(&device), later)
        .expect("a stranger's lane, waited");
    assert!(!forgotten.known_device());
}

#[test]
fn a_supervisor_unlocks_an_account_and_sees_which_are_delayed() {
    let limiter = SignInLimiter::default();
    let now = Instant::now();
    let mut later = now;
    for n in 1..=3 {
        fail(&limiter, "somchai", AWAY, later);
        later += ACCOUNT.delay(n);
    }
    let delayed = limiter.delayed(later);
    assert_eq!(delayed.len(), 1);
    assert_eq!(
        (delayed[0].name.as_str(), delayed[0].failures),
        ("somchai", 3)
    );
    assert!(limiter.unlock("somchai", later));
    assert!(!limiter.unlock("somchai", later));
    assert!(limiter.reserve("somchai", true, HOME, None, later).is_ok());
}

#[test]
fn devices_per_account_are_bounded() {
    let limiter = SignInLimiter::default();
    let now = Instant::now();
    let first = limiter.new_device("somchai", now);
    for i in 1..=DEVICES_PER_ACCOUNT as u64 {
        limiter.new_device("somchai", now + Duration::from_secs(i));
    }
    let attempt = limiter
        .reserve("somchai", true, HOME, Some(&first), now)
        .expect("reserved");
    assert!(!attempt.known_device(), "the oldest device was forgotten");
}

#[test]
fn memory_is_bounded() {
    let limiter = SignInLimiter::default();
    let now = Instant::now();
    for i in 0..(MAX_LANES + 50) {
        let from = IpAddr::V4(Ipv4Addr::from(i as u32));
        let later = now + Duration::from_millis(i as u64);
        limiter
            .reserve(&format!("guess-{i}"), false, from, None, later)
            .expect("fresh lanes")
            .failed(later);
    }
    let lanes = limiter.lock();
    assert!(lanes.strangers.len() <= MAX_LANES);
    assert!(lanes.addresses.len() <= MAX_LANES);
    drop(lanes);
    let long = "ລ".repeat(200);
    assert!(limiter.reserve(&long, false, AWAY, None, now).is_ok());
}
