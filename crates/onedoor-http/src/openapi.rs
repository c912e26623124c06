//! The OpenAPI 3.1 document of the JSON face, generated from the contract's descriptors so it
//! cannot drift from what the server accepts: one `POST /v1/{Method}` per rpc, one schema per
//! message reachable from them (JSON names, enums by name, 64-bit integers as strings,
//! Timestamps as date-time), and the `.proto` comments as descriptions.

use std::collections::BTreeMap;

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, ServiceDescriptor};
use prost_types::FileDescriptorProto;
use serde_json::{Value, json};

use crate::error::{CODES, code_name};

const ERROR_SCHEMA: &str = "Error";

/// The document for `service`.
pub fn document(service: &ServiceDescriptor) -> Value {
    let mut schemas = Schemas::default();
    let mut paths = serde_json::Map::new();
    for method in service.methods() {
        let input = schemas.message_ref(&method.input());
        let output = schemas.message_ref(&method.output());
        let (media, success) = if method.is_server_streaming() {
            let about = format!(
                "Server-Sent Events: each `item` event's data is one {} as JSON; an `error` \
                 event (data: the Error shape) ends the stream; comment lines keep it open.",
                method.output().name()
            );
            (
                "text/event-stream",
                json!({"type": "string", "description": about}),
            )
        } else {
            ("application/json", output)
        };
        let operation = json!({
            "operationId": method.name(),
            "description": comments(service.parent_file_descriptor_proto(), method.path()),
            // An empty body is the empty request message, as the server takes it.
            "requestBody": {
                "required": false,
                "content": {"application/json": {"schema": input}},
            },
            "responses": {
                "200": {"description": "the answer", "content": {media: {"schema": success}}},
                "default": {
                    "description": "an error, with its gRPC code (docs/http-json.md has the HTTP status of each)",
                    "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{ERROR_SCHEMA}")}}},
                },
            },
        });
        paths.insert(
            format!("{}{}", crate::PATH_PREFIX, method.name()),
            json!({"post": operation}),
        );
    }
    schemas
        .defined
        .insert(ERROR_SCHEMA.to_owned(), error_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{} (HTTP/JSON)", service.full_name()),
            "version": service.package_name(),
            "description": comments(service.parent_file_descriptor_proto(), service.path()),
        },
        "paths": paths,
        "components": {
            "schemas": schemas.defined,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    })
}

/// Schemas defined so far, by full name.
#[derive(Default)]
struct Schemas {
    defined: BTreeMap<String, Value>,
}

impl Schemas {
    fn message_ref(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(inline) = well_known(message.full_name()) {
            return inline;
        }
        let name = message.full_name().to_owned();
        if !self.defined.contains_key(&name) {
            // Placeholder first: a message may refer to itself.
            self.defined.insert(name.clone(), Value::Null);
            let schema = self.message_schema(message);
            self.defined.insert(name.clone(), schema);
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    fn message_schema(&mut self, message: &MessageDescriptor) -> Value {
        let file = message.parent_file_descriptor_proto();
        let mut properties = serde_json::Map::new();
        for field in message.fields() {
            let mut schema = self.field_schema(&field);
            if let (Some(about), Some(object)) =
                (comments(file, field.path()), schema.as_object_mut())
            {
                object.insert("description".into(), Value::String(about));
            }
            properties.insert(field.json_name().to_owned(), schema);
        }
        json!({
            "type": "object",
            "description": comments(file, message.path()),
            "properties": properties,
            // Unknown fields are refused (INVALID_ARGUMENT).
            "additionalProperties": false,
        })
    }

    fn field_schema(&mut self, field: &FieldDescriptor) -> Value {
        if field.is_map()
            && let Kind::Message(entry) = field.kind()
        {
            let value = self.kind_schema(&entry.map_entry_value_field().kind());
            return json!({"type": "object", "additionalProperties": value});
        }
        let single = self.kind_schema(&field.kind());
        if field.is_list() {
            json!({"type": "array", "items": single})
        } else {
            single
        }
    }

    fn kind_schema(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Double | Kind::Float => json!({"type": "number"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "minimum": 0, "maximum": u32::MAX})
            }
            // The proto3 JSON mapping writes 64-bit integers as strings (JavaScript loses
            // precision past 2^53).
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"})
            }
            Kind::Uint64 | Kind::Fixed64 => {
                json!({"type": "string", "format": "uint64", "pattern": "^[0-9]+$"})
            }
            Kind::Bool => json!({"type": "boolean"}),
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
            Kind::Message(message) => self.message_ref(message),
            Kind::Enum(enumeration) => enum_schema(enumeration),
        }
    }
}

fn enum_schema(enumeration: &EnumDescriptor) -> Value {
    let names: Vec<String> = enumeration.values().map(|v| v.name().to_owned()).collect();
    json!({
        "type": "string",
        "enum": names,
        "description": comments(enumeration.parent_file_descriptor_proto(), enumeration.path()),
    })
}

/// The well-known types the contract uses, inline as their JSON mapping writes them.
fn well_known(full_name: &str) -> Option<Value> {
    match full_name {
        "google.protobuf.Timestamp" => Some(json!({"type": "string", "format": "date-time"})),
        "google.protobuf.Duration" => {
            Some(json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"}))
        }
        "google.protobuf.Empty" => Some(json!({"type": "object", "additionalProperties": false})),
        _ => None,
    }
}

fn error_schema() -> Value {
    let codes: Vec<&str> = CODES.into_iter().map(code_name).collect();
    json!({
        "type": "object",
        "description": "Every error, on every call: the gRPC code the gRPC face would give, its message, the request field it is about when there is one, and the W3C traceparent of the answer.",
        "required": ["code", "message", "traceparent"],
        "properties": {
            "code": {"type": "string", "enum": codes},
            "message": {"type": "string"},
            "field": {"type": "string", "description": "JSON path of the request field, e.g. `summary` or `documents[0].name`"},
            "traceparent": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"},
        },
        "additionalProperties": false,
    })
}

/// The leading comment of the element at `path` in `file`, as plain text.
fn comments(file: &FileDescriptorProto, path: &[i32]) -> Option<String> {
    let location = file
        .source_code_info
        .as_ref()?
        .location
        .iter()
        .find(|location| location.path == path)?;
    let text = location.leading_comments.as_deref()?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    Some(lines.join("\n").trim().to_owned()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway() -> Value {
        let service = crate::transcode::service("onedoor.v1.AgencyGateway").expect("service");
        document(&service)
    }

    #[test]
    fn every_rpc_has_a_path() {
        let document = gateway();
        let service = crate::transcode::service("onedoor.v1.AgencyGateway").expect("service");
        for method in service.methods() {
            let path = format!("/v1/{}", method.name());
            assert!(document["paths"][&path]["post"].is_object(), "{path}");
        }
    }

    #[test]
    fn the_json_mapping_shows_in_the_schemas() {
        let schemas = &gateway()["components"]["schemas"];
        let receipt = &schemas["onedoor.v1.Receipt"]["properties"];
        assert_eq!(receipt["caseVersion"]["type"], "string");
        assert_eq!(receipt["occurredAt"]["format"], "date-time");
        assert!(
            receipt["traceId"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("W3C trace id"))
        );
        let resolve = &schemas["onedoor.v1.ResolveCaseRequest"]["properties"];
        assert!(
            resolve["resolution"]["enum"]
                .as_array()
                .is_some_and(|values| values.iter().any(|v| v == "RESOLUTION_APPROVED"))
        );
    }
}
