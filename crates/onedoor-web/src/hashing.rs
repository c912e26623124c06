//! A cap on password hashes running at once. Each Argon2 check takes its memory (19 MiB with
//! the standard parameters) and a core for a while; without a cap, fifty sign-ins at once
//! took 1.32 GB. Past the cap a sign-in waits in line for at most [`QUEUE_WAIT`], then is
//! answered 429 with `Retry-After`, its attempt counting as never made.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::WebError;

/// How long a sign-in waits for a free hasher before it is told to come back.
pub const QUEUE_WAIT: Duration = Duration::from_secs(3);

/// Hashes in flight now and at most so far (for the tests and the operator's log).
#[derive(Debug, Default)]
pub struct HashGauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl HashGauge {
    pub fn in_flight(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// Password checks running now (gauge).
pub const METRIC_CHECKS: &str = "onedoor_web_password_checks";
/// Sign-ins answered 429, by `reason`: `delayed` (the throttle) or `busy` (this cap).
pub const METRIC_REFUSED: &str = "onedoor_web_signins_refused_total";

/// Counts one running hash for as long as it lives.
struct Running(Arc<HashGauge>);

impl Running {
    fn start(gauge: Arc<HashGauge>) -> Self {
        let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
        gauge.peak.fetch_max(now, Ordering::SeqCst);
        metrics::gauge!(METRIC_CHECKS).increment(1.0);
        Running(gauge)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!(METRIC_CHECKS).decrement(1.0);
    }
}

pub struct HashGate {
    permits: Arc<Semaphore>,
    gauge: Arc<HashGauge>,
}

/// Hashes at once by default: one per core, at least one, at most 4 (beyond that the sign-in
/// page would take memory the tracker needs).
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

impl HashGate {
    pub fn new(concurrency: usize) -> Self {
        HashGate {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            gauge: Arc::default(),
        }
    }

    pub fn gauge(&self) -> Arc<HashGauge> {
        self.gauge.clone()
    }

    /// Runs `check` on a blocking thread once a hasher is free. The permit goes with the
    /// thread: a client that disconnects while its hash runs does not free a place early.
    pub async fn run<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WebError> {
        let permit = tokio::time::timeout(QUEUE_WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                metrics::counter!(METRIC_REFUSED, "reason" => "busy").increment(1);
                WebError::SignInBusy {
                    retry_after: Duration::from_secs(1),
                }
            })?
            .map_err(|e| WebError::Serve(format!("password check gate: {e}")))?;
        let gauge = self.gauge.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _running = Running::start(gauge);
            check()
        })
        .await
        .map_err(|e| WebError::Serve(format!("checking a password: {e}")))
    }
}
