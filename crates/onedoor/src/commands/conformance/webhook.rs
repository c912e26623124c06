//! The webhook checks: conformance plays the agency's adapter, posting through the adapter's
//! own [`Receiver`] (same signing, TLS, timeout and redirect rules), and judges each answer.
//!
//! "Acted on once" is observed through the answer's body: a receiver under test answers a 2xx
//! with `{"outcome": "processed"}` when it did the work and `{"outcome": "duplicate"}` when it
//! had already done it (`docs/integration.md`, "Conformance").

use std::sync::Mutex;
use std::time::{Duration, Instant};

use onedoor_adapter::webhook::signature::{self, TOLERANCE_SECONDS};
use onedoor_adapter::webhook::{
    Answer, Delivery, Failure, JsonBody, Receiver, WebhookSecret, WebhookSecrets,
};

use onedoor_case::limits;

use super::items::{Item, Items};
use super::report::Check;

/// What a 2xx answer said about the work.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Processed,
    Duplicate,
    /// No `outcome` the contract knows; the text is what came instead.
    Nothing(String),
}

/// One POST and its answer.
struct Reply {
    answer: Result<Answer, Failure>,
    elapsed: Duration,
}

impl Reply {
    fn status(&self) -> Option<u16> {
        self.answer.as_ref().ok().map(|a| a.status)
    }

    fn acked(&self) -> bool {
        self.status().is_some_and(|s| (200..300).contains(&s))
    }

    fn refused(&self) -> bool {
        self.status().is_some_and(|s| (400..500).contains(&s))
    }

    fn said(&self) -> Said {
        let Ok(answer) = &self.answer else {
            return Said::Nothing(String::new());
        };
        let outcome = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("outcome").and_then(|o| o.as_str()).map(str::to_owned));
        match outcome.as_deref() {
            Some("processed") => Said::Processed,
            Some("duplicate") => Said::Duplicate,
            _ => Said::Nothing(
                String::from_utf8_lossy(&answer.body)
                    .chars()
                    .take(80)
                    .collect(),
            ),
        }
    }

    /// `200 processed in 3 ms`, `401 in 2 ms`, `no answer within 10s`.
    fn describe(&self) -> String {
        let took = format!("{} ms", self.elapsed.as_millis());
        match &self.answer {
            Ok(answer) if (200..300).contains(&answer.status) => match self.said() {
                Said::Processed => format!("{} processed in {took}", answer.status),
                Said::Duplicate => format!("{} duplicate in {took}", answer.status),
                Said::Nothing(body) => format!("{} {body:?} in {took}", answer.status),
            },
            Ok(answer) => format!("{} in {took}", answer.status),
            Err(Failure::TimedOut(after)) => format!("no answer within {after:?}"),
            Err(failure) => failure.to_string(),
        }
    }
}

const CONTRACT_FIX: &str = "answer a 2xx with the body {\"outcome\":\"processed\"} when you did the work and {\"outcome\":\"duplicate\"} when you had already done it for this webhook-id (docs/integration.md, Conformance)";

/// The agency's receiver and what conformance posts to it.
pub struct Webhook {
    receiver: Receiver,
    json: JsonBody,
    items: Items,
    secrets: WebhookSecrets,
    slowest: Mutex<Duration>,
}

impl Webhook {
    pub fn new(receiver: Receiver, secrets: WebhookSecrets, agency: &str) -> anyhow::Result<Self> {
        Ok(Webhook {
            receiver,
            json: JsonBody::new()?,
            items: Items::new(agency),
            secrets,
            slowest: Mutex::new(Duration::ZERO),
        })
    }

    /// Every check, in order; each stands alone (fresh cases and event ids).
    pub async fn run(&self) -> anyhow::Result<Vec<Check>> {
        Ok(vec![
            self.signed_item_acked().await?,
            self.bad_signature_refused().await?,
            self.stale_timestamp_refused().await?,
            self.duplicate_acted_on_once().await?,
            self.out_of_order_accepted().await?,
            self.oversized_fields_handled().await?,
            self.slow_ack_retried().await?,
        ])
    }

    async fn send(&self, delivery: Delivery) -> Reply {
        let started = Instant::now();
        let answer = self.receiver.send(delivery).await;
        let elapsed = started.elapsed();
        if let Ok(mut slowest) = self.slowest.lock() {
            *slowest = (*slowest).max(elapsed);
        }
        Reply { answer, elapsed }
    }

    /// `item` as delivery `attempt`, signed now as the adapter signs.
    async fn deliver(&self, item: &Item, attempt: u32) -> anyhow::Result<Reply> {
        let body = item.body(&self.json, attempt)?;
        Ok(self
            .send(
                self.receiver
                    .signed(&item.event_id, body, item.traceparent()),
            )
            .await)
    }

    /// `item` signed at `timestamp` with `secrets` (not necessarily the receiver's).
    async fn deliver_signed(
        &self,
        item: &Item,
        timestamp: i64,
        secrets: &WebhookSecrets,
    ) -> anyhow::Result<Reply> {
        let body = item.body(&self.json, 1)?;
        let signature = signature::signature_header(secrets, &item.event_id, timestamp, &body);
        Ok(self
            .send(Delivery {
                id: item.event_id.clone(),
                timestamp,
                signature,
                body,
                traceparent: item.traceparent(),
            })
            .await)
    }

    fn new_task(&self) -> Item {
        self.items
            .new_task(&Items::case(), 2, "check the company name")
    }

    async fn signed_item_acked(&self) -> anyhow::Result<Check> {
        let reply = self.deliver(&self.new_task(), 1).await?;
        let check = Check::new("signed item acked with 2xx", reply.describe());
        Ok(match (reply.acked(), reply.said()) {
            (true, Said::Processed) => check.pass(),
            (true, Said::Duplicate) => check.fail(
                "a new webhook-id was answered as a duplicate: de-duplicate by webhook-id alone",
            ),
            (true, Said::Nothing(_)) => check.fail(CONTRACT_FIX),
            (false, _) => check.fail(&self.not_acked_fix(&reply)),
        })
    }

    async fn bad_signature_refused(&self) -> anyhow::Result<Check> {
        let other = WebhookSecrets::new(vec![WebhookSecret::generate()])?;
        let now = now();
        let wrong = self.deliver_signed(&self.new_task(), now, &other).await?;
        let item = self.new_task();
        let body = item.body(&self.json, 1)?;
        let unsigned = self
            .send(Delivery {
                id: item.event_id.clone(),
                timestamp: now,
                signature: String::new(),
                body,
                traceparent: item.traceparent(),
            })
            .await;
        let check = Check::new(
            "bad signature refused with 4xx",
            format!(
                "another secret: {}; no signature: {}",
                wrong.describe(),
                unsigned.describe()
            ),
        );
        Ok(refusal(check, &[&wrong, &unsigned], "signature"))
    }

    async fn stale_timestamp_refused(&self) -> anyhow::Result<Check> {
        let off = TOLERANCE_SECONDS * 2;
        let old = self
            .deliver_signed(&self.new_task(), now() - off, &self.secrets)
            .await?;
        let ahead = self
            .deliver_signed(&self.new_task(), now() + off, &self.secrets)
            .await?;
        let check = Check::new(
            "stale timestamp refused with 4xx",
            format!(
                "{} min old: {}; {} min ahead: {}",
                off / 60,
                old.describe(),
                off / 60,
                ahead.describe()
            ),
        );
        Ok(refusal(check, &[&old, &ahead], "timestamp"))
    }

    async fn duplicate_acted_on_once(&self) -> anyhow::Result<Check> {
        let item = self.new_task();
        let first = self.deliver(&item, 1).await?;
        let again = self.deliver(&item, 2).await?;
        let check = Check::new(
            "same item twice: acked twice, acted on once",
            format!("first: {}; again: {}", first.describe(), again.describe()),
        );
        Ok(match (first.said(), again.acked(), again.said()) {
            _ if !first.acked() => check.fail(&self.not_acked_fix(&first)),
            (Said::Processed, true, Said::Duplicate) => check.pass(),
            (_, false, _) => check.fail(
                "answer 2xx to a webhook-id you already handled (without doing the work again), or the adapter sends it until it is stuck",
            ),
            (Said::Processed, true, Said::Processed) => check.fail(
                "the work was done twice: record the webhook-id in the same transaction as the work, and skip an id you already have",
            ),
            _ => check.fail(CONTRACT_FIX),
        })
    }

    async fn out_of_order_accepted(&self) -> anyhow::Result<Check> {
        let case = Items::case();
        let later = self.items.withdrawn(&case, 4);
        let earlier = self.items.new_task(&case, 2, "check the company name");
        let first = self.deliver(&later, 1).await?;
        let second = self.deliver(&earlier, 1).await?;
        let check = Check::new(
            "later step before earlier accepted",
            format!(
                "case withdrawn (version 4): {}; then its task (version 2): {}",
                first.describe(),
                second.describe()
            ),
        );
        let both = [&first, &second];
        Ok(
            if both
                .iter()
                .all(|r| r.acked() && r.said() == Said::Processed)
            {
                check.pass()
            } else if both.iter().any(|r| !r.acked()) {
                check.fail(
                "items of a case may arrive in any order (retries, up to 32 in flight): accept a later step before an earlier one and order by event.caseVersion; a refused item is retried until it is stuck",
            )
            } else if both.iter().any(|r| r.said() == Said::Duplicate) {
                check.fail("two events of one case were taken as one: de-duplicate by webhook-id (the event id), not by case")
            } else {
                check.fail(CONTRACT_FIX)
            },
        )
    }

    async fn oversized_fields_handled(&self) -> anyhow::Result<Check> {
        let item = self.items.oversized(&Items::case());
        let size = item.body(&self.json, 1)?.len();
        let reply = self.deliver(&item, 1).await?;
        let check = Check::new(
            "fields at the bus's limits handled",
            format!("{} ({size} bytes of body)", reply.describe()),
        );
        let limits = format!(
            "instructions {} bytes, citizenRef {}, a document's name {} and uri {}, sizeBytes up to 2^64-1 (sent as a string); text is UTF-8, Lao letters three bytes each",
            limits::INSTRUCTIONS_MAX_BYTES,
            limits::CITIZEN_REF_MAX_BYTES,
            limits::DOCUMENT_NAME_MAX_BYTES,
            limits::DOCUMENT_URI_MAX_BYTES
        );
        Ok(match reply.status() {
            Some(200..=299) if reply.said() == Said::Processed => check.pass(),
            Some(200..=299) => check.fail(CONTRACT_FIX),
            Some(status) if status >= 500 => check.fail(&format!(
                "your receiver failed on an item the bus allows: size columns and buffers for {limits}"
            )),
            Some(_) => check.fail(&format!(
                "your receiver refused an item the bus allows, so it would be retried until stuck: accept bodies of at least 64 KiB and {limits}"
            )),
            None => check.fail(&self.not_acked_fix(&reply)),
        })
    }

    async fn slow_ack_retried(&self) -> anyhow::Result<Check> {
        let item = self.new_task();
        let first = self.deliver(&item, 1).await?;
        let timeout = self.receiver.timeout();
        let slowest = self.slowest.lock().map(|s| *s).unwrap_or_default();
        if first.acked() {
            return Ok(Check::new(
                "ack within the adapter's timeout",
                format!(
                    "{}; slowest answer of this run {} ms, timeout {timeout:?}",
                    first.describe(),
                    slowest.as_millis()
                ),
            )
            .pass());
        }
        // The adapter counts a late answer as failed and sends the item again.
        let retry = self.deliver(&item, 2).await?;
        let check = Check::new(
            "ack within the adapter's timeout",
            format!(
                "{}; retried as the adapter would: {}",
                first.describe(),
                retry.describe()
            ),
        );
        Ok(check.fail(&self.not_acked_fix(&first)))
    }

    /// How to fix a valid item that was not acknowledged, by what happened instead.
    fn not_acked_fix(&self, reply: &Reply) -> String {
        match &reply.answer {
            Err(Failure::TimedOut(after)) => format!(
                "answer within {after:?} (the adapter's --webhook-timeout): store the item and answer 2xx first, do slow work afterwards; a late answer counts as failed and the item is sent again"
            ),
            Err(Failure::Unreachable(_)) => format!(
                "is the receiver running and reachable at {}? for https, pass its CA with --webhook-ca",
                self.receiver.shown_url()
            ),
            Err(Failure::Redirect { .. }) | Ok(Answer { status: 300..=399, .. }) => {
                "redirects are not followed: give the final URL".to_owned()
            }
            Ok(Answer { status: 401 | 403, .. }) => "a correctly signed item was refused: check the receiver holds the same secret, and verifies the raw body bytes (before any JSON parsing) as docs/webhooks.md shows".to_owned(),
            Ok(Answer { status, .. }) => format!(
                "a valid item was answered {status}: answer 2xx once the item is stored; anything else is retried until the item is stuck"
            ),
            Err(failure) => failure.to_string(),
        }
    }
}

/// Passes when every reply is a 4xx; otherwise says how to fix the first that is not.
fn refusal(check: Check, replies: &[&Reply], what: &str) -> Check {
    if replies.iter().all(|r| r.refused()) {
        return check.pass();
    }
    if replies.iter().any(|r| r.acked()) {
        return check.fail(&format!(
            "an item with a bad {what} was accepted: verify webhook-id, webhook-timestamp (within 5 minutes of your clock) and webhook-signature before anything else, and answer 401 (docs/webhooks.md)"
        ));
    }
    check.fail(&format!(
        "a bad {what} is the sender's fault: answer 401 quickly, not a 5xx or nothing (those look like your outage)"
    ))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
