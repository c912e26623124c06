//! Keeping connections whose state cannot be trusted out of the pool.
//!
//! sqlx counts a connection's open transactions itself and turns a `begin` on a connection it
//! believes is still in one into a `SAVEPOINT`, whose `RELEASE` commits nothing. On a full
//! disk SQLite rolls a failed `COMMIT` back by itself; the `ROLLBACK` sqlx then sends fails
//! ("no transaction is active") and its count stays one too high. The next write on that
//! connection ran inside a savepoint that never committed, reported success, was acknowledged,
//! and vanished with the connection: events acked and never stored. So a connection sqlx
//! still counts a transaction on is closed instead of handed out again, and after a failed
//! write the store can drop every connection opened before it
//! ([`Store::reset_connections`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::any::AnyPoolOptions;

use super::Store;

/// When the store last dropped its connections.
#[derive(Debug, Default)]
pub(crate) struct Resets(Mutex<Option<Instant>>);

impl Resets {
    fn reset(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// Whether a connection opened `age` ago was opened before the last reset.
    fn predates_reset(&self, age: Duration) -> bool {
        let last = *self.0.lock().unwrap_or_else(|p| p.into_inner());
        last.is_some_and(|at| age >= at.elapsed())
    }
}

/// The pool's checks: a connection opened before the last reset is closed instead of handed
/// out or taken back, and so is one sqlx still counts a transaction on when it is handed out.
pub(crate) fn guarded(options: AnyPoolOptions, resets: &Arc<Resets>) -> AnyPoolOptions {
    let on_acquire = Arc::clone(resets);
    let on_release = Arc::clone(resets);
    options
        // The pool pings an idle connection before this check (`test_before_acquire`, on by
        // default), and SQLite's worker thread runs commands in order: a ROLLBACK queued when
        // a transaction was dropped has run, and the count read here is the one it left.
        .test_before_acquire(true)
        .before_acquire(move |conn, meta| {
            let keep = !on_acquire.predates_reset(meta.age) && !conn.is_in_transaction();
            Box::pin(async move { Ok(keep) })
        })
        .after_release(move |_, meta| {
            let keep = !on_release.predates_reset(meta.age);
            Box::pin(async move { Ok(keep) })
        })
}

impl Store {
    /// Drops every connection opened until now, as each comes back or is next handed out:
    /// after a failed write, none of them is trusted (a transaction count out of step, a file
    /// opened read-only while its file system was, a PostgreSQL session that was ended).
    pub fn reset_connections(&self) {
        self.resets.reset();
    }
}
