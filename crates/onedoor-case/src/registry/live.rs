//! The registry a running process uses now, replaceable while it runs: `registry apply`
//! publishes a new one and every adapter, tracker and case reader moves to it without a
//! restart (`docs/agency-lifecycle.md`, "Registry reload").
//!
//! Readers take [`LiveRegistry::current`] once per message or call and keep that `Arc` for
//! the whole check, so one verification never mixes two registries. A plain `RwLock` around
//! an `Arc` is enough: the lock is held only to clone the `Arc`, and a swap happens a few
//! times a year.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::{Registry, RegistryVersion};

/// A shared, swappable registry. Clones share one value.
#[derive(Debug, Clone)]
pub struct LiveRegistry {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    current: RwLock<Arc<Registry>>,
    /// Bumped on every swap, so caches of things verified under an older registry can tell
    /// they must be dropped.
    generation: AtomicU64,
}

impl LiveRegistry {
    pub fn new(registry: Arc<Registry>) -> Self {
        LiveRegistry {
            shared: Arc::new(Shared {
                current: RwLock::new(registry),
                generation: AtomicU64::new(0),
            }),
        }
    }

    /// The registry in force now; keep the returned `Arc` for one whole check.
    pub fn current(&self) -> Arc<Registry> {
        self.read().clone()
    }

    /// [`LiveRegistry::current`] with the generation it belongs to, read together.
    pub fn current_with_generation(&self) -> (u64, Arc<Registry>) {
        let current = self.read();
        (
            self.shared.generation.load(Ordering::Acquire),
            current.clone(),
        )
    }

    /// How many times the registry was replaced since start.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// Moves to `next` if its version is later than the current one's; else leaves the
    /// current one and returns its version. Checked under the lock, so two sources (the
    /// published registry and a SIGHUP re-read) cannot step each other back.
    pub fn advance(&self, next: Arc<Registry>) -> Result<u64, RegistryVersion> {
        let mut current = self
            .shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if next.version <= current.version {
            return Err(current.version);
        }
        *current = next;
        Ok(self.shared.generation.fetch_add(1, Ordering::AcqRel) + 1)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Arc<Registry>> {
        // A panic while swapping leaves either registry in place, both valid.
        self.shared
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl From<Arc<Registry>> for LiveRegistry {
    fn from(registry: Arc<Registry>) -> Self {
        LiveRegistry::new(registry)
    }
}

impl From<Registry> for LiveRegistry {
    fn from(registry: Registry) -> Self {
        LiveRegistry::new(Arc::new(registry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(file: &str) -> Arc<Registry> {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/registry")
            .join(file);
        Arc::new(Registry::load(&path).expect("shipped registry"))
    }

    #[test]
    fn a_later_version_replaces_the_registry_and_an_earlier_one_does_not() {
        let live = LiveRegistry::new(shipped("lao-2021.toml"));
        let held = live.current();
        assert_eq!(live.advance(shipped("lao-2025.toml")), Ok(1));
        assert_eq!(live.current().version.to_string(), "2025-03");
        // What a reader took before the swap stays whole.
        assert_eq!(held.version.to_string(), "2021-10");
        let refused = live.advance(shipped("lao-2021.toml"));
        assert_eq!(refused.map_err(|v| v.to_string()), Err("2025-03".into()));
        assert!(live.advance(shipped("lao-2025.toml")).is_err());
        assert_eq!(live.current_with_generation().0, 1);
    }
}
