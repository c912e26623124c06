//! Keeping connections whose state cannot be trusted out of the pool.
//!
//! sqlx counts a connection's open transactions itself and turns a `begin` on a connection it
//! believes is still in one into a `SAVEPOINT`, whose `RELEASE` commits nothing. On a full
//! disk SQLite rolls a failed `COMMIT` back by itself; the `ROLLBACK` sqlx then sends fails
//! ("no transaction is active") and its count stays one too high. The next write on that
//! connection ran inside a savepoint that never committed, reported success, was acknowledged,
//! and vanished with the connection: events acked and never stored. So a connection sqlx still
//! counts a transaction on is closed when it comes back, and after a failed write the store
//! can drop every connection opened before it ([`Store::reset_connections`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::any::AnyPoolOptions;

use super::Store;
use crate::config::Backend;

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
/// out or taken back, and so is one sqlx still counts a transaction on when it is released.
pub(crate) fn guarded(
    options: AnyPoolOptions,
    backend: Backend,
    resets: &Arc<Resets>,
) -> AnyPoolOptions {
    let on_acquire = Arc::clone(resets);
    let on_release = Arc::clone(resets);
    options
        .before_acquire(move |_, meta| {
            let fresh = !on_acquire.predates_reset(meta.age);
            Box::pin(async move { Ok(fresh) })
        })
        .after_release(move |conn, meta| {
            let stale = on_release.predates_reset(meta.age);
            Box::pin(async move {
                if stale {
                    return Ok(false);
                }
                // A dropped transaction's ROLLBACK is queued to SQLite's worker thread, which
                // runs commands in order: the ping returns after it, so the count read next
                // is the one that ROLLBACK left. PostgreSQL updates the count at once.
                if backend == Backend::Sqlite {
                    conn.ping().await?;
                }
                Ok(!conn.is_in_transaction())
            })
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
