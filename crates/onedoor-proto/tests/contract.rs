//! The v1 contract as compiled: checked through the descriptor set the crate
//! ships for reflection, so what ministry tooling sees is what is tested.

use std::collections::{BTreeMap, BTreeSet};

use onedoor_proto::FILE_DESCRIPTOR_SET;
use onedoor_proto::event::EVENT_KINDS;
use onedoor_proto::limits::*;
use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
    ServiceDescriptorProto,
};

const PACKAGE: &str = "onedoor.v1";

// Field numbers of descriptor.proto, used in SourceCodeInfo paths.
const FILE_MESSAGE_TYPE: i32 = 4;
const FILE_ENUM_TYPE: i32 = 5;
const FILE_SERVICE: i32 = 6;
const MESSAGE_FIELD: i32 = 2;
const MESSAGE_NESTED_TYPE: i32 = 3;
const MESSAGE_ENUM_TYPE: i32 = 4;
const MESSAGE_ONEOF_DECL: i32 = 8;
const ENUM_VALUE: i32 = 2;
const SERVICE_METHOD: i32 = 2;

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("FILE_DESCRIPTOR_SET decodes")
}

fn contract_files(set: &FileDescriptorSet) -> Vec<&FileDescriptorProto> {
    set.file
        .iter()
        .filter(|file| file.package() == PACKAGE)
        .collect()
}

fn service<'a>(set: &'a FileDescriptorSet, name: &str) -> &'a ServiceDescriptorProto {
    contract_files(set)
        .into_iter()
        .flat_map(|file| &file.service)
        .find(|service| service.name() == name)
        .unwrap_or_else(|| panic!("service {PACKAGE}.{name} is declared"))
}

fn message<'a>(set: &'a FileDescriptorSet, name: &str) -> &'a DescriptorProto {
    contract_files(set)
        .into_iter()
        .flat_map(|file| &file.message_type)
        .find(|message| message.name() == name)
        .unwrap_or_else(|| panic!("message {PACKAGE}.{name} is declared"))
}

fn field<'a>(message: &'a DescriptorProto, name: &str) -> &'a FieldDescriptorProto {
    message
        .field
        .iter()
        .find(|field| field.name() == name)
        .unwrap_or_else(|| panic!("{} has field {name}", message.name()))
}

/// An rpc's shape: (input type, output type, server streaming).
type Shape = (String, String, bool);

/// rpc name → its shape. No contract rpc streams from the client.
fn rpcs(service: &ServiceDescriptorProto) -> BTreeMap<&str, Shape> {
    service
        .method
        .iter()
        .map(|method| {
            assert!(
                !method.client_streaming(),
                "{} is not client streaming",
                method.name()
            );
            let shape = (
                method.input_type().to_owned(),
                method.output_type().to_owned(),
                method.server_streaming(),
            );
            (method.name(), shape)
        })
        .collect()
}

/// The shape of an rpc from `input` to `output` (unqualified message names).
fn shape(input: &str, output: &str, server_streaming: bool) -> Shape {
    (qualified(input), qualified(output), server_streaming)
}

fn qualified(name: &str) -> String {
    format!(".{PACKAGE}.{name}")
}

#[test]
fn agency_gateway_has_exactly_the_contract_rpcs() {
    let set = descriptor_set();
    let rpcs = rpcs(service(&set, "AgencyGateway"));
    let names: BTreeSet<&str> = rpcs.keys().copied().collect();
    let contract = BTreeSet::from([
        "OpenCase",
        "HandOff",
        "Accept",
        "Complete",
        "SendBack",
        "RequestInfo",
        "ResolveCase",
        "RecallTask",
        "Inbox",
        "Ack",
        "GetCase",
        "ListServices",
        "ListStuck",
        "Redeliver",
    ]);
    assert_eq!(names, contract);
}

#[test]
fn every_agency_gateway_write_takes_its_request_and_returns_a_receipt() {
    let set = descriptor_set();
    let rpcs = rpcs(service(&set, "AgencyGateway"));
    for write in [
        "OpenCase",
        "HandOff",
        "Accept",
        "Complete",
        "SendBack",
        "RequestInfo",
        "ResolveCase",
        "RecallTask",
    ] {
        let request = format!("{write}Request");
        assert_eq!(rpcs[write], shape(&request, "Receipt", false), "{write}");
    }
    assert_eq!(
        rpcs["Inbox"],
        shape("InboxRequest", "InboxItem", true),
        "Inbox is a server stream of InboxItem"
    );
    assert_eq!(rpcs["Ack"], shape("AckRequest", "AckResponse", false));
    assert_eq!(rpcs["GetCase"], shape("GetCaseRequest", "CaseView", false));
}

#[test]
fn case_tracker_has_exactly_the_contract_rpcs() {
    let set = descriptor_set();
    let rpcs = rpcs(service(&set, "CaseTracker"));
    let names: BTreeSet<&str> = rpcs.keys().copied().collect();
    assert_eq!(
        names,
        BTreeSet::from(["GetCase", "ListCases", "ListOffices", "WatchCase"])
    );

    assert_eq!(rpcs["GetCase"], shape("GetCaseRequest", "CaseView", false));
    assert_eq!(
        rpcs["ListCases"],
        shape("ListCasesRequest", "ListCasesResponse", false)
    );
    assert_eq!(
        rpcs["WatchCase"],
        shape("WatchCaseRequest", "WatchCaseResponse", true),
        "WatchCase is a server stream"
    );
    assert_eq!(
        rpcs["ListOffices"],
        shape("ListOfficesRequest", "ListOfficesResponse", false)
    );
}

#[test]
fn generated_services_carry_their_full_names() {
    use onedoor_proto::v1::{agency_gateway_server, case_tracker_server};
    assert_eq!(
        agency_gateway_server::SERVICE_NAME,
        "onedoor.v1.AgencyGateway"
    );
    assert_eq!(case_tracker_server::SERVICE_NAME, "onedoor.v1.CaseTracker");
}

#[test]
fn contract_messages_have_every_contract_field() {
    let contract: &[(&str, &[&str])] = &[
        (
            "OpenCaseRequest",
            &["service", "citizen_ref", "summary", "idempotency_key"],
        ),
        (
            "HandOffRequest",
            &["case_id", "to_agency", "instructions", "idempotency_key"],
        ),
        ("AcceptRequest", &["case_id", "idempotency_key"]),
        (
            "CompleteRequest",
            &["case_id", "outcome", "note", "idempotency_key"],
        ),
        ("SendBackRequest", &["case_id", "reason", "idempotency_key"]),
        (
            "RequestInfoRequest",
            &["case_id", "question", "idempotency_key"],
        ),
        (
            "ResolveCaseRequest",
            &["case_id", "resolution", "note", "idempotency_key"],
        ),
        (
            "Receipt",
            &[
                "event_id",
                "case_id",
                "trace_id",
                "case_version",
                "stream_sequence",
            ],
        ),
        ("InboxRequest", &[]),
        ("InboxItem", &["event", "delivery_attempt"]),
        ("AckRequest", &["event_ids"]),
        ("GetCaseRequest", &["case_id"]),
        (
            "CaseView",
            &[
                "case_id",
                "service",
                "status",
                "trace_id",
                "origin_agency",
                "open_tasks",
                "events",
            ],
        ),
        (
            "CaseEvent",
            &[
                "event_id",
                "case_id",
                "case_version",
                "occurred_at",
                "from_agency",
                "to_agency",
                "actor",
                "trace_id",
                "span_id",
                "prev_hash",
                "signature",
                "key_id",
            ],
        ),
    ];
    let set = descriptor_set();
    let mut missing = Vec::new();
    for (name, fields) in contract {
        let message = message(&set, name);
        for field in *fields {
            if !message.field.iter().any(|f| f.name() == *field) {
                missing.push(format!("{name}.{field}"));
            }
        }
    }
    assert!(missing.is_empty(), "missing contract fields: {missing:?}");
}

#[test]
fn contract_fields_have_the_contract_types() {
    let set = descriptor_set();
    let scalar = |message_name: &str, field_name: &str, expected: Type| {
        let field = field(message(&set, message_name), field_name);
        assert_eq!(field.r#type(), expected, "{message_name}.{field_name}");
        assert_ne!(
            field.label(),
            Label::Repeated,
            "{message_name}.{field_name}"
        );
    };
    let typed = |message_name: &str, field_name: &str, type_name: &str, label: Label| {
        let field = field(message(&set, message_name), field_name);
        assert_eq!(field.type_name(), type_name, "{message_name}.{field_name}");
        assert_eq!(field.label(), label, "{message_name}.{field_name}");
    };

    for id in ["event_id", "case_id", "from_agency", "to_agency", "actor"] {
        scalar("CaseEvent", id, Type::String);
    }
    scalar("CaseEvent", "trace_id", Type::String);
    scalar("CaseEvent", "span_id", Type::String);
    scalar("CaseEvent", "key_id", Type::String);
    scalar("CaseEvent", "case_version", Type::Uint64);
    scalar("CaseEvent", "prev_hash", Type::Bytes);
    scalar("CaseEvent", "signature", Type::Bytes);
    typed(
        "CaseEvent",
        "occurred_at",
        ".google.protobuf.Timestamp",
        Label::Optional,
    );
    scalar("Receipt", "case_version", Type::Uint64);
    scalar("Receipt", "stream_sequence", Type::Uint64);
    typed(
        "ResolveCaseRequest",
        "resolution",
        &qualified("Resolution"),
        Label::Optional,
    );
    typed(
        "InboxItem",
        "event",
        &qualified("CaseEvent"),
        Label::Optional,
    );
    let event_ids = field(message(&set, "AckRequest"), "event_ids");
    assert_eq!(event_ids.label(), Label::Repeated);
    typed(
        "CaseView",
        "events",
        &qualified("CaseEvent"),
        Label::Repeated,
    );
    typed(
        "CaseView",
        "status",
        &qualified("CaseStatus"),
        Label::Optional,
    );
}

#[test]
fn case_event_body_is_a_oneof_named_by_the_event_kinds() {
    let set = descriptor_set();
    let event = message(&set, "CaseEvent");
    let body = event
        .oneof_decl
        .iter()
        .position(|oneof| oneof.name() == "body")
        .expect("CaseEvent has oneof body") as i32;
    let mut members: Vec<&FieldDescriptorProto> = event
        .field
        .iter()
        .filter(|field| field.oneof_index == Some(body))
        .collect();
    members.sort_by_key(|field| field.number());
    let names: Vec<&str> = members.iter().map(|field| field.name()).collect();
    assert_eq!(names, EVENT_KINDS);
}

#[test]
fn signature_has_the_highest_field_number_in_case_event() {
    let set = descriptor_set();
    let event = message(&set, "CaseEvent");
    let highest = event
        .field
        .iter()
        .max_by_key(|field| field.number())
        .expect("CaseEvent has fields");
    assert_eq!(highest.name(), "signature");
}

#[test]
fn enums_start_at_an_unspecified_zero_and_prefix_their_values() {
    let set = descriptor_set();
    let enums: Vec<_> = contract_files(&set)
        .into_iter()
        .flat_map(|file| &file.enum_type)
        .collect();
    assert!(!enums.is_empty());
    for enumeration in enums {
        let prefix = screaming_snake(enumeration.name());
        let zero = &enumeration.value[0];
        assert_eq!(zero.number(), 0, "{}", enumeration.name());
        assert_eq!(zero.name(), format!("{prefix}_UNSPECIFIED"));
        for value in &enumeration.value {
            assert!(
                value.name().starts_with(&format!("{prefix}_")),
                "{} is prefixed {prefix}_",
                value.name()
            );
        }
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Every element a ministry developer reads in the `.proto` (or through
/// reflection) must explain itself.
#[test]
fn every_message_field_enum_value_service_and_rpc_has_a_leading_comment() {
    let set = descriptor_set();
    let files = contract_files(&set);
    assert!(files.len() >= 4, "the contract is split over several files");
    let mut undocumented = Vec::new();
    let mut elements = 0;
    for file in files {
        let comments = leading_comments(file);
        for (path, name) in documented_elements(file) {
            elements += 1;
            let documented = comments
                .get(&path)
                .is_some_and(|comment| !comment.trim().is_empty());
            if !documented {
                undocumented.push(format!("{}: {name}", file.name()));
            }
        }
    }
    assert!(elements > 100, "walked only {elements} elements");
    assert!(
        undocumented.is_empty(),
        "no leading comment on: {undocumented:#?}"
    );
}

fn leading_comments(file: &FileDescriptorProto) -> BTreeMap<Vec<i32>, String> {
    let info = file
        .source_code_info
        .as_ref()
        .unwrap_or_else(|| panic!("{} keeps its source info", file.name()));
    info.location
        .iter()
        .filter_map(|location| {
            let comment = location.leading_comments.clone()?;
            Some((location.path.clone(), comment))
        })
        .collect()
}

/// (SourceCodeInfo path, qualified name) of every message, field, oneof, enum,
/// enum value, service and rpc in `file`.
fn documented_elements(file: &FileDescriptorProto) -> Vec<(Vec<i32>, String)> {
    let mut out = Vec::new();
    for (i, message) in file.message_type.iter().enumerate() {
        walk_message(message, vec![FILE_MESSAGE_TYPE, i as i32], "", &mut out);
    }
    for (i, enumeration) in file.enum_type.iter().enumerate() {
        walk_enum(enumeration, vec![FILE_ENUM_TYPE, i as i32], "", &mut out);
    }
    for (i, service) in file.service.iter().enumerate() {
        let path = vec![FILE_SERVICE, i as i32];
        for (j, method) in service.method.iter().enumerate() {
            let mut method_path = path.clone();
            method_path.extend([SERVICE_METHOD, j as i32]);
            out.push((method_path, format!("{}.{}", service.name(), method.name())));
        }
        out.push((path, service.name().to_owned()));
    }
    out
}

fn walk_message(
    message: &DescriptorProto,
    path: Vec<i32>,
    parent: &str,
    out: &mut Vec<(Vec<i32>, String)>,
) {
    let name = format!("{parent}{}", message.name());
    let child = |kind: i32, index: usize| {
        let mut child = path.clone();
        child.extend([kind, index as i32]);
        child
    };
    for (i, field) in message.field.iter().enumerate() {
        out.push((child(MESSAGE_FIELD, i), format!("{name}.{}", field.name())));
    }
    for (i, oneof) in message.oneof_decl.iter().enumerate() {
        // proto3 `optional` makes a synthetic oneof with no source of its own.
        let synthetic = message
            .field
            .iter()
            .any(|field| field.oneof_index == Some(i as i32) && field.proto3_optional());
        if !synthetic {
            out.push((
                child(MESSAGE_ONEOF_DECL, i),
                format!("{name}.{}", oneof.name()),
            ));
        }
    }
    for (i, nested) in message.nested_type.iter().enumerate() {
        walk_message(
            nested,
            child(MESSAGE_NESTED_TYPE, i),
            &format!("{name}."),
            out,
        );
    }
    for (i, nested) in message.enum_type.iter().enumerate() {
        walk_enum(
            nested,
            child(MESSAGE_ENUM_TYPE, i),
            &format!("{name}."),
            out,
        );
    }
    out.push((path, name));
}

fn walk_enum(
    enumeration: &prost_types::EnumDescriptorProto,
    path: Vec<i32>,
    parent: &str,
    out: &mut Vec<(Vec<i32>, String)>,
) {
    let name = format!("{parent}{}", enumeration.name());
    for (i, value) in enumeration.value.iter().enumerate() {
        let mut value_path = path.clone();
        value_path.extend([ENUM_VALUE, i as i32]);
        out.push((value_path, format!("{name}.{}", value.name())));
    }
    out.push((path, name));
}

/// The limits in `onedoor_proto::limits` are the numbers the `.proto`
/// comments promise: each listed field's comment must state its constant.
#[test]
fn documented_limits_match_the_rust_constants() {
    let bytes = |n: usize| format!("{n} bytes");
    let count = |n: usize| format!("at most {n})");
    let table: Vec<(&str, &str, String)> = vec![
        ("OpenCaseRequest", "service", bytes(SERVICE_CODE_MAX_BYTES)),
        (
            "OpenCaseRequest",
            "citizen_ref",
            bytes(CITIZEN_REF_MAX_BYTES),
        ),
        ("OpenCaseRequest", "summary", bytes(SUMMARY_MAX_BYTES)),
        (
            "OpenCaseRequest",
            "idempotency_key",
            bytes(IDEMPOTENCY_KEY_MAX_BYTES),
        ),
        ("OpenCaseRequest", "actor", bytes(ACTOR_MAX_BYTES)),
        ("OpenCaseRequest", "documents", count(DOCUMENTS_MAX)),
        ("HandOffRequest", "to_agency", bytes(AGENCY_CODE_MAX_BYTES)),
        (
            "HandOffRequest",
            "instructions",
            bytes(INSTRUCTIONS_MAX_BYTES),
        ),
        (
            "HandOffRequest",
            "idempotency_key",
            bytes(IDEMPOTENCY_KEY_MAX_BYTES),
        ),
        ("HandOffRequest", "actor", bytes(ACTOR_MAX_BYTES)),
        ("HandOffRequest", "documents", count(DOCUMENTS_MAX)),
        (
            "HandOffRequest",
            "due_working_days",
            format!("1 to {DUE_WORKING_DAYS_MAX})"),
        ),
        (
            "AcceptRequest",
            "idempotency_key",
            bytes(IDEMPOTENCY_KEY_MAX_BYTES),
        ),
        ("AcceptRequest", "actor", bytes(ACTOR_MAX_BYTES)),
        ("CompleteRequest", "outcome", bytes(OUTCOME_MAX_BYTES)),
        ("CompleteRequest", "note", bytes(NOTE_MAX_BYTES)),
        (
            "CompleteRequest",
            "idempotency_key",
            bytes(IDEMPOTENCY_KEY_MAX_BYTES),
        ),
        ("CompleteRequest", "actor", bytes(ACTOR_MAX_BYTES)),
        ("CompleteRequest", "documents", count(DOCUMENTS_MAX)),
        ("SendBackRequest", "reason", bytes(REASON_MAX_BYTES)),
        (
            "SendBackRequest",
            "idempotency_key",
            bytes(IDEMPOTENCY_KEY_MAX_BYTES),
        ),
        ("SendBackRequest", "actor", bytes(ACTOR_MAX_BYTES)),
        ("RequestInfoRequest", "question", bytes(QUESTION_MAX_BYTES)),
        (
            "RequestInfoRequest",
            "idempotency_key",
            bytes(IDEMPOTENCY_KEY_MAX_BYTES),
        ),
        ("RequestInfoRequest", "actor", bytes(ACTOR_MAX_BYTES)),
        ("ResolveCaseRequest", "note", bytes(NOTE_MAX_BYTES)),
        (
            "ResolveCaseRequest",
            "idempotency_key",
            bytes(IDEMPOTENCY_KEY_MAX_BYTES),
        ),
        ("ResolveCaseRequest", "actor", bytes(ACTOR_MAX_BYTES)),
        (
            "RecallTaskRequest",
            "holder_agency",
            bytes(AGENCY_CODE_MAX_BYTES),
        ),
        ("RecallTaskRequest", "reason", bytes(REASON_MAX_BYTES)),
        (
            "RecallTaskRequest",
            "idempotency_key",
            bytes(IDEMPOTENCY_KEY_MAX_BYTES),
        ),
        ("RecallTaskRequest", "actor", bytes(ACTOR_MAX_BYTES)),
        ("CaseEvent", "from_agency", bytes(AGENCY_CODE_MAX_BYTES)),
        ("CaseEvent", "actor", bytes(ACTOR_MAX_BYTES)),
        (
            "CaseEvent",
            "idempotency_key",
            bytes(IDEMPOTENCY_KEY_MAX_BYTES),
        ),
        ("CaseEvent", "key_id", bytes(KEY_ID_MAX_BYTES)),
        (
            "CaseEvent",
            "prev_hash",
            format!("({PREV_HASH_BYTES} bytes)"),
        ),
        (
            "CaseEvent",
            "signature",
            format!("({SIGNATURE_BYTES} bytes)"),
        ),
        ("CaseEvent", "event_id", format!("{ULID_LEN} characters")),
        ("CaseEvent", "case_id", format!("{ULID_LEN} characters")),
        (
            "CaseEvent",
            "trace_id",
            format!("{TRACE_ID_HEX_LEN} lowercase hex"),
        ),
        (
            "CaseEvent",
            "span_id",
            format!("{SPAN_ID_HEX_LEN} lowercase hex"),
        ),
        ("CaseOpened", "service", bytes(SERVICE_CODE_MAX_BYTES)),
        ("CaseOpened", "citizen_ref", bytes(CITIZEN_REF_MAX_BYTES)),
        ("CaseOpened", "summary", bytes(SUMMARY_MAX_BYTES)),
        ("CaseOpened", "documents", count(DOCUMENTS_MAX)),
        ("HandedOff", "instructions", bytes(INSTRUCTIONS_MAX_BYTES)),
        ("HandedOff", "documents", count(DOCUMENTS_MAX)),
        ("TaskCompleted", "outcome", bytes(OUTCOME_MAX_BYTES)),
        ("TaskCompleted", "note", bytes(NOTE_MAX_BYTES)),
        ("TaskCompleted", "documents", count(DOCUMENTS_MAX)),
        ("TaskSentBack", "reason", bytes(REASON_MAX_BYTES)),
        ("TaskTakenBack", "reason", bytes(REASON_MAX_BYTES)),
        ("InfoRequested", "question", bytes(QUESTION_MAX_BYTES)),
        ("CaseResolved", "note", bytes(NOTE_MAX_BYTES)),
        ("TaskClosed", "note", bytes(NOTE_MAX_BYTES)),
        ("DocumentRef", "name", bytes(DOCUMENT_NAME_MAX_BYTES)),
        ("DocumentRef", "uri", bytes(DOCUMENT_URI_MAX_BYTES)),
        (
            "DocumentRef",
            "media_type",
            bytes(DOCUMENT_MEDIA_TYPE_MAX_BYTES),
        ),
        (
            "DocumentRef",
            "sha256",
            format!("{SHA256_HEX_LEN} lowercase hex"),
        ),
        ("CaseView", "citizen_ref", bytes(CITIZEN_REF_MAX_BYTES)),
        ("CaseView", "summary", bytes(SUMMARY_MAX_BYTES)),
        (
            "CaseView",
            "trace_id",
            format!("{TRACE_ID_HEX_LEN} lowercase hex"),
        ),
        ("Task", "instructions", bytes(INSTRUCTIONS_MAX_BYTES)),
        ("Task", "open_question", bytes(QUESTION_MAX_BYTES)),
        (
            "AckRequest",
            "event_ids",
            format!("(1 to {ACK_EVENT_IDS_MAX} ULIDs)"),
        ),
        (
            "ListCasesRequest",
            "page_size",
            format!(
                "0 means the default, {LIST_PAGE_SIZE_DEFAULT}; larger than {LIST_PAGE_SIZE_MAX} is treated as {LIST_PAGE_SIZE_MAX}"
            ),
        ),
        ("ListCasesRequest", "text", bytes(LIST_TEXT_MAX_BYTES)),
        (
            "ListCasesRequest",
            "holding_agency",
            bytes(AGENCY_CODE_MAX_BYTES),
        ),
        (
            "ListCasesRequest",
            "origin_agency",
            bytes(AGENCY_CODE_MAX_BYTES),
        ),
        ("ListCasesRequest", "service", bytes(SERVICE_CODE_MAX_BYTES)),
    ];

    let set = descriptor_set();
    let comments = field_comments(&set);
    let mut wrong = Vec::new();
    for (message_name, field_name, needle) in &table {
        let key = format!("{message_name}.{field_name}");
        let comment = comments
            .get(&key)
            .unwrap_or_else(|| panic!("{key} exists and has a comment"));
        // Comments wrap lines; compare with single spaces.
        let flat = comment.split_whitespace().collect::<Vec<_>>().join(" ");
        if !flat.contains(needle.as_str()) {
            wrong.push(format!("{key}: expected {needle:?} in {flat:?}"));
        }
    }
    assert!(wrong.is_empty(), "limits out of step: {wrong:#?}");

    // The service comment states how long idempotency keys are remembered.
    let gateway_comment = service_comment(&set, "AgencyGateway");
    let flat = gateway_comment
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains("remembered for as long as the case exists"),
        "AgencyGateway comment states the idempotency retention"
    );
}

/// "Message.field" → leading comment, for top-level messages.
fn field_comments(set: &FileDescriptorSet) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for file in contract_files(set) {
        let comments = leading_comments(file);
        for (i, message) in file.message_type.iter().enumerate() {
            for (j, field) in message.field.iter().enumerate() {
                let path = vec![FILE_MESSAGE_TYPE, i as i32, MESSAGE_FIELD, j as i32];
                if let Some(comment) = comments.get(&path) {
                    out.insert(
                        format!("{}.{}", message.name(), field.name()),
                        comment.clone(),
                    );
                }
            }
        }
    }
    out
}

fn service_comment(set: &FileDescriptorSet, name: &str) -> String {
    for file in contract_files(set) {
        let comments = leading_comments(file);
        for (i, service) in file.service.iter().enumerate() {
            if service.name() == name {
                return comments
                    .get(&vec![FILE_SERVICE, i as i32])
                    .cloned()
                    .unwrap_or_default();
            }
        }
    }
    panic!("service {name} is declared");
}

#[test]
fn descriptor_set_holds_the_imports_reflection_needs() {
    let set = descriptor_set();
    let names: BTreeSet<&str> = set.file.iter().map(|file| file.name()).collect();
    for file in &set.file {
        for dependency in &file.dependency {
            assert!(
                names.contains(dependency.as_str()),
                "{} imports {dependency}, which the set holds",
                file.name()
            );
        }
    }
    assert!(names.contains("google/protobuf/timestamp.proto"));
}
