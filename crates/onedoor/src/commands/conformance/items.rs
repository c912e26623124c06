//! The inbox items conformance sends: addressed to the agency under test, fresh ids on every
//! run (so a receiver that keeps its store between runs sees new items), and encoded to JSON
//! by the adapter's own [`JsonBody`], so the receiver gets exactly what the adapter would send.

use onedoor_adapter::webhook::JsonBody;
use onedoor_case::limits;
use onedoor_proto::v1;

/// The front office the items come from; any real code of the default registry would do.
const FRONT_OFFICE: &str = "ODSC-VTE-SAYSETTHA";
const SERVICE: &str = "enterprise-registration";

/// One event addressed to the agency, sendable as any delivery attempt.
#[derive(Debug, Clone)]
pub struct Item {
    pub event_id: String,
    item: v1::InboxItem,
}

impl Item {
    /// The webhook body for delivery attempt `attempt` (1 for the first).
    pub fn body(&self, json: &JsonBody, attempt: u32) -> anyhow::Result<Vec<u8>> {
        let mut item = self.item.clone();
        item.delivery_attempt = attempt;
        Ok(json.encode(&item)?)
    }

    pub fn traceparent(&self) -> Option<String> {
        Some(self.item.traceparent.clone())
    }
}

/// Makes items for one agency.
#[derive(Debug, Clone)]
pub struct Items {
    agency: String,
}

impl Items {
    pub fn new(agency: &str) -> Self {
        Items {
            agency: agency.to_owned(),
        }
    }

    /// A fresh case id.
    pub fn case() -> String {
        onedoor_case::CaseId::generate().to_string()
    }

    /// The front office hands case `case` (at `version`) to the agency.
    pub fn new_task(&self, case: &str, version: u64, instructions: &str) -> Item {
        let body = v1::case_event::Body::HandedOff(v1::HandedOff {
            instructions: instructions.to_owned(),
            due_at: Some(in_days(10)),
            documents: Vec::new(),
        });
        self.item(case, version, body, v1::InboxItemKind::NewTask)
    }

    /// The citizen withdrew case `case` while the agency held a task on it.
    pub fn withdrawn(&self, case: &str, version: u64) -> Item {
        let body = v1::case_event::Body::TaskClosed(v1::TaskClosed {
            resolution: v1::Resolution::Withdrawn.into(),
            note: "the citizen withdrew the application".to_owned(),
        });
        self.item(case, version, body, v1::InboxItemKind::CaseWithdrawn)
    }

    /// A new task whose text fields are as long as the bus allows, in Lao script (three bytes
    /// a letter), with a document reference at its limits too.
    pub fn oversized(&self, case: &str) -> Item {
        let mut item = self.new_task(case, 2, &lao(limits::INSTRUCTIONS_MAX_BYTES));
        item.item.citizen_ref = lao(limits::CITIZEN_REF_MAX_BYTES);
        if let Some(v1::case_event::Body::HandedOff(handed)) = item
            .item
            .event
            .as_mut()
            .and_then(|event| event.body.as_mut())
        {
            handed.documents.push(v1::DocumentRef {
                name: lao(limits::DOCUMENT_NAME_MAX_BYTES),
                sha256: "0".repeat(64),
                uri: format!(
                    "https://docs.example.la/{}",
                    "a".repeat(limits::DOCUMENT_URI_MAX_BYTES - 24)
                ),
                media_type: "application/pdf".to_owned(),
                size_bytes: u64::MAX,
            });
        }
        item
    }

    fn item(
        &self,
        case: &str,
        version: u64,
        body: v1::case_event::Body,
        kind: v1::InboxItemKind,
    ) -> Item {
        let event_id = onedoor_case::EventId::generate().to_string();
        let trace_id = hex(16);
        let span_id = hex(8);
        let event = v1::CaseEvent {
            event_id: event_id.clone(),
            case_id: case.to_owned(),
            case_version: version,
            occurred_at: Some(in_days(0)),
            from_agency: FRONT_OFFICE.to_owned(),
            to_agency: self.agency.clone(),
            actor: "onedoor-conformance".to_owned(),
            trace_id: trace_id.clone(),
            span_id: span_id.clone(),
            body: Some(body),
            ..Default::default()
        };
        Item {
            event_id,
            item: v1::InboxItem {
                event: Some(event),
                delivery_attempt: 1,
                stream_sequence: version,
                kind: kind.into(),
                service: SERVICE.to_owned(),
                citizen_ref: format!("CONFORMANCE-{version}"),
                traceparent: format!("00-{trace_id}-{span_id}-01"),
                ..Default::default()
            },
        }
    }
}

/// `bytes` bytes of Lao text (ກ is three bytes in UTF-8), padded with ASCII to the exact size.
pub(super) fn lao(bytes: usize) -> String {
    let mut text = "ກ".repeat(bytes / 3);
    text.push_str(&"x".repeat(bytes % 3));
    text
}

fn hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

fn in_days(days: i64) -> prost_types::Timestamp {
    let at = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    prost_types::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: 0,
    }
}
