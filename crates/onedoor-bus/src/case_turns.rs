//! Writes of one process to one case take turns.
//!
//! Two writes to the same case from the same adapter (a front office handing one case to
//! several ministries at once) would otherwise decide on the same snapshot, publish with the
//! same expected sequence, and all but one would lose the race at the server, read again and
//! retry with a back-off: measured with `onedoor bench --hot-cases`, lost races were most of
//! the work. Taking turns locally, each write decides on the snapshot its predecessor just
//! left, so only writes from other processes can still race, which the server's check on the
//! expected sequence settles as before: the turns are a shortcut, never what keeps order.
//!
//! A fixed array of locks chosen by the case id's hash keeps memory bounded whatever the
//! number of cases; two cases sharing a lock only wait for each other's round trip.

use std::hash::{BuildHasher as _, RandomState};

use onedoor_case::CaseId;
use tokio::sync::{Mutex, MutexGuard};

/// How many locks: enough that writes in flight at once on different cases rarely share one.
const TURNS: usize = 4096;

pub(crate) struct CaseTurns {
    locks: Box<[Mutex<()>]>,
    hasher: RandomState,
}

impl CaseTurns {
    pub fn new() -> Self {
        CaseTurns {
            locks: (0..TURNS).map(|_| Mutex::new(())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Waits for the case's turn; the turn lasts as long as the guard.
    pub async fn take(&self, case_id: &CaseId) -> MutexGuard<'_, ()> {
        let slot = usize::try_from(self.hasher.hash_one(case_id) % TURNS as u64).unwrap_or(0);
        self.locks[slot].lock().await
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt as _;

    use super::*;

    #[tokio::test]
    async fn a_second_write_on_a_case_waits_for_the_first() {
        let turns = CaseTurns::new();
        let case = CaseId::generate();
        let held = turns.take(&case).await;
        assert!(
            turns.take(&case).now_or_never().is_none(),
            "the case's turn is taken"
        );
        assert_eq!(
            turns.locks.iter().filter(|l| l.try_lock().is_err()).count(),
            1
        );
        drop(held);
        assert!(
            turns.take(&case).now_or_never().is_some(),
            "the turn is free again"
        );
    }
}
