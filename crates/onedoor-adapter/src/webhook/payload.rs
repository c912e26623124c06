//! The body of a webhook: the `InboxItem` in the proto3 JSON mapping (lowerCamelCase names,
//! enums by name, 64-bit integers as strings, timestamps in RFC 3339, default values left
//! out), the same shape the JSON face of the gateway gives. One function, so it can be swapped
//! for a shared transcoder without touching delivery.

use onedoor_proto::v1;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

use crate::error::AdapterError;

const INBOX_ITEM: &str = "onedoor.v1.InboxItem";

/// Turns inbox items into JSON with the descriptor compiled into `onedoor-proto`.
#[derive(Debug, Clone)]
pub struct JsonBody {
    descriptor: MessageDescriptor,
}

impl JsonBody {
    pub fn new() -> Result<Self, AdapterError> {
        let pool = DescriptorPool::decode(onedoor_proto::FILE_DESCRIPTOR_SET).map_err(|e| {
            AdapterError::Config(format!("webhook: reading the proto descriptors: {e}"))
        })?;
        let descriptor = pool.get_message_by_name(INBOX_ITEM).ok_or_else(|| {
            AdapterError::Config(format!("webhook: no {INBOX_ITEM} in the proto descriptors"))
        })?;
        Ok(JsonBody { descriptor })
    }

    /// Encodes then re-reads the item through its descriptor: one extra encode per delivery,
    /// negligible beside an HTTP round trip, and the output is the canonical mapping.
    pub fn encode(&self, item: &v1::InboxItem) -> Result<Vec<u8>, AdapterError> {
        let invalid = |why: String| AdapterError::InvalidArgument {
            field: "inbox item",
            why,
        };
        let dynamic =
            DynamicMessage::decode(self.descriptor.clone(), item.encode_to_vec().as_slice())
                .map_err(|e| invalid(format!("does not match its descriptor: {e}")))?;
        let mut body = Vec::new();
        let mut serializer = serde_json::Serializer::new(&mut body);
        dynamic
            .serialize_with_options(&mut serializer, &SerializeOptions::new())
            .map_err(|e| invalid(format!("cannot be written as JSON: {e}")))?;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The update keeps this test building while the item gains fields.
    #[allow(clippy::needless_update)]
    #[test]
    fn an_item_is_written_in_the_proto3_json_mapping() {
        let item = v1::InboxItem {
            event: Some(v1::CaseEvent {
                event_id: "01JDQ3Z6Y8K9M2N4P5R7S9T1V4".into(),
                case_version: 3,
                occurred_at: Some(prost_types::Timestamp {
                    seconds: 1_764_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            delivery_attempt: 2,
            stream_sequence: 42,
            ..Default::default()
        };
        let body = JsonBody::new()
            .expect("descriptor")
            .encode(&item)
            .expect("json");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("parses");
        assert_eq!(json["deliveryAttempt"], 2);
        assert_eq!(json["streamSequence"], "42", "64-bit integers are strings");
        assert_eq!(json["event"]["caseVersion"], "3");
        assert_eq!(json["event"]["eventId"], "01JDQ3Z6Y8K9M2N4P5R7S9T1V4");
        assert_eq!(json["event"]["occurredAt"], "2025-11-24T16:00:00Z");
        assert!(
            json["event"].get("fromAgency").is_none(),
            "defaults are left out"
        );
    }
}
