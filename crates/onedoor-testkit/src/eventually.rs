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

/// Polls `check` until its answer says the condition holds, and returns the value.
///
/// `check` answers `Ok(Some(v))` / `Ok(Ok(v))` when the condition holds, `Ok(None)` /
/// `Ok(Err(seen))` when not yet; an `Err` fails at once (something broke, waiting will not
/// help). Past `deadline` it fails with `what` and the last thing seen. The pause between looks
/// starts at 5 ms and doubles up to 50 ms, so a fast condition costs little and a slow one does
/// not spin.
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
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let last = match check().await?.into_progress() {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        if started.elapsed() > deadline {
            anyhow::bail!("{what}: not reached within {deadline:?}; last seen: {last}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
