//! [`Journal`]: everything that passed between the worker and its adapter (inbox deliveries,
//! acks, writes), and the faults planned for one case's new task. The proxy writes it, the
//! checks read it and wait on it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// The kind name of a new task, as both the gRPC enum and the JSON face spell it.
pub const NEW_TASK: &str = "INBOX_ITEM_KIND_NEW_TASK";

/// What the proxy does to the first delivery of a case's new task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryFault {
    /// Not passed on: the worker never sees it, the bus sends it again after the ack wait.
    Drop,
    /// Passed on twice in a row, the same event id both times.
    Twice,
}

/// What the proxy does to the worker's first `Ack` of a case's new task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckFault {
    /// Answered as acknowledged without reaching the adapter (a lost ack): the bus sends the
    /// item again after the ack wait.
    Withhold,
    /// Reaches the adapter only after this long (past the ack wait).
    Delay(Duration),
}

/// One inbox item as it passed the proxy.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event_id: String,
    pub case_id: String,
    pub kind: String,
    pub attempt: u32,
    /// How many copies the worker got: 0 dropped, 2 doubled.
    pub copies: u32,
}

/// One write call (`Accept`, `Complete`, ...) on a case.
#[derive(Debug, Clone)]
pub struct Write {
    pub method: String,
    pub case_id: String,
    pub key: String,
}

#[derive(Default)]
struct Faults {
    delivery: Option<DeliveryFault>,
    ack: Option<AckFault>,
}

#[derive(Default)]
pub struct State {
    pub inbox_calls: u32,
    pub deliveries: Vec<Delivery>,
    /// Event ids the worker acknowledged, one entry per id per `Ack` call.
    pub acks: Vec<String>,
    pub writes: Vec<Write>,
    faults: HashMap<String, Faults>,
}

impl State {
    pub fn copies_of(&self, event_id: &str) -> u32 {
        self.deliveries_of(event_id).map(|d| d.copies).sum()
    }

    pub fn deliveries_of<'a>(&'a self, event_id: &'a str) -> impl Iterator<Item = &'a Delivery> {
        self.deliveries
            .iter()
            .filter(move |d| d.event_id == event_id)
    }

    pub fn acks_of(&self, event_id: &str) -> u32 {
        let count = self.acks.iter().filter(|id| *id == event_id).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Every copy the worker got of `event_id` is acknowledged (and it got at least one).
    pub fn all_acked(&self, event_id: &str) -> bool {
        let copies = self.copies_of(event_id);
        copies > 0 && self.acks_of(event_id) >= copies
    }

    /// The methods called on `case_id` under more than one idempotency key (an empty key
    /// counts as a new one each time): the same work done again, not retried.
    pub fn repeated_writes(&self, case_id: &str) -> Vec<String> {
        let mut keys: HashMap<&str, Vec<&str>> = HashMap::new();
        for write in self.writes.iter().filter(|w| w.case_id == case_id) {
            let seen = keys.entry(write.method.as_str()).or_default();
            if write.key.is_empty() || !seen.contains(&write.key.as_str()) {
                seen.push(&write.key);
            }
        }
        let mut repeated: Vec<String> = keys
            .into_iter()
            .filter(|(_, keys)| keys.len() > 1)
            .map(|(method, keys)| format!("{method} {}x", keys.len()))
            .collect();
        repeated.sort();
        repeated
    }

    /// `Accept, Complete` (the write calls on `case_id`, in order), or `no write`.
    pub fn writes_on(&self, case_id: &str) -> String {
        let methods: Vec<&str> = self
            .writes
            .iter()
            .filter(|w| w.case_id == case_id)
            .map(|w| w.method.as_str())
            .collect();
        if methods.is_empty() {
            "no write".to_owned()
        } else {
            methods.join(", ")
        }
    }

    /// `delivered 2x (attempts 1, 2), acked 2x`.
    pub fn traffic_of(&self, event_id: &str) -> String {
        let attempts: Vec<String> = self
            .deliveries_of(event_id)
            .map(|d| match d.copies {
                0 => format!("{} dropped", d.attempt),
                1 => d.attempt.to_string(),
                n => format!("{} x{n}", d.attempt),
            })
            .collect();
        format!(
            "delivered {}x (attempts {}), acked {}x",
            self.copies_of(event_id),
            attempts.join(", "),
            self.acks_of(event_id)
        )
    }
}

/// The shared record, and a signal each time it changes.
pub struct Journal {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

impl Default for Journal {
    fn default() -> Self {
        Journal {
            state: Mutex::default(),
            changed: watch::Sender::new(0),
        }
    }
}

impl Journal {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn change(&self, apply: impl FnOnce(&mut State)) {
        apply(&mut self.lock());
        self.changed.send_modify(|n| *n += 1);
    }

    /// Reads the state.
    pub fn read<T>(&self, look: impl FnOnce(&State) -> T) -> T {
        look(&self.lock())
    }

    /// The faults to apply to the first new task of `case_id`.
    pub fn plan(&self, case_id: &str, delivery: Option<DeliveryFault>, ack: Option<AckFault>) {
        self.change(|state| {
            state
                .faults
                .insert(case_id.to_owned(), Faults { delivery, ack });
        });
    }

    pub fn inbox_opened(&self) {
        self.change(|state| state.inbox_calls += 1);
    }

    /// Records a delivery and says how many copies to pass on (a planned fault applies once).
    pub fn delivered(&self, mut delivery: Delivery) -> u32 {
        let mut copies = 1;
        self.change(|state| {
            if delivery.kind == NEW_TASK
                && let Some(faults) = state.faults.get_mut(&delivery.case_id)
            {
                copies = match faults.delivery.take() {
                    Some(DeliveryFault::Drop) => 0,
                    Some(DeliveryFault::Twice) => 2,
                    None => 1,
                };
            }
            delivery.copies = copies;
            state.deliveries.push(delivery);
        });
        copies
    }

    /// Records an `Ack` of `event_ids` and says what to do with it: the fault planned for the
    /// case of a new task among them (once), or `None` to pass it on.
    pub fn acked(&self, event_ids: &[String]) -> Option<AckFault> {
        let mut fault = None;
        self.change(|state| {
            for id in event_ids {
                let case = state
                    .deliveries_of(id)
                    .find(|d| d.kind == NEW_TASK)
                    .map(|d| d.case_id.clone());
                if fault.is_none()
                    && let Some(faults) = case.and_then(|c| state.faults.get_mut(&c))
                {
                    fault = faults.ack.take();
                }
            }
            state.acks.extend(event_ids.iter().cloned());
        });
        fault
    }

    pub fn wrote(&self, write: Write) {
        self.change(|state| state.writes.push(write));
    }

    /// Waits until `condition` holds or `deadline` passes; whether it held.
    pub async fn until(&self, deadline: Instant, condition: impl Fn(&State) -> bool) -> bool {
        let mut changed = self.changed.subscribe();
        loop {
            changed.borrow_and_update();
            if condition(&self.lock()) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, changed.changed()).await.is_err() {
                return condition(&self.lock());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(event: &str, case: &str, kind: &str) -> Delivery {
        Delivery {
            event_id: event.to_owned(),
            case_id: case.to_owned(),
            kind: kind.to_owned(),
            attempt: 1,
            copies: 1,
        }
    }

    fn write(method: &str, key: &str) -> Write {
        Write {
            method: method.to_owned(),
            case_id: "C".to_owned(),
            key: key.to_owned(),
        }
    }

    #[test]
    fn a_fault_applies_to_the_first_new_task_of_its_case_only() {
        let journal = Journal::default();
        journal.plan("C", Some(DeliveryFault::Drop), Some(AckFault::Withhold));
        assert_eq!(journal.delivered(delivery("E0", "C", "OTHER")), 1);
        assert_eq!(journal.delivered(delivery("E1", "C", NEW_TASK)), 0);
        assert_eq!(journal.delivered(delivery("E1", "C", NEW_TASK)), 1);
        assert_eq!(journal.acked(&["E0".to_owned()]), None);
        assert_eq!(journal.acked(&["E1".to_owned()]), Some(AckFault::Withhold));
        assert_eq!(journal.acked(&["E1".to_owned()]), None);
        assert!(journal.read(|s| s.all_acked("E1")));
    }

    #[test]
    fn the_same_key_again_is_a_retry_and_a_new_key_is_work_done_twice() {
        let journal = Journal::default();
        for (method, key) in [("Accept", "a"), ("Accept", "a"), ("Complete", "")] {
            journal.wrote(write(method, key));
        }
        assert!(journal.read(|s| s.repeated_writes("C")).is_empty());
        journal.wrote(write("Accept", "b"));
        journal.wrote(write("Complete", ""));
        assert_eq!(
            journal.read(|s| s.repeated_writes("C")),
            ["Accept 2x", "Complete 2x"]
        );
    }
}
