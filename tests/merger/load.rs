//! The traffic that must not notice the merger: a front office opening and handing off cases
//! without pause, and the agencies' systems reading their inboxes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onedoor_proto::v1;
use tokio::task::JoinHandle;

use super::support::{Agency, DEADLINE};

pub const FRONT: &str = "ODSC-VTE-SAYSETTHA";

/// Agencies that exist before and after the merger, so the load never depends on it.
const LOAD_TARGETS: [&str; 2] = ["MOF", "MOIC"];

/// What the load did: each case it wrote to, with the event ids the bus acknowledged, and
/// every call that failed.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    pub written_events: BTreeMap<String, Vec<String>>,
    pub failures: Vec<String>,
}

pub struct FrontLoad {
    stop: Arc<AtomicBool>,
    handed_off: Arc<AtomicUsize>,
    task: JoinHandle<LoadOutcome>,
}

impl FrontLoad {
    pub async fn start(endpoints: &serde_json::Value) -> FrontLoad {
        let front = Agency::connect(endpoints, FRONT).await;
        let stop = Arc::new(AtomicBool::new(false));
        let handed_off = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(run(front, stop.clone(), handed_off.clone()));
        FrontLoad {
            stop,
            handed_off,
            task,
        }
    }

    /// Hand-offs acknowledged so far.
    pub fn written(&self) -> usize {
        self.handed_off.load(Ordering::SeqCst)
    }

    /// Waits until at least `count` hand-offs were acknowledged.
    pub async fn wait_for_progress(&self, count: usize) {
        let handed_off = self.handed_off.clone();
        onedoor_testkit::eventually("the front office's load to progress", DEADLINE, || {
            let done = handed_off.load(Ordering::SeqCst) >= count;
            async move { Ok(done.then_some(())) }
        })
        .await
        .unwrap_or_else(|error| panic!("{error:#}"));
    }

    pub async fn stop(self) -> LoadOutcome {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the load task ends")
    }
}

async fn run(
    mut front: Agency,
    stop: Arc<AtomicBool>,
    handed_off: Arc<AtomicUsize>,
) -> LoadOutcome {
    let mut outcome = LoadOutcome::default();
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let open = v1::OpenCaseRequest {
            service: "enterprise-registration".into(),
            citizen_ref: format!("R-LOAD-{n}"),
            idempotency_key: format!("load-{n}"),
            ..Default::default()
        };
        let opened = match front.client.open_case(front.request(open)).await {
            Ok(receipt) => receipt.into_inner(),
            Err(status) => {
                outcome.failures.push(format!("open #{n}: {status}"));
                continue;
            }
        };
        let to = LOAD_TARGETS[n % LOAD_TARGETS.len()];
        let hand_off = v1::HandOffRequest {
            case_id: opened.case_id.clone(),
            to_agency: to.into(),
            idempotency_key: format!("load-{n}-to"),
            ..Default::default()
        };
        let events = outcome
            .written_events
            .entry(opened.case_id.clone())
            .or_default();
        events.push(opened.event_id);
        match front.client.hand_off(front.request(hand_off)).await {
            Ok(receipt) => {
                events.push(receipt.into_inner().event_id);
                handed_off.fetch_add(1, Ordering::SeqCst);
            }
            Err(status) => outcome
                .failures
                .push(format!("hand-off of {} to {to}: {status}", opened.case_id)),
        }
    }
    outcome
}

/// One item an agency's system read from its inbox.
#[derive(Debug, Clone)]
struct Received {
    agency: String,
    case_id: String,
    event_id: String,
    kind: v1::InboxItemKind,
}

/// Every agency's system reading its inbox and acknowledging each item at once.
pub struct Workers {
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<Received>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Workers {
    pub async fn start(endpoints: &serde_json::Value, groups: &[&[&str]]) -> Workers {
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for code in groups.iter().flat_map(|group| group.iter()) {
            let agency = Agency::connect(endpoints, code).await;
            tasks.push(tokio::spawn(work(
                (*code).to_owned(),
                agency,
                stop.clone(),
                received.clone(),
            )));
        }
        Workers {
            stop,
            received,
            tasks,
        }
    }

    /// Distinct new-task events `agency` received for `case_id`.
    fn new_tasks(&self, agency: &str, case_id: &str) -> usize {
        let received = self.received.lock().expect("not poisoned");
        let mut ids: Vec<_> = received
            .iter()
            .filter(|r| {
                r.agency == agency && r.case_id == case_id && r.kind == v1::InboxItemKind::NewTask
            })
            .map(|r| r.event_id.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// Waits until every `(agency, case)` pair was received as a new task, then checks that
    /// none came as two different events.
    pub async fn wait_for_new_tasks(&self, expected: &[(&str, &str)]) {
        let missing = || -> Vec<String> {
            expected
                .iter()
                .filter(|(agency, case_id)| self.new_tasks(agency, case_id) == 0)
                .map(|(agency, case_id)| format!("{agency} {case_id}"))
                .collect()
        };
        let waited = onedoor_testkit::eventually("the successors' tasks", DEADLINE, || {
            let done = missing().is_empty();
            async move { Ok(done.then_some(())) }
        })
        .await;
        if let Err(error) = waited {
            panic!("{error:#}; not received: {:?}", missing());
        }
        for (agency, case_id) in expected {
            assert_eq!(
                self.new_tasks(agency, case_id),
                1,
                "{agency} received case {case_id} as one new task"
            );
        }
    }

    pub async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.expect("a worker ends");
        }
    }
}

/// How long a worker waits for an item before it looks at the stop flag again.
const POLL: Duration = Duration::from_millis(200);

async fn work(
    code: String,
    mut agency: Agency,
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<Received>>>,
) {
    let mut inbox = agency.inbox().await;
    while !stop.load(Ordering::SeqCst) {
        let item = match tokio::time::timeout(POLL, inbox.message()).await {
            Err(_) => continue,
            Ok(Ok(Some(item))) => item,
            // The inbox of an ended agency is deleted by the drain: its stream ends.
            Ok(Ok(None) | Err(_)) => break,
        };
        let Some(event) = item.event.as_ref() else {
            continue;
        };
        let ack = v1::AckRequest {
            event_ids: vec![event.event_id.clone()],
        };
        if agency.client.ack(agency.request(ack)).await.is_ok() {
            received.lock().expect("not poisoned").push(Received {
                agency: code.clone(),
                case_id: event.case_id.clone(),
                event_id: event.event_id.clone(),
                kind: item.kind(),
            });
        }
    }
}
