//! `eventually`: the one way a test waits for something to become true.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long a test usually lets a condition take; generous for a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// What one look at a condition found: the value once it holds, or what was seen instead.
pub trait Progress {
    type Value;
    /// `Ok` once the condition holds; `Err` with what was seen (for the failure message).
    fn into_progress(self) -> Result<Self::Value, String>;
}

/// `Some(value)` once the condition holds; `None`: not yet.
impl<T> Progress for Option<T> {
    type Value = T;
    fn into_progress(self) -> Result<T, String> {
        self.ok_or_else(|| "not yet".to_owned())
    }
}

/// `Ok(value)` once the condition holds; `Err(what was seen)`: not yet.
impl<T> Progress for Result<T, String> {
    type Value = T;
    fn into_progress(self) -> Result<T, String> {
        self
    }
}

/// The clock of one wait: when it started, its deadline, the next pause.
struct Wait<'a> {
    what: &'a str,
    deadline: Duration,
    started: Instant,
    pause: Duration,
}

impl<'a> Wait<'a> {
    fn new(what: &'a str, deadline: Duration) -> Self {
        Wait {
            what,
            deadline,
            started: Instant::now(),
            pause: Duration::from_millis(5),
        }
    }

    /// After a look that found `last` instead: how long to pause before the next look, or the
    /// failure once the deadline has passed. Pauses start at 5 ms and double up to 50 ms, so a
    /// fast condition costs little and a slow one does not spin.
    fn after(&mut self, last: &str) -> anyhow::Result<Duration> {
        let (what, deadline) = (self.what, self.deadline);
        anyhow::ensure!(
            self.started.elapsed() <= deadline,
            "{what}: not reached within {deadline:?}; last seen: {last}"
        );
        let pause = self.pause;
        self.pause = (pause * 2).min(Duration::from_millis(50));
        Ok(pause)
    }
}

/// Polls `check` until its answer says the condition holds, and returns the value.
///
/// `check` answers `Ok(Some(v))` / `Ok(Ok(v))` when the condition holds, `Ok(None)` /
/// `Ok(Err(seen))` when not yet; an `Err` fails at once (something broke, waiting will not
/// help). Past `deadline` it fails with `what` and the last thing seen.
pub async fn eventually<P, F, Fut>(
    what: &str,
    deadline: Duration,
    mut check: F,
) -> anyhow::Result<P::Value>
where
    P: Progress,
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<P>>,
{
    let mut wait = Wait::new(what, deadline);
    loop {
        match check().await?.into_progress() {
            Ok(value) => return Ok(value),
            Err(last) => tokio::time::sleep(wait.after(&last)?).await,
        }
    }
}

/// [`eventually`] for code that drives a child process without awaiting: the same answers,
/// pauses and failure message, the pauses taken by blocking the calling thread.
pub fn eventually_blocking<P: Progress>(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> anyhow::Result<P>,
) -> anyhow::Result<P::Value> {
    let mut wait = Wait::new(what, deadline);
    loop {
        let last = match check()?.into_progress() {
            Ok(value) => break Ok(value),
            Err(last) => last,
        };
        std::thread::sleep(wait.after(&last)?);
    }
}

/// How often [`throughout`] looks.
const THROUGHOUT_PAUSE: Duration = Duration::from_millis(100);

/// Checks that something stays true for a stated `window`: runs `check` every 100 ms until the
/// window has passed and fails at the first look that fails. For promises of the form "nothing
/// happens while…", where no event could prove it sooner. Returns the last look's value.
pub async fn throughout<T, F, Fut>(window: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let until = Instant::now() + window;
    loop {
        let value = check().await?;
        if Instant::now() >= until {
            return Ok(value);
        }
        tokio::time::sleep(THROUGHOUT_PAUSE).await;
    }
}
