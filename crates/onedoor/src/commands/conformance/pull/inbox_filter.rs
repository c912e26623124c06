//! [`InboxFilter`]: the inbox stream on its way to the worker, cut into items (gRPC frames, or
//! Server-Sent Events on the JSON face), each recorded in the journal and passed on as many
//! times as it says (none, once, twice). Anything else (keep-alives, errors) passes untouched.

use std::sync::Arc;

use onedoor_proto::v1;
use prost::Message as _;

use super::calls::{field, message};
use super::journal::{Delivery, Journal};

pub struct InboxFilter {
    grpc: bool,
    pending: Vec<u8>,
    journal: Arc<Journal>,
}

impl InboxFilter {
    pub fn new(grpc: bool, journal: Arc<Journal>) -> Self {
        InboxFilter {
            grpc,
            pending: Vec::new(),
            journal,
        }
    }

    /// What to pass on after `data` arrived: every whole item so far, as the journal says.
    pub fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(unit) = self.next_unit() {
            let copies = self
                .delivery(&unit)
                .map_or(1, |d| self.journal.delivered(d));
            for _ in 0..copies {
                out.extend_from_slice(&unit);
            }
        }
        out
    }

    /// Whatever is left when the stream ends (a cut-off item), passed on as it is.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    fn next_unit(&mut self) -> Option<Vec<u8>> {
        let end = if self.grpc {
            let header = self.pending.get(1..5)?;
            let length = usize::try_from(u32::from_be_bytes(header.try_into().ok()?)).ok()?;
            Some(5 + length).filter(|end| *end <= self.pending.len())?
        } else {
            self.pending.windows(2).position(|w| w == b"\n\n")? + 2
        };
        Some(self.pending.drain(..end).collect())
    }

    fn delivery(&self, unit: &[u8]) -> Option<Delivery> {
        if self.grpc {
            let item = v1::InboxItem::decode(message(unit)?).ok()?;
            let event = item.event?;
            let kind = v1::InboxItemKind::try_from(item.kind)
                .map(|k| k.as_str_name().to_owned())
                .unwrap_or_else(|_| item.kind.to_string());
            return Some(Delivery {
                event_id: event.event_id,
                case_id: event.case_id,
                kind,
                attempt: item.delivery_attempt,
                copies: 1,
            });
        }
        let text = std::str::from_utf8(unit).ok()?;
        let data: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        let item: serde_json::Value = serde_json::from_str(&data.join("\n")).ok()?;
        let event = item.get("event")?;
        let text = |value: Option<&serde_json::Value>| {
            value
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let attempt = field(&item, "deliveryAttempt", "delivery_attempt")
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1);
        Some(Delivery {
            event_id: text(field(event, "eventId", "event_id")),
            case_id: text(field(event, "caseId", "case_id")),
            kind: text(item.get("kind")),
            attempt,
            copies: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::calls::frame;
    use super::super::journal::{DeliveryFault, NEW_TASK};
    use super::*;

    fn item(event: &str, case: &str) -> v1::InboxItem {
        v1::InboxItem {
            event: Some(v1::CaseEvent {
                event_id: event.into(),
                case_id: case.into(),
                ..Default::default()
            }),
            kind: v1::InboxItemKind::NewTask.into(),
            delivery_attempt: 1,
            ..Default::default()
        }
    }

    #[test]
    fn grpc_items_split_across_chunks_are_dropped_or_doubled_as_planned() {
        let journal = Arc::new(Journal::default());
        journal.plan("C1", Some(DeliveryFault::Drop), None);
        journal.plan("C2", Some(DeliveryFault::Twice), None);
        let one = frame(&item("E1", "C1").encode_to_vec());
        let two = frame(&item("E2", "C2").encode_to_vec());
        let mut filter = InboxFilter::new(true, journal.clone());
        let mut stream = one.clone();
        stream.extend_from_slice(&two);
        let (head, tail) = stream.split_at(3);
        assert!(filter.feed(head).is_empty());
        let out = filter.feed(tail);
        assert_eq!(out, [two.clone(), two].concat());
        assert!(filter.finish().is_empty());
        let kinds = journal.read(|s| {
            s.deliveries
                .iter()
                .map(|d| d.kind.clone())
                .collect::<Vec<_>>()
        });
        assert_eq!(kinds, [NEW_TASK, NEW_TASK]);
    }

    #[test]
    fn server_sent_events_are_read_and_keep_alives_pass() {
        let journal = Arc::new(Journal::default());
        journal.plan("C1", Some(DeliveryFault::Twice), None);
        let event = format!(
            "event: item\ndata: {{\"event\": {{\"eventId\": \"E1\", \"caseId\": \"C1\"}}, \"kind\": \"{NEW_TASK}\", \"deliveryAttempt\": 2}}\n\n"
        );
        let mut filter = InboxFilter::new(false, journal.clone());
        let out = filter.feed(format!(":\n\n{event}").as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!(":\n\n{event}{event}")
        );
        assert_eq!(journal.read(|s| s.deliveries[0].attempt), 2);
        // Not an item at all: passed on, nothing recorded, no panic.
        assert_eq!(filter.feed(b"data: {\n\n"), b"data: {\n\n");
        assert_eq!(journal.read(|s| s.deliveries.len()), 1);
    }
}
