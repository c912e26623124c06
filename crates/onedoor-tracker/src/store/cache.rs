//! The last folded state of recently moved cases, so the next event of a case is folded onto
//! it instead of re-reading and re-folding the case's whole history.
//!
//! An entry is only a shortcut, never the truth: the write it leads to is conditional on the
//! case row still being at the cached version with no later events stored (see `rows`). A
//! miss reads the case back (`verifying`); another writer sends the case through a fresh
//! verification of everything stored of it (`reverify`), which is what the views are defined
//! by.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hashlink::LruCache;
use onedoor_case::CaseState;

use crate::view::Projected;

/// Cases kept. A case's entry is a few kilobytes; cases in flight at once are far fewer.
const CAPACITY: usize = 16_384;

/// A case whose stored events all verified, up to `state.version`.
#[derive(Debug, Clone)]
pub(crate) struct CachedCase {
    pub state: CaseState,
    /// The rows written for `state`.
    pub projected: Projected,
    /// SHA-256 of the payload at `state.version`: the next event's `prev_hash`.
    pub last_hash: [u8; 32],
    /// The highest stream sequence of the case's messages stored, accepted or quarantined: a
    /// message below it arrived late and may change what the later ones verify as.
    pub last_seq: u64,
}

#[derive(Debug)]
pub(crate) struct CaseCache(Mutex<LruCache<String, Arc<CachedCase>>>);

impl Default for CaseCache {
    fn default() -> Self {
        CaseCache(Mutex::new(LruCache::new(CAPACITY)))
    }
}

impl CaseCache {
    fn with<T>(&self, f: impl FnOnce(&mut LruCache<String, Arc<CachedCase>>) -> T) -> T {
        // A panic while holding the lock cannot leave an entry half-written (entries are
        // replaced whole), so a poisoned lock is still a good cache.
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    pub fn get(&self, case_id: &str) -> Option<Arc<CachedCase>> {
        self.with(|cache| cache.get(case_id).cloned())
    }

    pub fn clear(&self) {
        self.with(LruCache::clear);
    }

    /// Applies a committed transaction's changes: `Some` replaces an entry, `None` drops it.
    pub fn merge(&self, changes: HashMap<String, Option<Arc<CachedCase>>>) {
        self.with(|cache| {
            for (case_id, entry) in changes {
                match entry {
                    Some(entry) => {
                        cache.insert(case_id, entry);
                    }
                    None => {
                        cache.remove(&case_id);
                    }
                }
            }
        });
    }
}
