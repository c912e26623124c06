//! The checks against a pull worker. Each sends one case's work through the real bus, with the
//! proxy's fault planned for it, and judges by what the worker acknowledged and wrote.
//!
//! "Acted on once" is judged by the writes: the same call on the same case under a second
//! idempotency key is the work done again (a retry keeps its key, and is fine).

use std::sync::Arc;
use std::time::{Duration, Instant};

use onedoor_case::limits;

use super::super::items::lao;
use super::super::report::Check;
use super::bus::{Bus, Handed, document_at_limits};
use super::journal::{AckFault, DeliveryFault, Journal, State};
use super::worker::Worker;

const WITHDRAWN: &str = "INBOX_ITEM_KIND_CASE_WITHDRAWN";

const ACT_ONCE_FIX: &str = "the work was done again for an event already handled: record each event id in the same transaction as its work, skip (and acknowledge) an id already recorded, and derive idempotency keys from the event id";
const ACK_AGAIN_FIX: &str = "acknowledge an item you already handled (found by its event id) without acting again: an unacknowledged delivery comes back after the ack wait until it is stuck";

/// How a wait ended.
enum Waited {
    Met,
    TimedOut,
    /// The worker's command ended first, with this status.
    Exited(String),
}

pub struct Drive<'a> {
    pub bus: &'a Bus,
    pub journal: Arc<Journal>,
    pub worker: &'a Worker,
    pub agency: String,
    /// How long the worker may take over one item.
    pub deadline: Duration,
    /// The ack wait the agency's inbox runs with.
    pub ack_wait: Duration,
}

impl Drive<'_> {
    /// Every check, in order; if the worker never opens its inbox, that one alone.
    pub async fn run(&self) -> anyhow::Result<Vec<Check>> {
        let opened = self.inbox_opened().await;
        if !opened.passed {
            return Ok(vec![opened]);
        }
        Ok(vec![
            opened,
            self.new_task().await?,
            self.redelivered().await?,
            self.duplicate().await?,
            self.out_of_order().await?,
            self.slow_ack().await?,
            self.at_limits().await?,
            self.still_running(),
        ])
    }

    async fn wait(&self, within: Duration, condition: impl Fn(&State) -> bool) -> Waited {
        let deadline = Instant::now() + within;
        tokio::select! {
            met = self.journal.until(deadline, &condition) => {
                if met { Waited::Met } else { Waited::TimedOut }
            }
            () = self.worker.ended() => {
                if self.journal.read(&condition) {
                    Waited::Met
                } else {
                    Waited::Exited(self.worker.exit().unwrap_or_default())
                }
            }
        }
    }

    /// A new case handed to the agency, with `faults` planned for its task.
    async fn task(
        &self,
        delivery: Option<DeliveryFault>,
        ack: Option<AckFault>,
    ) -> anyhow::Result<Handed> {
        let case_id = self
            .bus
            .open("CONFORMANCE-1", "onedoor conformance")
            .await?;
        self.journal.plan(&case_id, delivery, ack);
        self.bus
            .hand_off(&case_id, &self.agency, "check the company name", Vec::new())
            .await
    }

    fn exited(&self, check: Check, status: &str) -> Check {
        let words = self.worker.last_words();
        Check {
            saw: format!("{}; the worker exited ({status}): {words}", check.saw),
            ..check
        }
        .fail("keep the worker running: catch errors per item (an unacknowledged item comes again), and open the inbox again when its stream ends")
    }

    fn traffic(&self, handed: &Handed) -> String {
        self.journal.read(|s| {
            format!(
                "{}; {}",
                s.traffic_of(&handed.event_id),
                s.writes_on(&handed.case_id)
            )
        })
    }

    async fn inbox_opened(&self) -> Check {
        let waited = self.wait(self.deadline * 2, |s| s.inbox_calls > 0).await;
        let check = Check::new("worker opens its inbox", "Inbox opened");
        match waited {
            Waited::Met => check.pass(),
            Waited::TimedOut => Check::new("worker opens its inbox", format!("no Inbox opened within {:?}", self.deadline * 2))
                .fail("point the worker at {adapter} (gRPC AgencyGateway.Inbox or POST {http}/v1/Inbox) with the token {token}"),
            Waited::Exited(status) => Check {
                fix: Some("the worker ended before its inbox was open: run the command by hand to see why (its last output is shown), with {adapter} and {token} where it takes the adapter's URL and token".to_owned()),
                ..self.exited(Check::new("worker opens its inbox", "no Inbox opened"), &status)
            },
        }
    }

    async fn new_task(&self) -> anyhow::Result<Check> {
        let started = Instant::now();
        let handed = self.task(None, None).await?;
        let event = handed.event_id.clone();
        let waited = self.wait(self.deadline, |s| s.all_acked(&event)).await;
        let check = Check::new(
            "new task acknowledged",
            format!(
                "{} in {} ms",
                self.traffic(&handed),
                started.elapsed().as_millis()
            ),
        );
        Ok(match waited {
            Waited::Met => check.pass(),
            Waited::TimedOut => check.fail(&format!(
                "acknowledge each item (Ack with its event id) once its work is stored, within {:?} here (the bus's ack wait is 30 s): an unacknowledged item comes again until it is stuck",
                self.deadline
            )),
            Waited::Exited(status) => self.exited(check, &status),
        })
    }

    async fn redelivered(&self) -> anyhow::Result<Check> {
        let handed = self.task(None, Some(AckFault::Withhold)).await?;
        let event = handed.event_id.clone();
        let waited = self
            .wait(self.deadline + self.ack_wait * 2, |s| {
                s.deliveries_of(&event).any(|d| d.attempt > 1) && s.all_acked(&event)
            })
            .await;
        let check = Check::new(
            "redelivery after a lost ack: acked, not acted on again",
            format!("first ack lost; {}", self.traffic(&handed)),
        );
        Ok(self.acted_once(check, waited, &handed))
    }

    async fn duplicate(&self) -> anyhow::Result<Check> {
        let handed = self.task(Some(DeliveryFault::Twice), None).await?;
        let event = handed.event_id.clone();
        let waited = self.wait(self.deadline * 2, |s| s.all_acked(&event)).await;
        let check = Check::new(
            "same event id twice: acked twice, acted on once",
            self.traffic(&handed),
        );
        Ok(self.acted_once(check, waited, &handed))
    }

    /// Passes when the wait was met and no write was repeated.
    fn acted_once(&self, check: Check, waited: Waited, handed: &Handed) -> Check {
        let repeated = self.journal.read(|s| s.repeated_writes(&handed.case_id));
        match waited {
            Waited::Exited(status) => self.exited(check, &status),
            _ if !repeated.is_empty() => Check {
                saw: format!("{}; repeated: {}", check.saw, repeated.join(", ")),
                ..check
            }
            .fail(ACT_ONCE_FIX),
            Waited::Met => check.pass(),
            Waited::TimedOut => check.fail(ACK_AGAIN_FIX),
        }
    }

    async fn out_of_order(&self) -> anyhow::Result<Check> {
        let handed = self.task(Some(DeliveryFault::Drop), None).await?;
        let (case, event) = (handed.case_id.clone(), handed.event_id.clone());
        // The task's first delivery is held back; the withdrawal that ends it goes first.
        self.wait(self.deadline, |s| {
            s.copies_of(&event) == 0 && s.deliveries_of(&event).count() > 0
        })
        .await;
        self.bus.withdraw(&case).await?;
        let withdrawal = |s: &State| {
            s.deliveries
                .iter()
                .find(|d| d.case_id == case && d.kind == WITHDRAWN)
                .map(|d| d.event_id.clone())
        };
        let waited = self
            .wait(self.deadline + self.ack_wait * 2, |s| {
                withdrawal(s).is_some_and(|w| s.all_acked(&w)) && s.all_acked(&event)
            })
            .await;
        let withdrawn_acked = self
            .journal
            .read(|s| withdrawal(s).is_some_and(|w| s.all_acked(&w)));
        let check = Check::new(
            "withdrawal before its task: both acked",
            format!(
                "withdrawal {}; then its task: {}",
                if withdrawn_acked {
                    "acked"
                } else {
                    "not acked"
                },
                self.traffic(&handed)
            ),
        );
        Ok(match waited {
            Waited::Met => check.pass(),
            Waited::Exited(status) => self.exited(check, &status),
            Waited::TimedOut if !withdrawn_acked => check.fail(
                "items of a case may arrive in any order: acknowledge an item about a case you have not seen yet (here its withdrawal) and order a case's items by event.caseVersion",
            ),
            Waited::TimedOut => check.fail(
                "a task whose case moved on (withdrawn meanwhile) is refused with FAILED_PRECONDITION: record that and acknowledge the item; retry only UNAVAILABLE and ABORTED",
            ),
        })
    }

    async fn slow_ack(&self) -> anyhow::Result<Check> {
        let delay = self.ack_wait + Duration::from_secs(1);
        let handed = self.task(None, Some(AckFault::Delay(delay))).await?;
        let event = handed.event_id.clone();
        let waited = self
            .wait(self.deadline + delay * 2, |s| {
                s.deliveries_of(&event).any(|d| d.attempt > 1) && s.all_acked(&event)
            })
            .await;
        let check = Check::new(
            "ack later than the ack wait: redelivery tolerated",
            format!(
                "first ack delayed {} ms (ack wait {} ms); {}",
                delay.as_millis(),
                self.ack_wait.as_millis(),
                self.traffic(&handed)
            ),
        );
        Ok(self.acted_once(check, waited, &handed))
    }

    async fn at_limits(&self) -> anyhow::Result<Check> {
        let case_id = self
            .bus
            .open(
                &lao(limits::CITIZEN_REF_MAX_BYTES),
                &lao(limits::SUMMARY_MAX_BYTES),
            )
            .await?;
        self.journal.plan(&case_id, None, None);
        let documents = vec![document_at_limits(); limits::DOCUMENTS_MAX];
        let handed = self
            .bus
            .hand_off(
                &case_id,
                &self.agency,
                &lao(limits::INSTRUCTIONS_MAX_BYTES),
                documents,
            )
            .await?;
        let event = handed.event_id.clone();
        let waited = self.wait(self.deadline, |s| s.all_acked(&event)).await;
        let check = Check::new(
            "fields at the contract's limits handled",
            self.traffic(&handed),
        );
        let fix = format!(
            "the worker failed on an item the bus allows: size columns and buffers for instructions and summary of {} bytes, citizenRef {}, {} documents with name {} and uri {} bytes, sizeBytes up to 2^64-1 (a string in JSON); text is UTF-8, Lao letters three bytes each",
            limits::INSTRUCTIONS_MAX_BYTES,
            limits::CITIZEN_REF_MAX_BYTES,
            limits::DOCUMENTS_MAX,
            limits::DOCUMENT_NAME_MAX_BYTES,
            limits::DOCUMENT_URI_MAX_BYTES
        );
        Ok(match waited {
            Waited::Met => check.pass(),
            Waited::TimedOut => check.fail(&fix),
            Waited::Exited(status) => {
                let failed = self.exited(check, &status);
                Check {
                    fix: Some(fix),
                    ..failed
                }
            }
        })
    }

    fn still_running(&self) -> Check {
        let items = self.journal.read(|s| s.deliveries.len());
        match self.worker.exit() {
            None => Check::new("worker still running", format!("after {items} deliveries")).pass(),
            Some(status) => self.exited(
                Check::new("worker still running", format!("after {items} deliveries")),
                &status,
            ),
        }
    }
}
