//! The per-case event log against a real nats-server: contract headers, ordered loads,
//! optimistic concurrency with re-decision, retries, and malformed messages.

use std::sync::Arc;

use async_nats::HeaderMap;
use onedoor_bus::{BusError, CaseLog, TraceContext, Written};
use onedoor_case::{Action, AgencyCode, CaseId, Refusal, ServiceCode};
use onedoor_testkit::{FRONT, TestBus};

/// What these tests ask of the bus beyond the shared fixture.
trait CaseLogBus {
    /// The versions of the case's events as loaded.
    async fn versions(&self, case_id: CaseId) -> anyhow::Result<Vec<u64>>;
    async fn open_case(&self) -> anyhow::Result<(CaseId, Written)>;
}

impl CaseLogBus for TestBus {
    async fn versions(&self, case_id: CaseId) -> anyhow::Result<Vec<u64>> {
        let history = self.log.load(case_id).await?;
        Ok(history.iter().map(|e| e.event.version).collect())
    }

    async fn open_case(&self) -> anyhow::Result<(CaseId, Written)> {
        let case_id = CaseId::generate();
        let written = self.act_now(case_id, FRONT, open_action()).await?;
        Ok((case_id, written))
    }
}

fn open_action() -> Action {
    Action::Open {
        service: ServiceCode::parse("enterprise-registration").expect("valid"),
        citizen_ref: "R-1".into(),
        summary: "ຮ້ານຄ້າ".into(),
        documents: vec![],
    }
}

fn hand_off(to: &str) -> Action {
    Action::HandOff {
        to: AgencyCode::parse(to).expect("valid"),
        instructions: "please".into(),
        documents: vec![],
        due_working_days: None,
    }
}

async fn next_message(
    subscriber: &mut async_nats::Subscriber,
) -> anyhow::Result<async_nats::Message> {
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        futures::StreamExt::next(subscriber),
    )
    .await?
    .ok_or_else(|| anyhow::anyhow!("subscription ended"))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.as_str())
}

#[tokio::test]
async fn appended_events_carry_every_contract_header() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let (case_id, opened) = bus.open_case().await?;
    let handed = bus.act_now(case_id, FRONT, hand_off("MOIC")).await?;

    let js = bus.nats.jetstream().await?;
    let stream = js.get_stream("ONEDOOR").await?;
    let message = stream.direct_get(handed.sequence).await?;
    assert_eq!(
        message.subject.as_str(),
        format!("onedoor.v1.case.{case_id}.{FRONT}.MOIC")
    );
    let h = &message.headers;
    let event_id = handed.event.event_id.to_string();
    assert_eq!(header(h, "Nats-Msg-Id"), Some(event_id.as_str()));
    assert_eq!(
        header(h, "Nats-Expected-Last-Subject-Sequence"),
        Some(opened.sequence.to_string().as_str())
    );
    assert_eq!(
        header(h, "Nats-Expected-Last-Subject-Sequence-Subject"),
        Some(format!("onedoor.v1.case.{case_id}.>").as_str())
    );
    assert_eq!(header(h, "ce-specversion"), Some("1.0"));
    assert_eq!(header(h, "ce-id"), Some(event_id.as_str()));
    assert_eq!(
        header(h, "ce-source"),
        Some(format!("onedoor/{FRONT}").as_str())
    );
    assert_eq!(
        header(h, "ce-type"),
        Some("la.gov.onedoor.case.handed_off.v1")
    );
    assert_eq!(header(h, "ce-subject"), Some(case_id.to_string().as_str()));
    assert_eq!(
        header(h, "ce-correlationid"),
        Some(case_id.to_string().as_str())
    );
    assert_eq!(
        header(h, "ce-causationid"),
        Some(opened.event.event_id.to_string().as_str())
    );
    assert_eq!(
        header(h, "ce-datacontenttype"),
        Some("application/protobuf")
    );
    let ce_time = header(h, "ce-time").expect("ce-time");
    time::OffsetDateTime::parse(ce_time, &time::format_description::well_known::Rfc3339)?;
    let traceparent = TraceContext::parse(header(h, "traceparent").expect("traceparent"), None)?;
    assert_eq!(
        traceparent.trace_id, opened.prepared.trace.trace_id,
        "one trace for the whole case"
    );
    Ok(())
}

#[tokio::test]
async fn a_case_loads_in_order_with_gapless_versions_and_a_hash_chain() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let (case_id, _) = bus.open_case().await?;
    let (other_case, _) = bus.open_case().await?;
    bus.act_now(case_id, FRONT, hand_off("MOIC")).await?;
    bus.act_now(other_case, FRONT, hand_off("MOF")).await?;
    bus.act_now(case_id, "MOIC", Action::Accept).await?;

    let events = bus.log.load(case_id).await?;
    let versions: Vec<u64> = events.iter().map(|e| e.event.version).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert!(events.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert!(events[0].envelope.prev_hash.is_empty());
    for pair in events.windows(2) {
        assert_eq!(
            pair[1].envelope.prev_hash,
            onedoor_bus::write::payload_hash(&pair[0].payload)
        );
    }
    assert!(
        events.iter().all(|e| e.event.case_id == case_id),
        "no events of the other case"
    );
    assert!(
        bus.log.load(CaseId::generate()).await?.is_empty(),
        "an unknown case has no events"
    );
    Ok(())
}

#[tokio::test]
async fn of_two_stale_appends_only_one_wins() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let (case_id, _) = bus.open_case().await?;
    let history = bus.log.load(case_id).await?;
    let last = history.last().map(|e| e.sequence).unwrap_or_default();
    let first = onedoor_bus::prepare(
        &history,
        &bus.request(case_id, FRONT, hand_off("MOIC")),
        &bus.registry,
        None,
    )?;
    let second = onedoor_bus::prepare(
        &history,
        &bus.request(case_id, FRONT, hand_off("MOF")),
        &bus.registry,
        None,
    )?;
    bus.log.append(&first, last).await?;
    let lost = bus.log.append(&second, last).await;
    assert!(matches!(lost, Err(BusError::Conflict { .. })), "{lost:?}");
    assert_eq!(bus.log.load(case_id).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn racing_writers_are_re_decided_and_the_rules_pick_one_winner() -> anyhow::Result<()> {
    let bus = Arc::new(TestBus::start().await?);
    let (case_id, _) = bus.open_case().await?;
    bus.act_now(case_id, FRONT, hand_off("MOIC")).await?;

    // Eight concurrent "accept"s by the holder: exactly one may succeed, the others must be
    // refused by the rules after re-reading, never both written.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let bus = Arc::clone(&bus);
        tasks.push(tokio::spawn(async move {
            bus.act_now(case_id, "MOIC", Action::Accept).await
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        match task.await? {
            Ok(_) => accepted += 1,
            Err(BusError::Refused(Refusal::TaskAlreadyAccepted { .. })) => {}
            Err(other) => panic!("unexpected outcome: {other}"),
        }
    }
    assert_eq!(accepted, 1);

    // Parallel hand-offs to different agencies are all allowed: all land, versions stay gapless.
    let mut tasks = Vec::new();
    for to in ["MOF", "MOPS", "MPWT", "MAE"] {
        let bus = Arc::clone(&bus);
        tasks.push(tokio::spawn(async move {
            bus.act_now(case_id, FRONT, hand_off(to)).await
        }));
    }
    for task in tasks {
        task.await??;
    }
    let versions = bus.versions(case_id).await?;
    assert_eq!(versions, (1..=7).collect::<Vec<u64>>());
    Ok(())
}

#[tokio::test]
async fn a_retried_request_is_answered_from_the_log_and_writes_nothing() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let (case_id, _) = bus.open_case().await?;
    let request = bus.request(case_id, FRONT, hand_off("MOIC"));
    let first = bus.log.execute(&request, &bus.registry).await?;
    let again = bus.log.execute(&request, &bus.registry).await?;
    assert!(!first.duplicate && again.duplicate);
    assert_eq!(again.sequence, first.sequence);
    assert_eq!(bus.log.load(case_id).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_write_whose_ack_was_lost_is_recognised_when_the_request_is_retried() -> anyhow::Result<()>
{
    // The crash case: the event was stored but the writer never saw the ack. Measured on
    // nats-server 2.15: JetStream checks the expected last sequence *before* de-duplicating, so
    // re-sending the very same message is a conflict, not a duplicate ack. `execute` therefore
    // re-reads on a conflict and finds its event id in the log.
    let bus = TestBus::start().await?;
    let (case_id, _) = bus.open_case().await?;
    let request = bus.request(case_id, FRONT, hand_off("MOIC"));
    let history = bus.log.load(case_id).await?;
    let last = history.last().map(|e| e.sequence).unwrap_or_default();
    let prepared = onedoor_bus::prepare(&history, &request, &bus.registry, None)?;
    let stored = bus.log.append(&prepared, last).await?; // the ack the writer "lost"

    let resent = bus.log.append(&prepared, last).await;
    assert!(
        matches!(resent, Err(BusError::Conflict { .. })),
        "{resent:?}"
    );
    let retried = bus.log.execute(&request, &bus.registry).await?;
    assert!(retried.duplicate);
    assert_eq!(retried.sequence, stored.sequence);
    assert_eq!(bus.log.load(case_id).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn refused_commands_write_nothing() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let (case_id, _) = bus.open_case().await?;
    let refused = bus.act_now(case_id, "MOF", Action::Accept).await;
    assert!(
        matches!(refused, Err(BusError::Refused(Refusal::NoTask { .. }))),
        "{refused:?}"
    );
    let refused = bus
        .act_now(CaseId::generate(), FRONT, hand_off("MOIC"))
        .await;
    assert!(
        matches!(
            refused,
            Err(BusError::Refused(Refusal::CaseNotFound { .. }))
        ),
        "{refused:?}"
    );
    assert_eq!(bus.log.load(case_id).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_malformed_message_is_quarantined_and_the_case_goes_on() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let (case_id, _) = bus.open_case().await?;
    let js = bus.nats.jetstream().await?;
    let ack = js
        .publish(
            format!("onedoor.v1.case.{case_id}.MOIC._"),
            "not protobuf \u{0}\u{ff}".into(),
        )
        .await?
        .await?;
    let verified = bus.log.load_verified(case_id).await?;
    assert_eq!(verified.accepted.len(), 1);
    let bad: Vec<(u64, &str)> = verified
        .quarantined
        .iter()
        .map(|q| (q.sequence, q.reason.label()))
        .collect();
    assert_eq!(bad, vec![(ack.sequence, "undecodable")]);
    // The next step builds on the last good event, expecting the garbage's sequence as the
    // case's last.
    let written = bus.act_now(case_id, FRONT, hand_off("MOIC")).await?;
    assert_eq!(written.event.version, 2);
    assert_eq!(bus.log.load(case_id).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn the_caller_trace_starts_the_case_and_later_writers_stay_in_it() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let caller = TraceContext::parse(
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        None,
    )?;
    let case_id = CaseId::generate();
    let mut open = bus.request(
        case_id,
        FRONT,
        Action::Open {
            service: ServiceCode::parse("construction-permit")?,
            citizen_ref: "R-2".into(),
            summary: String::new(),
            documents: vec![],
        },
    );
    open.caller_trace = Some(caller.clone());
    let opened = bus.log.execute(&open, &bus.registry).await?;
    assert_eq!(opened.prepared.trace.trace_id, caller.trace_id);

    // A ministry whose own system started an unrelated trace still writes into the case's.
    let mut handoff = bus.request(case_id, FRONT, hand_off("MPWT"));
    handoff.caller_trace = Some(TraceContext::new_root());
    let handed = bus.log.execute(&handoff, &bus.registry).await?;
    assert_eq!(handed.prepared.wire.trace_id, caller.trace_id);
    assert_ne!(handed.prepared.wire.span_id, opened.prepared.wire.span_id);
    Ok(())
}

#[tokio::test]
async fn completing_and_sending_back_the_same_task_at_once_lands_exactly_one() -> anyhow::Result<()>
{
    let bus = Arc::new(TestBus::start().await?);
    let (case_id, _) = bus.open_case().await?;
    bus.act_now(case_id, FRONT, hand_off("MOIC")).await?;
    bus.act_now(case_id, "MOIC", Action::Accept).await?;

    let complete = {
        let bus = Arc::clone(&bus);
        tokio::spawn(async move {
            let action = Action::Complete {
                outcome: "registered".into(),
                note: String::new(),
                documents: vec![],
            };
            bus.act_now(case_id, "MOIC", action).await
        })
    };
    let send_back = {
        let bus = Arc::clone(&bus);
        tokio::spawn(async move {
            bus.act_now(
                case_id,
                "MOIC",
                Action::SendBack {
                    reason: "wrong agency".into(),
                },
            )
            .await
        })
    };
    let outcomes = [complete.await?, send_back.await?];
    let landed = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(landed, 1, "{outcomes:?}");
    let loser = outcomes
        .iter()
        .find_map(|o| o.as_ref().err())
        .expect("one refusal");
    assert!(
        matches!(loser, BusError::Refused(Refusal::TaskEnded { .. })),
        "re-validated after the race: {loser}"
    );
    assert_eq!(bus.log.load(case_id).await?.len(), 4);
    Ok(())
}

#[tokio::test]
async fn a_plain_nats_subscriber_sees_every_contract_header() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let client = bus.nats.client().await?;
    let mut subscriber = client.subscribe("onedoor.v1.case.>").await?;
    client.flush().await?;
    let (case_id, opened) = bus.open_case().await?;

    let message = next_message(&mut subscriber).await?;
    assert_eq!(
        message.subject.as_str(),
        format!("onedoor.v1.case.{case_id}.{FRONT}._")
    );
    let h = message
        .headers
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no headers"))?;
    let event_id = opened.event.event_id.to_string();
    let expected = [
        ("Nats-Msg-Id", event_id.as_str()),
        ("ce-specversion", "1.0"),
        ("ce-id", event_id.as_str()),
        ("ce-source", "onedoor/ODSC-VTE-SAYSETTHA"),
        ("ce-type", "la.gov.onedoor.case.opened.v1"),
        ("ce-datacontenttype", "application/protobuf"),
    ];
    for (name, value) in expected {
        assert_eq!(header(h, name), Some(value), "{name}");
    }
    let case = case_id.to_string();
    assert_eq!(header(h, "ce-subject"), Some(case.as_str()));
    assert_eq!(header(h, "ce-correlationid"), Some(case.as_str()));
    assert_eq!(
        header(h, "ce-causationid"),
        None,
        "the opening has no cause"
    );
    // Every ce-* value decodes under the binding's percent-decoding to what it says.
    for name in ["ce-source", "ce-type", "ce-time", "ce-subject"] {
        let raw = header(h, name).expect("present");
        let decoded = onedoor_bus::cloudevents::decode(raw)?;
        assert!(
            decoded.is_ascii() && !decoded.contains(' '),
            "{name}: {decoded}"
        );
    }
    let parsed = TraceContext::parse(header(h, "traceparent").expect("traceparent"), None)?;
    assert_eq!(parsed.trace_id, opened.prepared.wire.trace_id);
    assert_eq!(parsed.span_id, opened.prepared.wire.span_id);
    Ok(())
}

#[tokio::test]
async fn a_case_with_500_events_loads_back_in_order() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let (case_id, _) = bus.open_case().await?;
    // Append through the real rules, keeping the history in hand instead of re-reading it for
    // every event (which would make the test quadratic).
    let mut history = bus.log.load(case_id).await?;
    let agencies = ["MOIC", "MOF"];
    while history.len() < 500 {
        let to = agencies[history.len() % 2];
        let action = if history.len() % 2 == 1 {
            hand_off(to)
        } else {
            Action::SendBack {
                reason: "again".into(),
            }
        };
        let agency = if history.len() % 2 == 1 {
            FRONT
        } else {
            agencies[(history.len() - 1) % 2]
        };
        let request = bus.request(case_id, agency, action);
        let prepared = onedoor_bus::prepare(&history, &request, &bus.registry, None)?;
        let expected_last = history.last().map_or(0, |e| e.sequence);
        let appended = bus.log.append(&prepared, expected_last).await?;
        let payload = bytes::Bytes::from(prost::Message::encode_to_vec(&prepared.wire));
        history.push(onedoor_bus::case_log::decode_stored(
            appended.sequence,
            payload,
        )?);
    }
    let loaded = bus.log.load(case_id).await?;
    let versions: Vec<u64> = loaded.iter().map(|e| e.event.version).collect();
    assert_eq!(versions, (1..=500).collect::<Vec<u64>>());
    onedoor_case::CaseState::fold(loaded.iter().map(|e| &e.event))?;
    Ok(())
}

#[tokio::test]
async fn writers_with_cached_histories_see_what_other_writers_appended() -> anyhow::Result<()> {
    // Two adapters' logs, each with its own case snapshots, take turns on one case: every write
    // must be decided on the whole, current history.
    let bus = TestBus::start().await?;
    let other = CaseLog::open(bus.nats.jetstream().await?).await?;
    let (case_id, _) = bus.open_case().await?;
    bus.act_now(case_id, FRONT, hand_off("MOIC")).await?; // cached by `bus.log`
    other
        .execute(&bus.request(case_id, "MOIC", Action::Accept), &bus.registry)
        .await?;
    // `bus.log`'s snapshot holds versions 1–2; the rules must see MOIC's acceptance (v3) to
    // allow MOIC's hand-on, and refuse a second acceptance.
    bus.act_now(case_id, "MOIC", hand_off("MOF")).await?;
    let again = bus.act_now(case_id, "MOIC", Action::Accept).await;
    assert!(
        matches!(
            again,
            Err(BusError::Refused(Refusal::TaskAlreadyAccepted { .. }))
        ),
        "{again:?}"
    );
    other
        .execute(&bus.request(case_id, "MOF", Action::Accept), &bus.registry)
        .await?;
    let versions = bus.versions(case_id).await?;
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    Ok(())
}

#[tokio::test]
async fn a_retry_is_recognised_after_its_case_left_the_cache_and_after_a_restart()
-> anyhow::Result<()> {
    // A cache of no bytes keeps only the case being written: every other case is evicted.
    let bus = TestBus::start().await?;
    let log = CaseLog::open(bus.nats.jetstream().await?)
        .await?
        .with_cache_bytes(0);
    let (case_id, _) = bus.open_case().await?;
    let request = bus.request(case_id, FRONT, hand_off("MOIC"));
    let first = log.execute(&request, &bus.registry).await?;
    bus.open_case().await?;
    log.execute(
        &bus.request(CaseId::generate(), FRONT, open_action()),
        &bus.registry,
    )
    .await?;

    let evicted = log.execute(&request, &bus.registry).await?;
    let restarted = CaseLog::open(bus.nats.jetstream().await?)
        .await?
        .execute(&request, &bus.registry)
        .await?;
    for again in [&evicted, &restarted] {
        assert!(again.duplicate);
        assert_eq!(again.sequence, first.sequence);
        assert_eq!(again.event, first.event);
        assert_eq!(again.prepared.wire, first.prepared.wire);
    }
    assert_eq!(bus.log.load(case_id).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_write_on_a_cached_case_reads_nothing_before_it_appends() -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let watcher = bus.nats.client().await?;
    let mut gets = watcher.subscribe("$JS.API.DIRECT.GET.>").await?;
    // A reply on the same connection proves the server has the subscription (`flush` only
    // empties the client's buffer).
    watcher.request("$JS.API.INFO", "".into()).await?;
    let (case_id, _) = bus.open_case().await?;
    bus.act_now(case_id, FRONT, hand_off("MOIC")).await?;
    bus.act_now(case_id, FRONT, hand_off("MOF")).await?;
    // A read of another case marks the end of the writes' reads.
    let marker = CaseId::generate();
    bus.log.load(marker).await?;

    let mut before_marker = Vec::new();
    loop {
        let get = next_message(&mut gets).await?;
        if get.subject.as_str().contains(&marker.to_string()) {
            break;
        }
        before_marker.push(get.subject.to_string());
    }
    // Only the opening read whether the case existed; both hand-offs used the snapshot.
    assert_eq!(before_marker.len(), 1, "{before_marker:?}");
    assert!(before_marker[0].contains(&case_id.to_string()));
    let versions = bus.versions(case_id).await?;
    assert_eq!(versions, [1, 2, 3]);
    Ok(())
}
