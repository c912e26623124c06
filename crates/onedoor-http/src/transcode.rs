//! JSON ⇄ protobuf by the contract's descriptors, following the proto3 JSON mapping
//! (`prost-reflect`): lowerCamel names (the proto names are accepted too), enums by name,
//! 64-bit integers as strings, Timestamps as RFC 3339, unknown fields refused. The generated
//! Rust types are untouched: the bytes in between are what a gRPC client would send.

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, SerializeOptions,
    ServiceDescriptor,
};

use crate::error::{CallError, HttpError};

/// The contract's descriptors (`onedoor_proto::FILE_DESCRIPTOR_SET`, comments included).
pub fn pool() -> Result<DescriptorPool, HttpError> {
    DescriptorPool::decode(onedoor_proto::FILE_DESCRIPTOR_SET)
        .map_err(|e| HttpError::Descriptors(e.to_string()))
}

/// The service named `full_name` (e.g. `onedoor.v1.AgencyGateway`).
pub fn service(full_name: &str) -> Result<ServiceDescriptor, HttpError> {
    pool()?
        .get_service_by_name(full_name)
        .ok_or_else(|| HttpError::UnknownService(full_name.to_owned()))
}

/// A JSON body as the protobuf encoding of `message`; an empty body is the empty message.
pub fn json_to_protobuf(message: &MessageDescriptor, body: &[u8]) -> Result<Vec<u8>, CallError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let mut json = serde_json::Deserializer::from_slice(body);
    let mut track = serde_path_to_error::Track::new();
    let decoded = DynamicMessage::deserialize_with_options(
        message.clone(),
        serde_path_to_error::Deserializer::new(&mut json, &mut track),
        &DeserializeOptions::new(),
    );
    let decoded = match decoded {
        Ok(decoded) => json.end().map(|()| decoded),
        Err(err) => Err(err),
    };
    decoded
        .map(|m| m.encode_to_vec())
        .map_err(|err| bad_json(&err, &track.path().to_string()))
}

fn bad_json(err: &serde_json::Error, path: &str) -> CallError {
    if !err.is_data() {
        return CallError::Malformed(err.to_string());
    }
    // serde_json appends " at line L column C": useful for a syntax error, noise beside a path.
    let why = err.to_string();
    let why = why
        .rsplit_once(" at line ")
        .map_or(why.as_str(), |(head, _)| head)
        .to_owned();
    let parent = (path != ".").then(|| path.to_owned());
    // An unknown field fails on its key, so the path stops at the object holding it.
    let Some(name) = unknown_field(&why) else {
        return CallError::BadValue { field: parent, why };
    };
    let field = match parent {
        Some(parent) => format!("{parent}.{name}"),
        None => name.to_owned(),
    };
    CallError::BadValue {
        field: Some(field),
        why: "unknown field: not in the contract, and unknown fields are refused (names are \
              lowerCamel, e.g. citizenRef, or the .proto's own citizen_ref)"
            .into(),
    }
}

/// The name in prost-reflect's "unrecognized field name 'x'".
fn unknown_field(why: &str) -> Option<&str> {
    let rest = why.strip_prefix("unrecognized field name '")?;
    rest.split_once('\'').map(|(name, _)| name)
}

/// The protobuf encoding of `message` as JSON, every field shown (zero values too, so a
/// client sees one shape; fields with presence appear only when set).
pub fn protobuf_to_json(message: &MessageDescriptor, bytes: &[u8]) -> Result<Vec<u8>, CallError> {
    let decoded = DynamicMessage::decode(message.clone(), bytes)
        .map_err(|e| CallError::Answer(e.to_string()))?;
    let mut out = serde_json::Serializer::new(Vec::new());
    decoded
        .serialize_with_options(
            &mut out,
            &SerializeOptions::new().skip_default_fields(false),
        )
        .map_err(|e| CallError::Answer(e.to_string()))?;
    Ok(out.into_inner())
}

/// The field a gRPC error message starts with, as its JSON path (`documents.name`), if that
/// first word names a field of `input`: the gRPC face names the field first
/// (`summary is 5000 bytes; the limit is 4096`, `case_id: ...`).
pub fn field_named_in(message: &str, input: &MessageDescriptor) -> Option<String> {
    let word = message.split([' ', ':', ';', ',']).next()?;
    let mut current = input.clone();
    let mut path = Vec::new();
    let mut parts = word.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = current.get_field_by_name(part)?;
        path.push(field.json_name().to_owned());
        if parts.peek().is_some() {
            let Kind::Message(inner) = field.kind() else {
                return None;
            };
            current = inner;
        }
    }
    Some(path.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(name: &str) -> MessageDescriptor {
        pool()
            .expect("descriptors")
            .get_message_by_name(name)
            .expect("message")
    }

    fn bad(name: &str, body: &str) -> (Option<String>, String) {
        match json_to_protobuf(&message(name), body.as_bytes()) {
            Err(CallError::BadValue { field, why }) => (field, why),
            other => panic!("expected a bad value, got {other:?}"),
        }
    }

    #[test]
    fn camel_and_proto_names_both_decode() -> Result<(), CallError> {
        let open = message("onedoor.v1.OpenCaseRequest");
        let camel = json_to_protobuf(&open, br#"{"citizenRef":"A-1","idempotencyKey":"k"}"#)?;
        let proto = json_to_protobuf(&open, br#"{"citizen_ref":"A-1","idempotency_key":"k"}"#)?;
        assert_eq!(camel, proto);
        Ok(())
    }

    #[test]
    fn an_unknown_field_is_named_with_its_path() {
        let (field, why) = bad(
            "onedoor.v1.OpenCaseRequest",
            r#"{"service":"x","colour":1}"#,
        );
        assert_eq!(field.as_deref(), Some("colour"));
        assert!(why.contains("unknown field"), "{why}");
        let (field, _) = bad(
            "onedoor.v1.OpenCaseRequest",
            r#"{"documents":[{"name":"a","colour":1}]}"#,
        );
        assert_eq!(field.as_deref(), Some("documents[0].colour"));
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_field() {
        let (field, why) = bad("onedoor.v1.OpenCaseRequest", r#"{"summary":12}"#);
        assert_eq!(field.as_deref(), Some("summary"), "{why}");
        let (field, _) = bad("onedoor.v1.ResolveCaseRequest", r#"{"resolution":"MAYBE"}"#);
        assert_eq!(field.as_deref(), Some("resolution"));
    }

    #[test]
    fn broken_json_is_malformed() {
        let open = message("onedoor.v1.OpenCaseRequest");
        assert!(matches!(
            json_to_protobuf(&open, b"{\"service\":"),
            Err(CallError::Malformed(_))
        ));
        assert!(matches!(
            json_to_protobuf(&open, b"{} trailing"),
            Err(CallError::Malformed(_))
        ));
    }

    #[test]
    fn the_first_word_of_a_grpc_message_names_a_field_only_if_it_is_one() {
        let open = message("onedoor.v1.OpenCaseRequest");
        let named = |m: &str| field_named_in(m, &open);
        assert_eq!(
            named("summary is 5000 bytes; the limit is 4096").as_deref(),
            Some("summary")
        );
        assert_eq!(
            named("citizen_ref must not be empty").as_deref(),
            Some("citizenRef")
        );
        assert_eq!(
            named("documents.name: is not valid UTF-8").as_deref(),
            Some("documents.name")
        );
        assert_eq!(named("case 01J does not exist"), None);
        assert_eq!(named("only a front office opens cases"), None);
    }

    #[test]
    fn responses_show_64_bit_integers_as_strings_and_zero_values() -> Result<(), CallError> {
        let receipt = message("onedoor.v1.Receipt");
        let bytes = onedoor_proto::v1::Receipt {
            case_version: 3,
            stream_sequence: 0,
            ..Default::default()
        }
        .encode_to_vec();
        let json: serde_json::Value =
            serde_json::from_slice(&protobuf_to_json(&receipt, &bytes)?).expect("json");
        assert_eq!(json["caseVersion"], "3");
        assert_eq!(json["streamSequence"], "0");
        assert!(json.get("occurredAt").is_none());
        Ok(())
    }
}
