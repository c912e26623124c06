//! The worker's calls as the proxy reads them, over gRPC (`/onedoor.v1.AgencyGateway/Ack`, a
//! length-prefixed protobuf message) or the JSON face (`POST /v1/Ack`, proto3 JSON).

use bytes::Bytes;
use onedoor_proto::v1;
use prost::Message as _;

const GRPC_PREFIX: &str = "/onedoor.v1.AgencyGateway/";
const JSON_PREFIX: &str = "/v1/";

/// One call's method and how it is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    pub grpc: bool,
}

impl Call {
    /// The call a request path names, if it is one of the gateway's.
    pub fn of(path: &str) -> Option<Call> {
        let (method, grpc) = match path.strip_prefix(GRPC_PREFIX) {
            Some(method) => (method, true),
            None => (path.strip_prefix(JSON_PREFIX)?, false),
        };
        Some(Call {
            method: method.to_owned(),
            grpc,
        })
    }

    /// The event ids of an `Ack` request.
    pub fn ack_ids(&self, body: &[u8]) -> Vec<String> {
        if self.grpc {
            message(body)
                .and_then(|m| v1::AckRequest::decode(m).ok())
                .map(|r| r.event_ids)
                .unwrap_or_default()
        } else {
            json(body)
                .and_then(|v| field(&v, "eventIds", "event_ids").cloned())
                .and_then(|ids| serde_json::from_value(ids).ok())
                .unwrap_or_default()
        }
    }

    /// The case and idempotency key of a write request (`Accept`, `Complete`, ...); `None`
    /// for a call that writes nothing or names no case.
    pub fn write(&self, body: &[u8]) -> Option<(String, String)> {
        if !self.grpc {
            let value = json(body)?;
            let text = |camel, snake| {
                field(&value, camel, snake)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            return match self.method.as_str() {
                "HandOff" | "Accept" | "Complete" | "SendBack" | "RequestInfo" | "ResolveCase"
                | "RecallTask" => Some((
                    text("caseId", "case_id")?,
                    text("idempotencyKey", "idempotency_key").unwrap_or_default(),
                )),
                _ => None,
            };
        }
        let body = message(body)?;
        let keyed = |case: String, key: String| Some((case, key));
        match self.method.as_str() {
            "HandOff" => v1::HandOffRequest::decode(body)
                .ok()
                .and_then(|r| keyed(r.case_id, r.idempotency_key)),
            "Accept" => v1::AcceptRequest::decode(body)
                .ok()
                .and_then(|r| keyed(r.case_id, r.idempotency_key)),
            "Complete" => v1::CompleteRequest::decode(body)
                .ok()
                .and_then(|r| keyed(r.case_id, r.idempotency_key)),
            "SendBack" => v1::SendBackRequest::decode(body)
                .ok()
                .and_then(|r| keyed(r.case_id, r.idempotency_key)),
            "RequestInfo" => v1::RequestInfoRequest::decode(body)
                .ok()
                .and_then(|r| keyed(r.case_id, r.idempotency_key)),
            "ResolveCase" => v1::ResolveCaseRequest::decode(body)
                .ok()
                .and_then(|r| keyed(r.case_id, r.idempotency_key)),
            "RecallTask" => v1::RecallTaskRequest::decode(body)
                .ok()
                .and_then(|r| keyed(r.case_id, r.idempotency_key)),
            _ => None,
        }
    }

    /// The body of a successful `Ack` answer acknowledging `ids`, as the adapter would send it.
    pub fn ack_answer(&self, ids: Vec<String>) -> Bytes {
        let answer = v1::AckResponse {
            acked_event_ids: ids,
            ..Default::default()
        };
        if self.grpc {
            Bytes::from(frame(&answer.encode_to_vec()))
        } else {
            let body = serde_json::json!({ "ackedEventIds": answer.acked_event_ids });
            Bytes::from(body.to_string())
        }
    }
}

/// The message of a one-message gRPC body; `None` when compressed or cut short.
pub fn message(body: &[u8]) -> Option<&[u8]> {
    let (&flag, rest) = body.split_first()?;
    let length = usize::try_from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)).ok()?;
    (flag == 0).then(|| rest.get(4..4 + length)).flatten()
}

/// `message` as one uncompressed gRPC frame.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let length = u32::try_from(message.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn json(body: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice(body).ok()
}

/// A field by its proto3 JSON name or its proto name (parsers accept both).
pub fn field<'a>(
    value: &'a serde_json::Value,
    camel: &str,
    snake: &str,
) -> Option<&'a serde_json::Value> {
    value.get(camel).or_else(|| value.get(snake))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_faces_name_the_same_call() {
        let grpc = Call::of("/onedoor.v1.AgencyGateway/Accept").expect("grpc path");
        let json = Call::of("/v1/Accept").expect("json path");
        assert_eq!((grpc.method.as_str(), grpc.grpc), ("Accept", true));
        assert_eq!((json.method.as_str(), json.grpc), ("Accept", false));
        assert_eq!(Call::of("/openapi.json"), None);
    }

    #[test]
    fn a_write_reads_its_case_and_key_in_either_encoding() {
        let request = v1::AcceptRequest {
            case_id: "C1".into(),
            idempotency_key: "k1".into(),
            ..Default::default()
        };
        let grpc = Call::of("/onedoor.v1.AgencyGateway/Accept").expect("path");
        let body = frame(&request.encode_to_vec());
        assert_eq!(grpc.write(&body), Some(("C1".into(), "k1".into())));
        let json = Call::of("/v1/Accept").expect("path");
        let body = br#"{"caseId": "C1", "idempotency_key": "k1"}"#;
        assert_eq!(json.write(body), Some(("C1".into(), "k1".into())));
        // Cut short, or not JSON: not a write the proxy can read, and no panic.
        assert_eq!(grpc.write(&frame(b"x")[..3]), None);
        assert_eq!(json.write(b"{"), None);
    }

    #[test]
    fn an_ack_answer_decodes_as_the_adapter_would_send_it() {
        let grpc = Call::of("/onedoor.v1.AgencyGateway/Ack").expect("path");
        let body = grpc.ack_answer(vec!["E1".into()]);
        let answer = message(&body).and_then(|m| v1::AckResponse::decode(m).ok());
        assert_eq!(
            answer.map(|a| a.acked_event_ids),
            Some(vec!["E1".to_owned()])
        );
        let json = Call::of("/v1/Ack").expect("path");
        assert_eq!(json.ack_ids(br#"{"eventIds": ["E1", "E2"]}"#), ["E1", "E2"]);
    }
}
