//! The adapter's JSON face, through real adapters on a real nats-server, over real HTTP/1.1
//! sockets: the same calls as gRPC on the same port, the inbox as Server-Sent Events, one JSON
//! error shape, and a generated OpenAPI document that validates.

mod support;

use std::time::Duration;

use http::{Method, StatusCode};
use onedoor_bus::InboxSettings;
use onedoor_testkit::registry::token_for;
use onedoor_testkit::{FRONT, TestBus, next_inbox_item};
use serde_json::{Value, json};
use support::{Answer, Events, JsonClient};

fn client(bus: &TestBus, agency: &str) -> JsonClient {
    JsonClient::new(&bus.address(agency), Some(token_for(agency)))
}

fn open_request(key: &str) -> Value {
    json!({
        "service": "enterprise-registration",
        "citizenRef": "R-2026-0042",
        "summary": "register a shop",
        "idempotencyKey": key,
    })
}

async fn open_and_hand_off(front: &JsonClient, to: &str) -> anyhow::Result<(Answer, Answer)> {
    let opened = front.call("OpenCase", &open_request("open-1")).await?;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.body);
    let case_id = opened.body["caseId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let handed = front
        .call(
            "HandOff",
            &json!({"caseId": case_id, "toAgency": to, "instructions": "check the name", "idempotencyKey": "hand-1"}),
        )
        .await?;
    assert_eq!(handed.status, StatusCode::OK, "{}", handed.body);
    Ok((opened, handed))
}

/// The inbox of `agency` as an event stream.
async fn inbox(client: &JsonClient) -> anyhow::Result<Events> {
    let response = client
        .request(
            Method::POST,
            "/v1/Inbox",
            &[("accept", "text/event-stream")],
            Vec::new(),
        )
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    Ok(Events::new(response))
}

async fn next_item(events: &mut Events) -> anyhow::Result<Value> {
    match events.next().await? {
        Some((event, data)) if event == "item" => Ok(data),
        other => anyhow::bail!("expected an inbox item, got {other:?}"),
    }
}

#[tokio::test]
async fn a_case_goes_from_open_to_acknowledged_through_json_alone() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC"]).await?;
    let front = client(&bus, FRONT);
    let moic = client(&bus, "MOIC");

    let (opened, handed) = open_and_hand_off(&front, "MOIC").await?;
    let case_id = opened.body["caseId"].as_str().unwrap_or_default();
    // The proto3 JSON mapping: 64-bit integers as strings, Timestamps in RFC 3339.
    assert_eq!(opened.body["caseVersion"], "1");
    assert_eq!(handed.body["caseVersion"], "2");
    assert!(
        opened.body["occurredAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    // The answer names the case's trace, as gRPC's metadata does.
    let trace_id = opened.body["traceId"].as_str().unwrap_or_default();
    assert!(
        opened.traceparent().contains(trace_id),
        "{}",
        opened.traceparent()
    );

    let mut events = inbox(&moic).await?;
    let item = next_item(&mut events).await?;
    assert_eq!(item["event"]["caseId"], case_id);
    assert_eq!(item["event"]["eventId"], handed.body["eventId"]);
    assert_eq!(item["event"]["handedOff"]["instructions"], "check the name");
    assert_eq!(item["deliveryAttempt"], 1);

    let acked = moic
        .call("Ack", &json!({"eventIds": [item["event"]["eventId"]]}))
        .await?;
    assert_eq!(acked.status, StatusCode::OK, "{}", acked.body);
    assert_eq!(
        acked.body["ackedEventIds"],
        json!([item["event"]["eventId"]])
    );

    let accepted = moic
        .call(
            "Accept",
            &json!({"caseId": case_id, "idempotencyKey": "accept-1"}),
        )
        .await?;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    let view = front.call("GetCase", &json!({"caseId": case_id})).await?;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    assert_eq!(view.body["status"], "CASE_STATUS_IN_PROGRESS");
    assert_eq!(view.body["events"].as_array().map(Vec::len), Some(3));
    Ok(())
}

#[tokio::test]
async fn a_task_is_taken_back_through_json_and_the_holder_reads_why() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC", "MOF"]).await?;
    let (front, moic) = (client(&bus, FRONT), client(&bus, "MOIC"));
    let (opened, handed) = open_and_hand_off(&front, "MOIC").await?;
    let case_id = opened.body["caseId"].as_str().unwrap_or_default();
    let recall = |key: &str| json!({"caseId": case_id, "holderAgency": "MOIC", "reason": "wrong ministry", "idempotencyKey": key});

    let denied = client(&bus, "MOF")
        .call("RecallTask", &recall("mof-1"))
        .await?;
    assert_error(&denied, StatusCode::FORBIDDEN, "PERMISSION_DENIED", None);
    let taken = front.call("RecallTask", &recall("recall-1")).await?;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.body);
    assert_eq!(taken.body["caseVersion"], "3");

    let mut events = inbox(&moic).await?;
    assert_eq!(
        next_item(&mut events).await?["event"]["eventId"],
        handed.body["eventId"]
    );
    let item = next_item(&mut events).await?;
    assert_eq!(item["kind"], "INBOX_ITEM_KIND_TASK_TAKEN_BACK");
    assert_eq!(item["event"]["taskTakenBack"]["reason"], "wrong ministry");
    assert_eq!(item["citizenRef"], "R-2026-0042");

    let late = moic
        .call(
            "Accept",
            &json!({"caseId": case_id, "idempotencyKey": "accept-1"}),
        )
        .await?;
    assert_error(&late, StatusCode::BAD_REQUEST, "FAILED_PRECONDITION", None);
    Ok(())
}

#[tokio::test]
async fn a_retried_json_write_returns_the_first_receipt() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    let front = client(&bus, FRONT);
    let first = front.call("OpenCase", &open_request("same-key")).await?;
    let again = front.call("OpenCase", &open_request("same-key")).await?;
    assert_eq!(first.body, again.body);
    let mut other = open_request("same-key");
    other["summary"] = json!("something else");
    let reused = front.call("OpenCase", &other).await?;
    assert_eq!(reused.status, StatusCode::CONFLICT, "{}", reused.body);
    assert_eq!(reused.code(), "ALREADY_EXISTS");
    assert_eq!(reused.field(), Some("idempotencyKey"));
    Ok(())
}

/// Asserts the one error shape: the code, the field, and a traceparent equal to the header's.
fn assert_error(answer: &Answer, status: StatusCode, code: &str, field: Option<&str>) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.code(), code, "{}", answer.body);
    assert_eq!(answer.field(), field, "{}", answer.body);
    assert!(
        !answer.body["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    assert_eq!(
        answer.body["traceparent"],
        answer.traceparent(),
        "{}",
        answer.body
    );
    assert_eq!(
        answer
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
}

#[tokio::test]
async fn bad_json_requests_get_one_error_shape_with_the_right_code() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    let front = client(&bus, FRONT);
    let json_type = [("content-type", "application/json")];
    let post = |body: &str| {
        let front = front.clone();
        let body = body.as_bytes().to_vec();
        async move {
            front
                .send(Method::POST, "/v1/OpenCase", &json_type, body)
                .await
        }
    };

    let broken = post("{\"service\": ").await?;
    assert_error(&broken, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", None);
    let unknown = post(r#"{"service":"enterprise-registration","colour":"red"}"#).await?;
    assert_error(
        &unknown,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        Some("colour"),
    );
    let wrong_type = post(r#"{"summary": 12}"#).await?;
    assert_error(
        &wrong_type,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        Some("summary"),
    );
    let nested = post(r#"{"documents":[{"name":"a","size":"big"}]}"#).await?;
    assert_error(
        &nested,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        Some("documents[0].size"),
    );

    // The gRPC face's own rules, with their own texts, named by the JSON field.
    let mut long = open_request("long");
    long["summary"] = json!("x".repeat(5000));
    let too_long = front.call("OpenCase", &long).await?;
    assert_error(
        &too_long,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        Some("summary"),
    );
    let mut unknown_service = open_request("svc");
    unknown_service["service"] = json!("no-such-service");
    let refused = front.call("OpenCase", &unknown_service).await?;
    assert_error(
        &refused,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        Some("service"),
    );

    let text = front
        .send(
            Method::POST,
            "/v1/OpenCase",
            &[("content-type", "text/plain")],
            b"{}".to_vec(),
        )
        .await?;
    assert_error(
        &text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "INVALID_ARGUMENT",
        None,
    );
    let huge = vec![b' '; 2 << 20];
    let oversize = front
        .send(Method::POST, "/v1/OpenCase", &json_type, huge)
        .await?;
    assert_error(
        &oversize,
        StatusCode::PAYLOAD_TOO_LARGE,
        "OUT_OF_RANGE",
        None,
    );

    let no_method = front.call("OpenCases", &json!({})).await?;
    assert_error(&no_method, StatusCode::NOT_FOUND, "NOT_FOUND", None);
    let get = front
        .send(Method::GET, "/v1/OpenCase", &[], Vec::new())
        .await?;
    assert_error(&get, StatusCode::METHOD_NOT_ALLOWED, "UNIMPLEMENTED", None);
    Ok(())
}

#[tokio::test]
async fn json_callers_authenticate_as_grpc_callers_do() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC"]).await?;
    let anonymous = JsonClient::new(&bus.address(FRONT), None);
    let missing = anonymous.call("OpenCase", &open_request("a")).await?;
    assert_error(&missing, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", None);
    assert!(
        missing.body["message"]
            .as_str()
            .is_some_and(|m| m.contains(FRONT))
    );
    assert_eq!(
        missing
            .headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    let other = JsonClient::new(&bus.address(FRONT), Some(token_for("MOIC")));
    let foreign = other
        .call("GetCase", &json!({"caseId": "01JAAAAAAAAAAAAAAAAAAAAAAA"}))
        .await?;
    assert_error(&foreign, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", None);
    let inbox = other
        .send(Method::POST, "/v1/Inbox", &[], Vec::new())
        .await?;
    assert_error(&inbox, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", None);

    // Authenticated, but the rules say no: a ministry does not open cases.
    let moic = client(&bus, "MOIC");
    let denied = moic.call("OpenCase", &open_request("m")).await?;
    assert_error(&denied, StatusCode::FORBIDDEN, "PERMISSION_DENIED", None);
    Ok(())
}

#[tokio::test]
async fn the_callers_trace_is_continued_on_answers_and_errors() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    let front = client(&bus, FRONT);
    let caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let body = open_request("traced").to_string().into_bytes();
    let headers = [
        ("content-type", "application/json"),
        ("traceparent", caller),
    ];
    let opened = front
        .send(Method::POST, "/v1/OpenCase", &headers, body)
        .await?;
    assert_eq!(opened.body["traceId"], "0af7651916cd43dd8448eb211c80319c");
    assert!(
        opened
            .traceparent()
            .starts_with("00-0af7651916cd43dd8448eb211c80319c-")
    );
    let bad = front
        .send(
            Method::POST,
            "/v1/GetCase",
            &headers,
            br#"{"caseId":"nope"}"#.to_vec(),
        )
        .await?;
    assert_error(
        &bad,
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        Some("caseId"),
    );
    assert!(
        bad.traceparent()
            .starts_with("00-0af7651916cd43dd8448eb211c80319c-")
    );
    assert_ne!(
        bad.traceparent(),
        caller,
        "the answer is a child span, not the caller's"
    );
    Ok(())
}

#[tokio::test]
async fn grpc_still_works_on_the_same_port_beside_json() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC"]).await?;
    let mut front = bus.agency(FRONT).await?;
    let mut moic = bus.agency("MOIC").await?;
    let case = front.open_case("enterprise-registration").await?;
    // Written over JSON, read over gRPC, and the reverse.
    let handed = client(&bus, FRONT)
        .call(
            "HandOff",
            &json!({"caseId": case.case_id, "toAgency": "MOIC", "idempotencyKey": "h"}),
        )
        .await?;
    assert_eq!(handed.status, StatusCode::OK, "{}", handed.body);
    let mut stream = moic.inbox(4).await?;
    let item = next_inbox_item(&mut stream).await;
    assert_eq!(
        item.event.map(|e| e.event_id),
        handed.body["eventId"].as_str().map(String::from)
    );
    let view = front.get_case(&case.case_id).await?;
    assert_eq!(view.events.len(), 2);
    assert_eq!(
        bus.health(FRONT).await?,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    Ok(())
}

#[tokio::test]
async fn a_json_inbox_item_not_acknowledged_comes_again() -> anyhow::Result<()> {
    // A long ack wait: only the release when the stream closes brings the item back quickly.
    let settings = InboxSettings {
        backoff: vec![Duration::from_secs(60)],
        max_deliver: 5,
        release_delay_cap: Duration::from_millis(200),
        ..InboxSettings::default()
    };
    let bus = TestBus::start_configured(&[FRONT, "MOIC"], |config| {
        config.inbox = settings.clone();
    })
    .await?;
    let moic = client(&bus, "MOIC");
    let (_, handed) = open_and_hand_off(&client(&bus, FRONT), "MOIC").await?;

    let mut first = inbox(&moic).await?;
    let item = next_item(&mut first).await?;
    assert_eq!(item["deliveryAttempt"], 1);
    drop(first); // the worker went away without acknowledging

    let mut second = inbox(&moic).await?;
    let again = next_item(&mut second).await?;
    assert_eq!(again["event"]["eventId"], handed.body["eventId"]);
    assert_eq!(again["deliveryAttempt"], 2);
    let acked = moic
        .call("Ack", &json!({"eventIds": [again["event"]["eventId"]]}))
        .await?;
    assert_eq!(
        acked.body["ackedEventIds"].as_array().map(Vec::len),
        Some(1)
    );
    Ok(())
}

#[tokio::test]
async fn the_openapi_document_validates_and_lists_every_rpc() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT]).await?;
    // Served without a token: it holds the contract, no data.
    let anonymous = JsonClient::new(&bus.address(FRONT), None);
    let answer = anonymous
        .send(Method::GET, "/openapi.json", &[], Vec::new())
        .await?;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["openapi"], "3.1.0");
    let pool = prost_reflect::DescriptorPool::decode(onedoor_proto::FILE_DESCRIPTOR_SET)?;
    let service = pool
        .get_service_by_name("onedoor.v1.AgencyGateway")
        .ok_or_else(|| anyhow::anyhow!("no AgencyGateway"))?;
    for method in service.methods() {
        let path = format!("/v1/{}", method.name());
        assert!(
            answer.body["paths"][&path]["post"].is_object(),
            "{path} is missing"
        );
    }

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, answer.body.to_string())?;
    let validator = support::tool("openapi-spec-validator")?;
    let out = std::process::Command::new(&validator).arg(&file).output()?;
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn reference_worker_in_python_hands_a_case_off_and_acks() -> anyhow::Result<()> {
    let bus = TestBus::with_adapters(&[FRONT, "MOIC"]).await?;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/http/worker.py");
    let python = support::tool("python3")?;
    let mut worker = tokio::process::Command::new(&python);
    worker
        .arg(&script)
        .args([
            "--front-url",
            &bus.address(FRONT),
            "--front-token",
            &token_for(FRONT),
        ])
        .args([
            "--ministry-url",
            &bus.address("MOIC"),
            "--ministry-token",
            &token_for("MOIC"),
        ])
        .args(["--ministry", "MOIC"])
        .kill_on_drop(true);
    let out = tokio::time::timeout(support::EVENT_DEADLINE * 2, worker.output()).await??;
    assert!(
        out.status.success(),
        "the worker failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        summary["status"], "CASE_STATUS_AT_FRONT_OFFICE",
        "{summary}"
    );
    assert_eq!(summary["outcome"], "approved");

    // Through gRPC: the case holds exactly the worker's four writes, and nothing is left in
    // either inbox awaiting an ack.
    let case_id = summary["caseId"].as_str().unwrap_or_default();
    let view = bus.agency(FRONT).await?.get_case(case_id).await?;
    let kinds: Vec<String> = view
        .events
        .iter()
        .map(|e| e.kind().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(kinds, ["opened", "handed_off", "accepted", "completed"]);
    for agency in [FRONT, "MOIC"] {
        let info = bus.inbox_consumer_info(agency).await?;
        assert_eq!(
            info.num_ack_pending, 0,
            "{agency} holds unacknowledged items"
        );
    }
    Ok(())
}

/// A TLS client offering only HTTP/1.1 in ALPN, as Python's urllib3 and .NET's HttpClient do,
/// trusting `pki`'s CA and presenting `agency`'s client certificate if given.
fn http1_tls(
    pki: &onedoor_grpc::devpki::DevPki,
    agency: Option<&str>,
) -> anyhow::Result<tokio_rustls::TlsConnector> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(pki.ca_cert_pem.as_bytes())?)?;
    let builder =
        ClientConfig::builder_with_provider(std::sync::Arc::new(crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
    let mut config = match agency {
        Some(agency) => {
            let client = &pki.clients[agency];
            builder.with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(client.cert_pem.as_bytes())?],
                PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes())?,
            )?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        config,
    )))
}

#[tokio::test]
async fn json_over_tls_serves_http1_clients_with_tokens_or_client_certificates()
-> anyhow::Result<()> {
    let mut bus = TestBus::start().await?;
    let pki = onedoor_grpc::devpki::DevPki::generate([FRONT, "MOIC"])?;
    let mut config = bus.adapter_config(FRONT)?;
    config.tls = Some(onedoor_grpc::TlsIdentity {
        cert_pem: pki.server.cert_pem.clone(),
        key_pem: pki.server.key_pem.clone(),
        client_ca_pem: Some(pki.ca_cert_pem.clone()),
    });
    config.client_certs = vec![pki.clients[FRONT].sha256];
    bus.start_with(FRONT, config).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost")?;

    let mut with_token = JsonClient::new(&bus.address(FRONT), Some(token_for(FRONT)));
    with_token.tls = Some((http1_tls(&pki, None)?, name.clone()));
    let opened = with_token.call("OpenCase", &open_request("tls-1")).await?;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.body);

    // The client certificate reaches the same credentials check as on gRPC: FRONT's own
    // certificate needs no token; another agency's is refused even with FRONT's token.
    let mut with_cert = JsonClient::new(&bus.address(FRONT), None);
    with_cert.tls = Some((http1_tls(&pki, Some(FRONT))?, name.clone()));
    let view = with_cert
        .call("GetCase", &json!({"caseId": opened.body["caseId"]}))
        .await?;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    let mut foreign = JsonClient::new(&bus.address(FRONT), Some(token_for(FRONT)));
    foreign.tls = Some((http1_tls(&pki, Some("MOIC"))?, name));
    let refused = foreign.call("OpenCase", &open_request("tls-2")).await?;
    assert_error(&refused, StatusCode::FORBIDDEN, "PERMISSION_DENIED", None);
    Ok(())
}
