//! Bad input on every `AgencyGateway` rpc gets the documented status, a message a ministry
//! developer can act on, and changes nothing (docs/architecture.md (Rules every part keeps),
//! "Bad input gets a clear error and changes nothing").
//!
//! One table: each row is one request with exactly one thing wrong, sent through a real
//! adapter, then the bus is checked for not having moved (stream messages and last sequence,
//! every fixture case's version, MOIC's inbox consumer).

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use onedoor_proto::limits;
use onedoor_proto::v1;
use onedoor_proto::v1::agency_gateway_client::AgencyGatewayClient;
use onedoor_testkit::{FRONT, TestBus, key, next_inbox_item, token_for};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

const LAO: &str = "ກ"; // 3 bytes in UTF-8

/// `limit - 1` ASCII bytes, then one Lao character: `limit` characters, but `limit + 2` bytes,
/// as the character starts inside the limit and ends past it. Only a byte count refuses it.
fn lao_crossing(limit: usize) -> String {
    let text = format!("{}{LAO}", "x".repeat(limit - 1));
    assert_eq!(text.len(), limit + 2);
    assert!(text.chars().count() <= limit, "crosses in bytes only");
    text
}

/// What a call presents in `authorization`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Credential {
    /// `Bearer <the calling agency's token>`.
    Own,
    /// No `authorization` header at all.
    Missing,
    /// `Bearer <a token nobody has>`.
    Wrong,
    /// `Bearer <another agency's real token>`.
    Of(&'static str),
    /// The agency's own token under another scheme: `Basic <token>`.
    OtherScheme,
}

impl Credential {
    fn header(self, agency: &str) -> Option<String> {
        match self {
            Credential::Own => Some(format!("Bearer {}", token_for(agency))),
            Credential::Missing => None,
            Credential::Wrong => Some("Bearer not-the-token-of-anyone-0123456789".into()),
            Credential::Of(other) => Some(format!("Bearer {}", token_for(other))),
            Credential::OtherScheme => Some(format!("Basic {}", token_for(agency))),
        }
    }
}

#[derive(Clone)]
struct Authorization(Option<String>);

impl tonic::service::Interceptor for Authorization {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            let value = value
                .parse()
                .map_err(|_| Status::internal("test header is not ASCII"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

type Gateway = AgencyGatewayClient<InterceptedService<Channel, Authorization>>;

/// One request to one rpc.
#[derive(Debug)]
enum Call {
    OpenCase(v1::OpenCaseRequest),
    HandOff(v1::HandOffRequest),
    Accept(v1::AcceptRequest),
    Complete(v1::CompleteRequest),
    SendBack(v1::SendBackRequest),
    RequestInfo(v1::RequestInfoRequest),
    ResolveCase(v1::ResolveCaseRequest),
    RecallTask(v1::RecallTaskRequest),
    Inbox(v1::InboxRequest),
    Ack(v1::AckRequest),
    GetCase(v1::GetCaseRequest),
}

const EVERY_RPC: [&str; 11] = [
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
];

impl Call {
    fn rpc(&self) -> &'static str {
        match self {
            Call::OpenCase(_) => "OpenCase",
            Call::HandOff(_) => "HandOff",
            Call::Accept(_) => "Accept",
            Call::Complete(_) => "Complete",
            Call::SendBack(_) => "SendBack",
            Call::RequestInfo(_) => "RequestInfo",
            Call::ResolveCase(_) => "ResolveCase",
            Call::RecallTask(_) => "RecallTask",
            Call::Inbox(_) => "Inbox",
            Call::Ack(_) => "Ack",
            Call::GetCase(_) => "GetCase",
        }
    }

    async fn send(self, client: &mut Gateway) -> Result<(), Status> {
        match self {
            Call::OpenCase(r) => client.open_case(r).await.map(drop),
            Call::HandOff(r) => client.hand_off(r).await.map(drop),
            Call::Accept(r) => client.accept(r).await.map(drop),
            Call::Complete(r) => client.complete(r).await.map(drop),
            Call::SendBack(r) => client.send_back(r).await.map(drop),
            Call::RequestInfo(r) => client.request_info(r).await.map(drop),
            Call::ResolveCase(r) => client.resolve_case(r).await.map(drop),
            Call::RecallTask(r) => client.recall_task(r).await.map(drop),
            Call::Inbox(r) => client.inbox(r).await.map(drop),
            Call::Ack(r) => client.ack(r).await.map(drop),
            Call::GetCase(r) => client.get_case(r).await.map(drop),
        }
    }
}

// Valid requests; each row changes one thing.

fn open_case(change: impl FnOnce(&mut v1::OpenCaseRequest)) -> Call {
    let mut r = v1::OpenCaseRequest {
        service: "enterprise-registration".into(),
        citizen_ref: "R-2026-0001".into(),
        summary: "ຈົດທະບຽນຮ້ານຄ້າ".into(),
        idempotency_key: key(),
        actor: "clerk-1".into(),
        documents: vec![],
    };
    change(&mut r);
    Call::OpenCase(r)
}

fn hand_off(case_id: &str, change: impl FnOnce(&mut v1::HandOffRequest)) -> Call {
    let mut r = v1::HandOffRequest {
        case_id: case_id.into(),
        to_agency: "MOIC".into(),
        instructions: "please review".into(),
        idempotency_key: key(),
        actor: "clerk-1".into(),
        ..Default::default()
    };
    change(&mut r);
    Call::HandOff(r)
}

fn accept(case_id: &str, change: impl FnOnce(&mut v1::AcceptRequest)) -> Call {
    let mut r = v1::AcceptRequest {
        case_id: case_id.into(),
        idempotency_key: key(),
        actor: "officer".into(),
    };
    change(&mut r);
    Call::Accept(r)
}

fn complete(case_id: &str, change: impl FnOnce(&mut v1::CompleteRequest)) -> Call {
    let mut r = v1::CompleteRequest {
        case_id: case_id.into(),
        outcome: "approved".into(),
        note: "ອະນຸມັດແລ້ວ".into(),
        idempotency_key: key(),
        ..Default::default()
    };
    change(&mut r);
    Call::Complete(r)
}

fn send_back(case_id: &str, change: impl FnOnce(&mut v1::SendBackRequest)) -> Call {
    let mut r = v1::SendBackRequest {
        case_id: case_id.into(),
        reason: "missing papers: site plan".into(),
        idempotency_key: key(),
        ..Default::default()
    };
    change(&mut r);
    Call::SendBack(r)
}

fn request_info(case_id: &str, change: impl FnOnce(&mut v1::RequestInfoRequest)) -> Call {
    let mut r = v1::RequestInfoRequest {
        case_id: case_id.into(),
        question: "which district is the shop in?".into(),
        idempotency_key: key(),
        ..Default::default()
    };
    change(&mut r);
    Call::RequestInfo(r)
}

fn resolve(case_id: &str, change: impl FnOnce(&mut v1::ResolveCaseRequest)) -> Call {
    let mut r = v1::ResolveCaseRequest {
        case_id: case_id.into(),
        resolution: v1::Resolution::Withdrawn.into(),
        note: "the citizen withdrew".into(),
        idempotency_key: key(),
        ..Default::default()
    };
    change(&mut r);
    Call::ResolveCase(r)
}

fn recall(case_id: &str, change: impl FnOnce(&mut v1::RecallTaskRequest)) -> Call {
    let mut r = v1::RecallTaskRequest {
        case_id: case_id.into(),
        holder_agency: "MOIC".into(),
        reason: "sent to the wrong ministry".into(),
        idempotency_key: key(),
        ..Default::default()
    };
    change(&mut r);
    Call::RecallTask(r)
}

fn get_case(case_id: &str) -> Call {
    Call::GetCase(v1::GetCaseRequest {
        case_id: case_id.into(),
    })
}

fn ack(ids: &[&str]) -> Call {
    Call::Ack(v1::AckRequest {
        event_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
    })
}

fn inbox() -> Call {
    Call::Inbox(v1::InboxRequest { max_in_flight: 1 })
}

fn documents(n: usize) -> Vec<v1::DocumentRef> {
    (0..n)
        .map(|i| v1::DocumentRef {
            name: format!("page-{i}.pdf"),
            sha256: "a".repeat(64),
            uri: format!("https://docs.moic.gov.la/{i}"),
            media_type: "application/pdf".into(),
            size_bytes: 1000,
        })
        .collect()
}

/// One bad request: who sends it, with which credential, and what must come back.
struct Row {
    what: String,
    by: &'static str,
    credential: Credential,
    call: Call,
    code: Code,
    says: String,
}

fn row(what: impl Into<String>, by: &'static str, call: Call, code: Code, says: &str) -> Row {
    Row {
        what: what.into(),
        by,
        credential: Credential::Own,
        call,
        code,
        says: says.to_owned(),
    }
}

fn unauthenticated(what: &str, by: &'static str, credential: Credential, call: Call) -> Row {
    Row {
        what: what.into(),
        by,
        credential,
        call,
        code: Code::Unauthenticated,
        // Names the agency served, the same whether or not the token is valid elsewhere.
        says: format!("this adapter serves {by}; the token is missing or not one of {by}'s"),
    }
}

/// Characters that rewrite a terminal or reorder text: NUL, ESC (ANSI), CR, a C1 control, the
/// right-to-left override and a right-to-left isolate.
const HOSTILE: [char; 6] = ['\0', '\x1b', '\r', '\u{9b}', '\u{202e}', '\u{2067}'];

/// Shown as in the refusal message.
fn shown(c: char) -> String {
    match c {
        '\r' => "\\r".into(),
        '\0'..='\u{7f}' => format!("\\x{:02x}", u32::from(c)),
        _ => format!("\\u{{{:x}}}", u32::from(c)),
    }
}

/// Every identifier and free-text field of every write rpc, once per hostile character, each
/// answered INVALID_ARGUMENT naming the field and the character.
#[rustfmt::skip] // one row a line reads as a table
fn hostile_rows(c: &Cases) -> Vec<Row> {
    let (opened, pending, accepted) = (&c.opened[..], &c.pending[..], &c.accepted[..]);
    let mut rows = Vec::new();
    for bad in HOSTILE {
        let text = format!("abc{bad}def");
        let says = |field: &str| format!("{field} holds the control character {} at character 3", shown(bad));
        let mut add = |what: &str, by: &'static str, call: Call, field: &str| rows.push(row(format!("{what} holding {bad:?}"), by, call, Code::InvalidArgument, &says(field)));
        let t = text.clone();
        add("citizen_ref", FRONT, open_case(|r| r.citizen_ref = t.clone()), "citizen_ref");
        add("summary", FRONT, open_case(|r| r.summary = t.clone()), "summary");
        add("idempotency_key", FRONT, open_case(|r| r.idempotency_key = t.clone()), "idempotency_key:");
        add("actor", FRONT, open_case(|r| r.actor = t.clone()), "actor");
        add("document name", FRONT, open_case(|r| { r.documents = documents(1); r.documents[0].name = t.clone(); }), "name");
        add("document uri", FRONT, open_case(|r| { r.documents = documents(1); r.documents[0].uri = t.clone(); }), "uri");
        add("document media_type", FRONT, open_case(|r| { r.documents = documents(1); r.documents[0].media_type = t.clone(); }), "media_type");
        add("instructions", FRONT, hand_off(opened, |r| r.instructions = t.clone()), "instructions");
        add("actor", FRONT, hand_off(opened, |r| r.actor = t.clone()), "actor");
        add("idempotency_key", FRONT, hand_off(opened, |r| r.idempotency_key = t.clone()), "idempotency_key:");
        add("actor", "MOIC", accept(pending, |r| r.actor = t.clone()), "actor");
        add("idempotency_key", "MOIC", accept(pending, |r| r.idempotency_key = t.clone()), "idempotency_key:");
        add("outcome", "MOIC", complete(accepted, |r| r.outcome = t.clone()), "outcome");
        add("note", "MOIC", complete(accepted, |r| r.note = t.clone()), "note");
        add("actor", "MOIC", complete(accepted, |r| r.actor = t.clone()), "actor");
        add("document name", "MOIC", complete(accepted, |r| { r.documents = documents(1); r.documents[0].name = t.clone(); }), "name");
        add("reason", "MOIC", send_back(pending, |r| r.reason = t.clone()), "reason");
        add("actor", "MOIC", send_back(pending, |r| r.actor = t.clone()), "actor");
        add("question", "MOIC", request_info(accepted, |r| r.question = t.clone()), "question");
        add("actor", "MOIC", request_info(accepted, |r| r.actor = t.clone()), "actor");
        add("note", FRONT, resolve(opened, |r| r.note = t.clone()), "note");
        add("actor", FRONT, resolve(opened, |r| r.actor = t.clone()), "actor");
        add("idempotency_key", FRONT, resolve(opened, |r| r.idempotency_key = t.clone()), "idempotency_key:");
        add("reason", FRONT, recall(pending, |r| r.reason = t.clone()), "reason");
        add("actor", FRONT, recall(pending, |r| r.actor = t.clone()), "actor");
    }
    rows
}

/// Cases in the states the rows need, all opened by the front office.
struct Cases {
    /// Opened, nothing else (version 1).
    opened: String,
    /// Handed to MOIC, not accepted (version 2).
    pending: String,
    /// Handed to MOIC and accepted (version 3).
    accepted: String,
    /// Handed to MOIC, then withdrawn (version 3).
    resolved: String,
    /// A well-formed id no case has.
    missing: String,
}

/// Everything a bad request could have changed.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    messages: u64,
    last_sequence: u64,
    versions: Vec<u64>,
    moic_ack_pending: usize,
    moic_ack_floor: u64,
}

async fn snapshot(
    js: &async_nats::jetstream::Context,
    front: &Gateway,
    cases: &Cases,
) -> anyhow::Result<Snapshot> {
    let mut front = front.clone();
    let mut stream = js.get_stream(onedoor_bus::STREAM_NAME).await?;
    let state = stream.info().await?.state.clone();
    let mut versions = Vec::new();
    for case in [
        &cases.opened,
        &cases.pending,
        &cases.accepted,
        &cases.resolved,
    ] {
        let view = front
            .get_case(v1::GetCaseRequest {
                case_id: case.clone(),
            })
            .await?
            .into_inner();
        versions.push(view.events.last().map_or(0, |e| e.case_version));
    }
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer("inbox-MOIC")
        .await
        .map_err(|e| anyhow::anyhow!("inbox-MOIC: {e}"))?;
    let inbox = consumer.info().await?;
    Ok(Snapshot {
        messages: state.messages,
        last_sequence: state.last_sequence,
        versions,
        moic_ack_pending: inbox.num_ack_pending,
        moic_ack_floor: inbox.ack_floor.stream_sequence,
    })
}

#[rustfmt::skip] // one row a line reads as a table
fn rows(c: &Cases, held: &str) -> Vec<Row> {
    use Code::{
        FailedPrecondition as Precondition, InvalidArgument as Invalid, NotFound,
        PermissionDenied as Denied,
    };
    let (opened, pending, accepted, resolved, missing) =
        (&c.opened[..], &c.pending[..], &c.accepted[..], &c.resolved[..], &c.missing[..]);
    let lower = opened.to_lowercase();
    let no_ulid = "is not a ULID (26 characters of Crockford base32";
    let key_required = "idempotency_key: is required: send a unique key";
    let key_long = "idempotency_key: is 129 bytes; the limit is 128";
    let not_found = format!("case {missing} does not exist");
    let is_resolved = format!("case {resolved} is resolved; nothing more can happen to it");
    let mof_no_task = |action: &str, case: &str| format!("MOF holds no open task on case {case}, so it cannot {action}");
    let not_accepted = format!("MOIC's task on case {pending} is not accepted yet; call Accept first");
    let text_long = |field: &str, max: usize, found: usize| format!("{field} is {found} bytes; the limit is {max}");
    let bad_char = |field: &str, code: &str, found: char, position: usize| {
        format!("{field}: code {code:?} has {found:?} at position {position}")
    };
    let max_text = limits::SUMMARY_MAX_BYTES;

    vec![
        // OpenCase (front office).
        row("unknown service", FRONT, open_case(|r| r.service = "no-such-service".into()), Invalid, "service no-such-service is not in the catalogue"),
        row("empty service", FRONT, open_case(|r| r.service.clear()), Invalid, "service: is required (a catalogue code such as enterprise-registration)"),
        row("service with '.'", FRONT, open_case(|r| r.service = "enterprise.registration".into()), Invalid, &bad_char("service", "enterprise.registration", '.', 10)),
        row("service with '*'", FRONT, open_case(|r| r.service = "*".into()), Invalid, &bad_char("service", "*", '*', 0)),
        row("service with '>'", FRONT, open_case(|r| r.service = "enterprise-registration>".into()), Invalid, &bad_char("service", "enterprise-registration>", '>', 23)),
        row("service with a space", FRONT, open_case(|r| r.service = "enterprise registration".into()), Invalid, &bad_char("service", "enterprise registration", ' ', 10)),
        row("service in upper case", FRONT, open_case(|r| r.service = "ENTERPRISE-REGISTRATION".into()), Invalid, "only a-z, 0-9 and '-' are allowed"),
        row("service of 65 bytes", FRONT, open_case(|r| r.service = "s".repeat(65)), Invalid, "is longer than 64 characters"),
        row("empty citizen_ref", FRONT, open_case(|r| r.citizen_ref.clear()), Invalid, "citizen_ref must not be empty"),
        row("blank citizen_ref", FRONT, open_case(|r| r.citizen_ref = "   ".into()), Invalid, "citizen_ref must not be empty"),
        row("citizen_ref over 128 bytes in Lao", FRONT, open_case(|r| r.citizen_ref = LAO.repeat(43)), Invalid, &text_long("citizen_ref", 128, 129)),
        row("summary one byte over", FRONT, open_case(|r| r.summary = "x".repeat(max_text + 1)), Invalid, &text_long("summary", max_text, max_text + 1)),
        row("summary where a Lao character crosses the limit", FRONT, open_case(|r| r.summary = lao_crossing(max_text)), Invalid, &text_long("summary", max_text, max_text + 2)),
        row("summary of 1366 Lao characters", FRONT, open_case(|r| r.summary = LAO.repeat(1366)), Invalid, &text_long("summary", max_text, 4098)),
        row("no idempotency_key", FRONT, open_case(|r| r.idempotency_key.clear()), Invalid, key_required),
        row("idempotency_key where a Lao character crosses 128 bytes", FRONT, open_case(|r| r.idempotency_key = format!("{}{LAO}", "k".repeat(126))), Invalid, key_long),
        row("actor over 128 bytes", FRONT, open_case(|r| r.actor = "a".repeat(129)), Invalid, &text_long("actor", 128, 129)),
        row("33 documents", FRONT, open_case(|r| r.documents = documents(33)), Invalid, "documents has 33 entries; the limit is 32"),
        row("a document with a bad hash", FRONT, open_case(|r| { r.documents = documents(1); r.documents[0].sha256 = "A".repeat(64); }), Invalid, "document \"page-0.pdf\" in documents: sha256 must be 64 lower-case hex characters"),
        row("a ministry opens a case", "MOIC", open_case(|_| {}), Denied, "only a front office opens cases; MOIC is a ministry"),
        unauthenticated("no token", FRONT, Credential::Missing, open_case(|_| {})),
        unauthenticated("a wrong token", FRONT, Credential::Wrong, open_case(|_| {})),
        unauthenticated("MOIC's token at the front office's adapter", FRONT, Credential::Of("MOIC"), open_case(|_| {})),

        // HandOff.
        row("empty case_id", FRONT, hand_off("", |_| {}), Invalid, "case_id: is required"),
        row("malformed case_id", FRONT, hand_off("not-a-ulid", |_| {}), Invalid, &format!("case_id: case id \"not-a-ulid\" {no_ulid}")),
        row("case_id in lower case", FRONT, hand_off(&lower, |_| {}), Invalid, no_ulid),
        row("case_id with subject wildcards", FRONT, hand_off("01JD8X3Q6V9K2M4N5P7R8S9T.>", |_| {}), Invalid, no_ulid),
        row("unknown case", FRONT, hand_off(missing, |_| {}), NotFound, &not_found),
        row("empty to_agency", FRONT, hand_off(opened, |r| r.to_agency.clear()), Invalid, "to_agency: is required (an agency code such as MOF)"),
        row("unknown to_agency", FRONT, hand_off(opened, |r| r.to_agency = "MOXX".into()), Invalid, "agency MOXX is not in the registry"),
        row("to_agency with '.'", FRONT, hand_off(opened, |r| r.to_agency = "MO.IC".into()), Invalid, &bad_char("to_agency", "MO.IC", '.', 2)),
        row("to_agency with '*'", FRONT, hand_off(opened, |r| r.to_agency = "MOIC*".into()), Invalid, &bad_char("to_agency", "MOIC*", '*', 4)),
        row("to_agency '>'", FRONT, hand_off(opened, |r| r.to_agency = ">".into()), Invalid, &bad_char("to_agency", ">", '>', 0)),
        row("to_agency with a space", FRONT, hand_off(opened, |r| r.to_agency = "MOIC ".into()), Invalid, &bad_char("to_agency", "MOIC ", ' ', 4)),
        row("to_agency in lower case", FRONT, hand_off(opened, |r| r.to_agency = "moic".into()), Invalid, "only A-Z, 0-9 and '-' are allowed"),
        row("to_agency of 65 bytes", FRONT, hand_off(opened, |r| r.to_agency = "M".repeat(65)), Invalid, "is longer than 64 characters"),
        row("to oneself", FRONT, hand_off(opened, |r| r.to_agency = FRONT.into()), Invalid, "an agency cannot hand a case to itself"),
        row("to another front office", FRONT, hand_off(opened, |r| r.to_agency = "ODSC-CPS-PAKSE".into()), Invalid, "ODSC-CPS-PAKSE is a front office; hand-offs go to ministries"),
        row("to a merged agency", FRONT, hand_off(opened, |r| r.to_agency = "MEM".into()), Invalid, "agency MEM was merged into MOIC; hand off to MOIC"),
        row("instructions where a Lao character crosses the limit", FRONT, hand_off(opened, |r| r.instructions = lao_crossing(limits::INSTRUCTIONS_MAX_BYTES)), Invalid, &text_long("instructions", 4096, 4098)),
        row("due_working_days 0", FRONT, hand_off(opened, |r| r.due_working_days = Some(0)), Invalid, "due_working_days must be 1..=90, found 0"),
        row("due_working_days 91", FRONT, hand_off(opened, |r| r.due_working_days = Some(91)), Invalid, "due_working_days must be 1..=90, found 91"),
        row("no idempotency_key", FRONT, hand_off(opened, |r| r.idempotency_key.clear()), Invalid, key_required),
        row("to an agency already holding a task", FRONT, hand_off(accepted, |_| {}), Precondition, &format!("MOIC already holds an open task on case {accepted}")),
        row("on a resolved case", FRONT, hand_off(resolved, |r| r.to_agency = "MOF".into()), Precondition, &is_resolved),
        row("hand on before accepting", "MOIC", hand_off(pending, |r| r.to_agency = "MOF".into()), Precondition, &not_accepted),
        row("by an agency with no task", "MOF", hand_off(opened, |r| r.to_agency = "MOPS".into()), Denied, &mof_no_task("hand on", opened)),
        unauthenticated("no token", FRONT, Credential::Missing, hand_off(opened, |_| {})),
        unauthenticated("the token under the Basic scheme", FRONT, Credential::OtherScheme, hand_off(opened, |_| {})),

        // Accept.
        row("malformed case_id", "MOIC", accept("01JD8X3Q6V9K2M4N5P7R8S9T0*", |_| {}), Invalid, no_ulid),
        row("unknown case", "MOIC", accept(missing, |_| {}), NotFound, &not_found),
        row("no idempotency_key", "MOIC", accept(pending, |r| r.idempotency_key.clear()), Invalid, key_required),
        row("idempotency_key of 129 bytes", "MOIC", accept(pending, |r| r.idempotency_key = "k".repeat(129)), Invalid, key_long),
        row("actor where a Lao character crosses the limit", "MOIC", accept(pending, |r| r.actor = lao_crossing(limits::ACTOR_MAX_BYTES)), Invalid, &text_long("actor", 128, 130)),
        row("accept twice", "MOIC", accept(accepted, |_| {}), Precondition, &format!("MOIC already accepted its task on case {accepted}")),
        row("on a resolved case", "MOIC", accept(resolved, |_| {}), Precondition, &is_resolved),
        row("by an agency with no task", "MOF", accept(pending, |_| {}), Denied, &mof_no_task("accept", pending)),
        row("by the front office", FRONT, accept(opened, |_| {}), Denied, &format!("{FRONT} holds no open task on case {opened}, so it cannot accept")),
        unauthenticated("MOF's token at MOIC's adapter", "MOIC", Credential::Of("MOF"), accept(pending, |_| {})),

        // Complete.
        row("before Accept", "MOIC", complete(pending, |_| {}), Precondition, &not_accepted),
        row("empty outcome", "MOIC", complete(accepted, |r| r.outcome.clear()), Invalid, "outcome must not be empty"),
        row("blank outcome", "MOIC", complete(accepted, |r| r.outcome = " \t ".into()), Invalid, "outcome must not be empty"),
        row("outcome where a Lao character crosses 256 bytes", "MOIC", complete(accepted, |r| r.outcome = lao_crossing(limits::OUTCOME_MAX_BYTES)), Invalid, &text_long("outcome", 256, 258)),
        row("note one byte over", "MOIC", complete(accepted, |r| r.note = "n".repeat(limits::NOTE_MAX_BYTES + 1)), Invalid, &text_long("note", 4096, 4097)),
        row("33 documents", "MOIC", complete(accepted, |r| r.documents = documents(33)), Invalid, "documents has 33 entries; the limit is 32"),
        row("a document without a uri", "MOIC", complete(accepted, |r| { r.documents = documents(1); r.documents[0].uri.clear(); }), Invalid, "uri must be 1 to 2048 bytes"),
        row("malformed case_id", "MOIC", complete("", |_| {}), Invalid, "case_id: is required"),
        row("no idempotency_key", "MOIC", complete(accepted, |r| r.idempotency_key.clear()), Invalid, key_required),
        row("unknown case", "MOIC", complete(missing, |_| {}), NotFound, &not_found),
        row("on a resolved case", "MOIC", complete(resolved, |_| {}), Precondition, &is_resolved),
        row("by an agency with no task", "MOF", complete(accepted, |_| {}), Denied, &mof_no_task("complete", accepted)),
        unauthenticated("a wrong token", "MOIC", Credential::Wrong, complete(accepted, |_| {})),

        // SendBack.
        row("empty reason", "MOIC", send_back(pending, |r| r.reason.clear()), Invalid, "reason must not be empty"),
        row("reason where a Lao character crosses the limit", "MOIC", send_back(pending, |r| r.reason = lao_crossing(limits::REASON_MAX_BYTES)), Invalid, &text_long("reason", 4096, 4098)),
        row("malformed case_id", "MOIC", send_back("01JD8X3Q6V9K2M4N5P7R8S9T0 ", |_| {}), Invalid, no_ulid),
        row("no idempotency_key", "MOIC", send_back(pending, |r| r.idempotency_key.clear()), Invalid, key_required),
        row("unknown case", "MOIC", send_back(missing, |_| {}), NotFound, &not_found),
        row("on a resolved case", "MOIC", send_back(resolved, |_| {}), Precondition, &is_resolved),
        row("by an agency with no task", "MOF", send_back(pending, |_| {}), Denied, &mof_no_task("send back", pending)),
        row("by the front office", FRONT, send_back(opened, |_| {}), Denied, &format!("{FRONT} holds no open task on case {opened}, so it cannot send back")),
        unauthenticated("no token", "MOIC", Credential::Missing, send_back(pending, |_| {})),

        // RequestInfo.
        row("empty question", "MOIC", request_info(accepted, |r| r.question.clear()), Invalid, "question must not be empty"),
        row("question of 1366 Lao characters", "MOIC", request_info(accepted, |r| r.question = LAO.repeat(1366)), Invalid, &text_long("question", 4096, 4098)),
        row("malformed case_id", "MOIC", request_info("not-a-ulid", |_| {}), Invalid, no_ulid),
        row("no idempotency_key", "MOIC", request_info(accepted, |r| r.idempotency_key.clear()), Invalid, key_required),
        row("unknown case", "MOIC", request_info(missing, |_| {}), NotFound, &not_found),
        row("before Accept", "MOIC", request_info(pending, |_| {}), Precondition, &not_accepted),
        row("by an agency with no task", "MOF", request_info(accepted, |_| {}), Denied, &mof_no_task("request info", accepted)),
        row("by the front office", FRONT, request_info(opened, |_| {}), Denied, &format!("{FRONT} holds no open task on case {opened}, so it cannot request info")),
        unauthenticated("the front office's token at MOIC's adapter", "MOIC", Credential::Of(FRONT), request_info(accepted, |_| {})),

        // ResolveCase.
        row("unspecified resolution", FRONT, resolve(opened, |r| r.resolution = v1::Resolution::Unspecified.into()), Invalid, "resolution: 0 is not approved (1), denied (2) or withdrawn (3)"),
        row("unknown resolution", FRONT, resolve(opened, |r| r.resolution = 7), Invalid, "resolution: 7 is not approved (1), denied (2) or withdrawn (3)"),
        row("note where a Lao character crosses the limit", FRONT, resolve(opened, |r| r.note = lao_crossing(limits::NOTE_MAX_BYTES)), Invalid, &text_long("note", 4096, 4098)),
        row("malformed case_id", FRONT, resolve(">", |_| {}), Invalid, no_ulid),
        row("no idempotency_key", FRONT, resolve(opened, |r| r.idempotency_key.clear()), Invalid, key_required),
        row("unknown case", FRONT, resolve(missing, |_| {}), NotFound, &not_found),
        row("approved while MOIC holds a task", FRONT, resolve(pending, |r| r.resolution = v1::Resolution::Approved.into()), Precondition, &format!("case {pending} cannot be approved while MOIC still hold tasks")),
        row("resolved twice", FRONT, resolve(resolved, |_| {}), Precondition, &is_resolved),
        row("by a ministry", "MOIC", resolve(accepted, |_| {}), Denied, &format!("only the originating front office {FRONT} may resolve case {accepted}")),
        unauthenticated("no token", FRONT, Credential::Missing, resolve(opened, |_| {})),

        // RecallTask.
        row("empty holder_agency", FRONT, recall(pending, |r| r.holder_agency.clear()), Invalid, "holder_agency: is required (the code of the agency holding the task"),
        row("holder_agency with '>'", FRONT, recall(pending, |r| r.holder_agency = "MOIC>".into()), Invalid, &bad_char("holder_agency", "MOIC>", '>', 4)),
        row("holder_agency in lower case", FRONT, recall(pending, |r| r.holder_agency = "moic".into()), Invalid, "only A-Z, 0-9 and '-' are allowed"),
        row("empty reason", FRONT, recall(pending, |r| r.reason.clear()), Invalid, "reason must not be empty"),
        row("reason where a Lao character crosses the limit", FRONT, recall(pending, |r| r.reason = lao_crossing(limits::REASON_MAX_BYTES)), Invalid, &text_long("reason", 4096, 4098)),
        row("malformed case_id", FRONT, recall("not-a-ulid", |_| {}), Invalid, no_ulid),
        row("no idempotency_key", FRONT, recall(pending, |r| r.idempotency_key.clear()), Invalid, key_required),
        row("unknown case", FRONT, recall(missing, |_| {}), NotFound, &not_found),
        row("on a resolved case", FRONT, recall(resolved, |_| {}), Precondition, &is_resolved),
        row("from an agency that holds no task", FRONT, recall(pending, |r| r.holder_agency = "MOF".into()), Precondition, &format!("MOF holds no task on case {pending}, so there is nothing to take back")),
        row("by an agency that did not hand it over", "MOF", recall(accepted, |_| {}), Denied, &format!("only {FRONT}, which handed MOIC its task on case {accepted}, may take it back; MOF did not hand it over")),
        row("by the holder itself", "MOIC", recall(accepted, |_| {}), Denied, "MOIC did not hand it over"),
        unauthenticated("no token", FRONT, Credential::Missing, recall(pending, |_| {})),
        unauthenticated("MOIC's token at the front office's adapter", FRONT, Credential::Of("MOIC"), recall(pending, |_| {})),

        // Inbox: the request has no field that can be wrong; the credential can.
        unauthenticated("no token", "MOIC", Credential::Missing, inbox()),
        unauthenticated("a wrong token", "MOIC", Credential::Wrong, inbox()),
        unauthenticated("the front office's token at MOIC's adapter", "MOIC", Credential::Of(FRONT), inbox()),
        unauthenticated("the token under the Basic scheme", "MOIC", Credential::OtherScheme, inbox()),

        // Ack.
        row("no ids", "MOIC", ack(&[]), Invalid, "event_ids: give 1 to 1000 event ids, not 0"),
        row("1001 ids", "MOIC", Call::Ack(v1::AckRequest { event_ids: vec![held.to_owned(); 1001] }), Invalid, "event_ids: give 1 to 1000 event ids, not 1001"),
        row("a malformed id", "MOIC", ack(&["not-an-id"]), Invalid, &format!("event_ids: event id \"not-an-id\" {no_ulid}")),
        row("an id in lower case", "MOIC", ack(&[&held.to_lowercase()]), Invalid, no_ulid),
        row("a wildcard id", "MOIC", ack(&[">"]), Invalid, no_ulid),
        row("a held id beside a malformed one", "MOIC", ack(&[held, "01JD8X3Q6V9K2M4N5P7R8S9T0."]), Invalid, no_ulid),
        unauthenticated("no token", "MOIC", Credential::Missing, ack(&[held])),
        unauthenticated("MOF's token at MOIC's adapter", "MOIC", Credential::Of("MOF"), ack(&[held])),

        // GetCase.
        row("empty case_id", FRONT, get_case(""), Invalid, "case_id: is required"),
        row("malformed case_id", FRONT, get_case("not-a-ulid"), Invalid, no_ulid),
        row("case_id '*'", FRONT, get_case("*"), Invalid, no_ulid),
        row("case_id '>'", FRONT, get_case(">"), Invalid, no_ulid),
        row("case_id in lower case", FRONT, get_case(&lower), Invalid, no_ulid),
        row("unknown case", FRONT, get_case(missing), NotFound, &not_found),
        row("by an agency with no part in it", "MOF", get_case(opened), Denied, &format!("your agency MOF has no part in case {opened}")),
        unauthenticated("no token", FRONT, Credential::Missing, get_case(opened)),
        unauthenticated("MOF's token at the front office's adapter", FRONT, Credential::Of("MOF"), get_case(opened)),
    ]
}

#[tokio::test]
async fn bad_input_on_every_rpc_gets_the_documented_code_an_actionable_message_and_writes_nothing()
-> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC", "MOF"]).await?;
    let (mut front, mut moic) = (bus.agency(FRONT).await?, bus.agency("MOIC").await?);
    let opened = front.open_case("enterprise-registration").await?.case_id;
    let pending = front.open_case("enterprise-registration").await?.case_id;
    front.hand_off(&pending, "MOIC").await?;
    let accepted = front.open_case("construction-permit").await?.case_id;
    front.hand_off(&accepted, "MOIC").await?;
    moic.accept(&accepted).await?;
    let resolved = front.open_case("vehicle-registration").await?.case_id;
    front.hand_off(&resolved, "MOIC").await?;
    front.resolve(&resolved, v1::Resolution::Withdrawn).await?;
    let cases = Cases {
        opened,
        pending,
        accepted,
        resolved,
        missing: onedoor_case::CaseId::generate().to_string(),
    };
    // MOIC's system holds one delivery (a window of one, so the count cannot drift): no bad Ack
    // may acknowledge it.
    let mut moic_inbox = moic.inbox(1).await?;
    let held = next_inbox_item(&mut moic_inbox)
        .await
        .event
        .expect("event")
        .event_id;

    let mut clients: HashMap<(&str, Credential), Gateway> = HashMap::new();
    let front_reader = clients_entry(&bus, &mut clients, FRONT, Credential::Own)
        .await?
        .clone();
    let js = bus.nats.jetstream().await?;
    let mut before = onedoor_testkit::eventually(
        "MOIC's held delivery to be pending",
        onedoor_testkit::DEADLINE,
        || async {
            let snapshot = snapshot(&js, &front_reader, &cases).await?;
            Ok((snapshot.moic_ack_pending == 1).then_some(snapshot))
        },
    )
    .await?;
    // The withdrawn case ends with the front office's notice to MOIC, whose task it closed.
    assert_eq!(before.versions, vec![1, 2, 3, 4]);

    let mut rows = rows(&cases, &held);
    rows.extend(hostile_rows(&cases));
    let covered: BTreeSet<&str> = rows.iter().map(|r| r.call.rpc()).collect();
    assert_eq!(
        covered,
        EVERY_RPC.into_iter().collect::<BTreeSet<_>>(),
        "the table covers every rpc"
    );
    let total = rows.len();
    let mut failures = Vec::new();
    for row in rows {
        let rpc = row.call.rpc();
        let label = format!("{rpc} by {} ({:?}): {}", row.by, row.credential, row.what);
        let client = clients_entry(&bus, &mut clients, row.by, row.credential).await?;
        match row.call.send(client).await {
            Ok(()) => failures.push(format!("{label}: succeeded; wanted {:?}", row.code)),
            Err(status) if status.code() != row.code => failures.push(format!(
                "{label}: {:?} {:?}; wanted {:?}",
                status.code(),
                status.message(),
                row.code
            )),
            Err(status) if !status.message().contains(&row.says) => failures.push(format!(
                "{label}: message {:?} does not say {:?}",
                status.message(),
                row.says
            )),
            Err(_) => {}
        }
        let after = snapshot(&js, &front_reader, &cases).await?;
        if after != before {
            failures.push(format!("{label}: changed the bus: {before:?} -> {after:?}"));
            before = after; // report each row that writes, not every row after it
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The held delivery was never acknowledged by a bad Ack: acknowledging it now takes effect.
    let acked = moic.ack(&[&held]).await?;
    assert_eq!(acked.acked_event_ids, vec![held]);
    Ok(())
}

/// A client of `agency`'s adapter presenting `credential`, made once per pair.
async fn clients_entry<'a>(
    bus: &TestBus,
    clients: &'a mut HashMap<(&'static str, Credential), Gateway>,
    agency: &'static str,
    credential: Credential,
) -> anyhow::Result<&'a mut Gateway> {
    Ok(match clients.entry((agency, credential)) {
        Entry::Occupied(entry) => entry.into_mut(),
        Entry::Vacant(entry) => entry.insert(AgencyGatewayClient::with_interceptor(
            bus.channel(agency).await?,
            Authorization(credential.header(agency)),
        )),
    })
}

#[tokio::test]
async fn free_text_keeps_its_newlines_and_tabs() -> anyhow::Result<()> {
    // The other side of the hostile rows: layout characters in free text are not controls.
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    let mut front = bus.agency(FRONT).await?;
    let summary = "ຈົດທະບຽນ\n\tline two".to_owned();
    let request = v1::OpenCaseRequest {
        service: "enterprise-registration".into(),
        citizen_ref: "R-2026-0002".into(),
        summary: summary.clone(),
        idempotency_key: key(),
        actor: "clerk-1".into(),
        documents: vec![],
    };
    let receipt = front.client.open_case(request).await?.into_inner();
    let view = front.get_case(&receipt.case_id).await?;
    let Some(v1::case_event::Body::Opened(opened)) = view.events[0].body.as_ref() else {
        anyhow::bail!("not an opening: {:?}", view.events[0]);
    };
    assert_eq!(opened.summary, summary);
    Ok(())
}

#[tokio::test]
async fn a_text_at_exactly_its_byte_limit_is_accepted_even_when_it_ends_in_lao()
-> anyhow::Result<()> {
    // The other side of the table's limit rows: the limits are in bytes and inclusive.
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    let mut front = bus.agency(FRONT).await?;
    let summary = format!("{}{LAO}", "x".repeat(limits::SUMMARY_MAX_BYTES - 3));
    assert_eq!(summary.len(), limits::SUMMARY_MAX_BYTES);
    let request = v1::OpenCaseRequest {
        service: "enterprise-registration".into(),
        citizen_ref: LAO.repeat(limits::CITIZEN_REF_MAX_BYTES / 3),
        summary: summary.clone(),
        idempotency_key: format!("{}{LAO}", "k".repeat(limits::IDEMPOTENCY_KEY_MAX_BYTES - 3)),
        actor: "a".repeat(limits::ACTOR_MAX_BYTES),
        documents: vec![],
    };
    let receipt = front.client.open_case(request).await?.into_inner();
    let view = front.get_case(&receipt.case_id).await?;
    let Some(v1::case_event::Body::Opened(opened)) = view.events[0].body.as_ref() else {
        anyhow::bail!("not an opening: {:?}", view.events[0]);
    };
    assert_eq!(opened.summary, summary, "stored whole, not cut");
    Ok(())
}

#[tokio::test]
async fn a_message_over_the_decode_limit_is_refused_writes_nothing_and_the_adapter_keeps_serving()
-> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    let mut front = bus.agency(FRONT).await?;
    let case = front.open_case("enterprise-registration").await?.case_id;
    let limit = onedoor_adapter::server::MAX_MESSAGE_BYTES;

    let huge = "x".repeat(2 * limit);
    let status = front
        .client
        .open_case(v1::OpenCaseRequest {
            service: "enterprise-registration".into(),
            citizen_ref: "R-1".into(),
            summary: huge.clone(),
            idempotency_key: key(),
            ..Default::default()
        })
        .await
        .expect_err("over the decode limit");
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{:?} {}",
        status.code(),
        status.message()
    );
    assert!(
        status
            .message()
            .contains(&format!("the limit is: {limit} bytes")),
        "the message names the limit: {}",
        status.message()
    );
    let status = front
        .client
        .hand_off(v1::HandOffRequest {
            case_id: case.clone(),
            to_agency: "MOIC".into(),
            instructions: huge,
            idempotency_key: key(),
            ..Default::default()
        })
        .await
        .expect_err("over the decode limit");
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{:?} {}",
        status.code(),
        status.message()
    );

    // Under the decode limit but over the field's: the case rules answer, naming the field.
    let status = front
        .client
        .open_case(v1::OpenCaseRequest {
            service: "enterprise-registration".into(),
            citizen_ref: "R-1".into(),
            summary: "x".repeat(limit / 2),
            idempotency_key: key(),
            ..Default::default()
        })
        .await
        .expect_err("over the summary limit");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains(&format!(
            "summary is {} bytes; the limit is 4096",
            limit / 2
        )),
        "{}",
        status.message()
    );

    assert_eq!(bus.stream_messages().await?, 1, "only the opening");
    assert_eq!(front.get_case(&case).await?.events.len(), 1);
    front.hand_off(&case, "MOIC").await?;
    Ok(())
}
