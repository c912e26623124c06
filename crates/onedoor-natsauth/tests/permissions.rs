//! The generated configuration on a real nats-server (the pinned 2.15.1): every agency speaks
//! only for itself, the auditor only reads, the tracker only consumes its own consumer, the
//! operator sets things up but cannot erase history, and strangers are refused.
//!
//! A refused publish or subscription does not fail on the client by itself: the server drops
//! it and sends `-ERR 'Permissions Violation …'`, and a request sent that way gets no answer
//! (it times out). So each refusal is checked twice: the operation fails (a short timeout), and
//! the server's violation for exactly that subject arrives in the client's events.

use std::time::Duration;

use async_nats::jetstream::{consumer, stream::DirectGetErrorKind};
use futures::StreamExt as _;
use onedoor_bus::drift::Change;
use onedoor_bus::inbox::{InboxEnsured, ensure_inbox_outcome};
use onedoor_bus::stuck::{Recorded, StuckRecord, record_stuck};
use onedoor_bus::{
    CaseLog, Inbox, InboxSettings, STREAM_NAME, STUCK_BUCKET, StreamSettings, StuckRecorder,
    ensure_inbox, list_stuck,
};
use onedoor_case::{Action, AgencyCode, CaseId};
use onedoor_natsauth::{Denied, Desired, Identity, PermissionViolation, connect_options};
use onedoor_testkit::secured::REQUEST_TIMEOUT;
use onedoor_testkit::{SecuredBus, Session};
use tokio::sync::mpsc;

/// How long to wait for the server's violation notice once the operation was sent.
const VIOLATION_DEADLINE: Duration = Duration::from_secs(10);

fn code(text: &str) -> AgencyCode {
    AgencyCode::parse(text).expect("valid agency code")
}

fn agency(text: &str) -> Identity {
    Identity::Agency(code(text))
}

/// What these tests ask of a session beyond the shared fixture.
trait Refusals {
    /// Asserts the server refused nothing so far (after a round trip, so any refusal of what
    /// was sent before has been reported).
    async fn nothing_refused(&mut self) -> anyhow::Result<()>;
}

impl Refusals for Session {
    async fn nothing_refused(&mut self) -> anyhow::Result<()> {
        self.client.flush().await?;
        // The flush's PONG is read after any -ERR the server sent before it; the event task
        // forwards it promptly, so a short grace covers the hand-over between tasks.
        if let Ok(Some(violation)) =
            tokio::time::timeout(Duration::from_millis(200), self.violations.recv()).await
        {
            anyhow::bail!("unexpected refusal: {violation:?}");
        }
        Ok(())
    }
}

/// Waits until the server has reported a refusal of every `(kind, subject prefix)`. A free
/// function over the receiver, so the operations being refused can borrow the session's
/// client at the same time.
async fn refused(
    violations: &mut mpsc::UnboundedReceiver<PermissionViolation>,
    expected: &[(Denied, &str)],
) -> anyhow::Result<()> {
    let mut missing: Vec<(Denied, &str)> = expected.to_vec();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + VIOLATION_DEADLINE;
    while !missing.is_empty() {
        let violation = tokio::time::timeout_at(deadline, violations.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no violation for {missing:?}; saw only {seen:?}"))?
            .ok_or_else(|| anyhow::anyhow!("the connection's event channel closed"))?;
        missing.retain(|(denied, prefix)| {
            !(violation.denied == *denied && violation.subject.starts_with(prefix))
        });
        seen.push(violation);
    }
    Ok(())
}

#[tokio::test]
async fn the_operator_creates_the_stream_every_inbox_and_the_stuck_bucket() -> anyhow::Result<()> {
    let bus = SecuredBus::start().await?;
    let operator = bus.connect(&Identity::Operator).await?;
    let desired = Desired::new(
        &bus.registry,
        StreamSettings::development(),
        &InboxSettings::default(),
    )?;

    let changes = onedoor_natsauth::provision(&operator.js, &desired, false).await?;

    // The stream, one inbox per agency, the bucket.
    assert_eq!(changes.len(), bus.registry.agencies.len() + 2);
    assert!(changes.iter().all(|(_, change)| *change == Change::Created));
    let stream = operator.js.get_stream(STREAM_NAME).await?;
    for agency in ["MOF", "MOIC", "MPI"] {
        stream.consumer_info(format!("inbox-{agency}")).await?;
    }
    operator.js.get_key_value(STUCK_BUCKET).await?;

    // Again: nothing changes (what `onedoor up` does on every start).
    let again = onedoor_natsauth::provision(&operator.js, &desired, false).await?;
    assert!(again.iter().all(|(_, change)| *change == Change::Unchanged));
    Ok(())
}

#[tokio::test]
async fn mof_cannot_publish_an_event_as_moic_but_its_own_events_are_stored() -> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    let mut mof = bus.connect(&agency("MOF")).await?;
    let case_id = CaseId::generate();

    let forged = format!("onedoor.v1.case.{case_id}.MOIC.MOF");
    let pending = mof.js.publish(forged.clone(), "forged".into()).await?;
    let expected = [(Denied::Publish, forged.as_str())];
    let (stored, reported) = tokio::join!(pending, refused(&mut mof.violations, &expected));
    reported?;
    assert!(
        stored.is_err(),
        "a forged event was acknowledged: {stored:?}"
    );

    let own = format!("onedoor.v1.case.{case_id}.MOF.MOIC");
    let ack = mof.js.publish(own.clone(), "own".into()).await?.await?;
    assert_eq!(ack.stream, STREAM_NAME);

    // Only MOF's own event is in the stream.
    let stream = bus.operator_js().await?.get_stream(STREAM_NAME).await?;
    let first = stream
        .direct_get_next_for_subject(format!("onedoor.v1.case.{case_id}.>"), None)
        .await?;
    assert_eq!(first.subject.as_str(), own);
    assert_eq!(first.sequence, ack.sequence);
    let none = stream
        .direct_get_next_for_subject(
            format!("onedoor.v1.case.{case_id}.>"),
            Some(ack.sequence + 1),
        )
        .await;
    assert!(matches!(
        none.map_err(|e| e.kind()),
        Err(DirectGetErrorKind::NotFound)
    ));
    Ok(())
}

#[tokio::test]
async fn mof_s_normal_flow_works_with_its_own_credentials() -> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    let case_id = bus.case_handed_to("MOF").await?;
    let mut mof = bus.connect(&agency("MOF")).await?;
    let settings = InboxSettings::default();

    // What the adapter does on start: the operator's consumer is found as wanted, so nothing
    // needs the create rights MOF does not have.
    let (_, ensured) = ensure_inbox_outcome(&mof.js, &code("MOF"), &settings).await?;
    assert_eq!(ensured, InboxEnsured::Unchanged);

    // Pull the hand-off from inbox-MOF, and acknowledge it (double ack: the server confirms).
    let mut inbox = Inbox::open(mof.js.clone(), &code("MOF"), &settings).await?;
    let delivery = tokio::time::timeout(Duration::from_secs(10), inbox.next()).await??;
    assert_eq!(delivery.stored.event.case_id, case_id);
    let event_id = delivery.stored.event.event_id;
    let acked = inbox.in_flight().ack(&[event_id]).await;
    assert_eq!(acked.acked, [event_id], "{acked:?}");

    // Accept the task: an event published as MOF, stored, and the case reads back in order
    // through the case reader (CaseLog::load).
    let log = CaseLog::through_reader(mof.js.clone(), code("MOF"), REQUEST_TIMEOUT);
    let written = log
        .execute(&bus.request(case_id, "MOF", Action::Accept), &bus.registry)
        .await?;
    assert!(!written.duplicate);
    let events = log.load(case_id).await?;
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].sequence, written.sequence);
    mof.nothing_refused().await?;

    let operator = bus.operator_js().await?;
    let info = operator
        .get_stream(STREAM_NAME)
        .await?
        .consumer_info("inbox-MOF")
        .await?;
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.ack_floor.stream_sequence, delivery.stream_sequence);
    Ok(())
}

#[tokio::test]
async fn mof_cannot_pull_peek_at_or_ack_moic_s_inbox() -> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    let mut mof = bus.connect(&agency("MOF")).await?;
    // One event waiting in MOIC's inbox.
    let case_id = CaseId::generate();
    mof.js
        .publish(format!("onedoor.v1.case.{case_id}.MOF.MOIC"), "x".into())
        .await?
        .await?;

    let next = "$JS.API.CONSUMER.MSG.NEXT.ONEDOOR.inbox-MOIC";
    let pull = mof
        .client
        .request(next, r#"{"batch":1,"expires":1000000000}"#.into());
    let stream = mof.js.get_stream_no_info(STREAM_NAME).await?;
    let bind = stream.get_consumer::<consumer::pull::Config>("inbox-MOIC");
    let (moic, defaults) = (code("MOIC"), InboxSettings::default());
    let ensure = ensure_inbox(&mof.js, &moic, &defaults);
    // Listening to MOIC's replies would show the events pulled by MOIC's adapter.
    let sniff = mof.client.subscribe("_INBOX_MOIC.>");
    let forged_ack = mof
        .client
        .publish("$JS.ACK.ONEDOOR.inbox-MOIC.1.1.1.0.0", "+ACK".into());
    let expected = [
        (Denied::Publish, next),
        (Denied::Publish, "$JS.API.CONSUMER.INFO.ONEDOOR.inbox-MOIC"),
        (Denied::Subscribe, "_INBOX_MOIC.>"),
        (Denied::Publish, "$JS.ACK.ONEDOOR.inbox-MOIC."),
    ];
    let (pull, bind, ensure, sniff, forged_ack, reported) = tokio::join!(
        pull,
        bind,
        ensure,
        sniff,
        forged_ack,
        refused(&mut mof.violations, &expected)
    );
    reported?;
    assert!(pull.is_err(), "pulled from inbox-MOIC: {pull:?}");
    assert!(bind.is_err(), "bound to inbox-MOIC");
    assert!(ensure.is_err(), "ensured inbox-MOIC");
    // Subscribing and publishing are fire-and-forget: the client accepts them, the server
    // refuses them (reported above).
    sniff?;
    forged_ack?;

    // MOIC's event is still waiting for MOIC, untouched.
    let info = bus
        .operator_js()
        .await?
        .get_stream(STREAM_NAME)
        .await?
        .consumer_info("inbox-MOIC")
        .await?;
    assert_eq!(info.num_pending, 1);
    assert_eq!(info.delivered.stream_sequence, 0);
    Ok(())
}

#[tokio::test]
async fn mof_cannot_purge_or_delete_the_stream_nor_create_change_or_delete_consumers()
-> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    let case_id = bus.case_handed_to("MOF").await?;
    let mut mof = bus.connect(&agency("MOF")).await?;
    // No stream info for an agency (it would list every case's subject): the calls below
    // need only the stream's name.
    let stream = mof.js.get_stream_no_info(STREAM_NAME).await?;

    let purge = stream.purge().into_future();
    let delete_stream = mof.js.delete_stream(STREAM_NAME);
    let delete_message = stream.delete_message(1);
    let update_stream = mof
        .js
        .update_stream(StreamSettings::development().stream_config());
    let create_consumer = stream.create_consumer(consumer::pull::Config {
        durable_name: Some("mof-reads-everything".into()),
        filter_subject: "onedoor.v1.case.>".into(),
        ..Default::default()
    });
    let delete_consumer = stream.delete_consumer("inbox-MOIC");
    // A change to its own inbox (the adapter would try this if its settings drifted).
    let bigger = InboxSettings {
        max_in_flight: 64,
        ..InboxSettings::default()
    };
    let mof_code = code("MOF");
    let change_own = ensure_inbox(&mof.js, &mof_code, &bigger);
    let expected = [
        (Denied::Publish, "$JS.API.STREAM.PURGE.ONEDOOR"),
        (Denied::Publish, "$JS.API.STREAM.DELETE.ONEDOOR"),
        (Denied::Publish, "$JS.API.STREAM.MSG.DELETE.ONEDOOR"),
        (Denied::Publish, "$JS.API.STREAM.UPDATE.ONEDOOR"),
        (
            Denied::Publish,
            "$JS.API.CONSUMER.CREATE.ONEDOOR.mof-reads-everything",
        ),
        (
            Denied::Publish,
            "$JS.API.CONSUMER.DELETE.ONEDOOR.inbox-MOIC",
        ),
        (Denied::Publish, "$JS.API.CONSUMER.CREATE.ONEDOOR.inbox-MOF"),
    ];
    let (
        purge,
        delete_stream,
        delete_message,
        update_stream,
        create_consumer,
        delete_consumer,
        change_own,
        reported,
    ) = tokio::join!(
        purge,
        delete_stream,
        delete_message,
        update_stream,
        create_consumer,
        delete_consumer,
        change_own,
        refused(&mut mof.violations, &expected)
    );
    reported?;
    assert!(purge.is_err());
    assert!(delete_stream.is_err());
    assert!(delete_message.is_err());
    assert!(update_stream.is_err());
    assert!(create_consumer.is_err());
    assert!(delete_consumer.is_err());
    assert!(change_own.is_err());

    // Everything is as the operator left it.
    let operator = bus.operator_js().await?;
    let mut stream = operator.get_stream(STREAM_NAME).await?;
    assert_eq!(stream.info().await?.state.messages, 2);
    assert!(stream.consumer_info("inbox-MOIC").await.is_ok());
    assert!(stream.consumer_info("mof-reads-everything").await.is_err());
    let own = stream.consumer_info("inbox-MOF").await?;
    assert_eq!(own.config.max_ack_pending, 32);
    assert_eq!(CaseLog::open(operator).await?.load(case_id).await?.len(), 2);
    Ok(())
}

fn stuck_record(agency: &str, stream_sequence: u64) -> StuckRecord {
    StuckRecord {
        agency: agency.into(),
        case_id: String::new(),
        event_id: String::new(),
        stream_sequence,
        deliveries: 8,
        recorded_at: time::OffsetDateTime::now_utc(),
        reason: "test".into(),
    }
}

#[tokio::test]
async fn an_agency_records_stuck_deliveries_under_its_own_keys_only() -> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    let mut mof = bus.connect(&agency("MOF")).await?;
    let store = mof.js.get_key_value(STUCK_BUCKET).await?;

    assert_eq!(
        record_stuck(&store, &stuck_record("MOF", 7)).await?,
        Recorded::New
    );
    // The key is taken: KV create reads it back (direct get of MOF's own key).
    assert_eq!(
        record_stuck(&store, &stuck_record("MOF", 7)).await?,
        Recorded::AlreadyRecorded
    );
    mof.nothing_refused().await?;

    // MOIC's keys are not MOF's to write. At the same time, the adapter's stuck recorder
    // starts with MOF's rights: it looks the operator's bucket up (never tries to create it),
    // so that start causes no refusal at all.
    let expected = [(Denied::Publish, "$KV.ONEDOOR_STUCK.MOIC.7")];
    let theirs = store.put("MOIC.7", "{}".into());
    let mof_code = code("MOF");
    let log = CaseLog::through_reader(mof.js.clone(), mof_code.clone(), REQUEST_TIMEOUT);
    let recorder = StuckRecorder::spawn(mof.js.clone(), &mof_code, log);
    let (theirs, recorder, reported) =
        tokio::join!(theirs, recorder, refused(&mut mof.violations, &expected));
    reported?;
    assert!(theirs.is_err());
    recorder?.shutdown().await;
    assert_eq!(list_stuck(&bus.operator_js().await?).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn the_auditor_reads_every_event_and_writes_nothing() -> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    let case_id = bus.case_handed_to("MOF").await?;
    let other_case = bus.case_handed_to("MOIC").await?;
    let mut auditor = bus.connect(&Identity::Auditor).await?;

    // Every message of the stream, in order, by "next message from sequence N" direct gets.
    let stream = auditor.js.get_stream(STREAM_NAME).await?;
    let mut read = Vec::new();
    let mut next = 1;
    loop {
        match stream
            .direct_get_next_for_subject("onedoor.v1.case.>", Some(next))
            .await
        {
            Ok(message) => {
                next = message.sequence + 1;
                read.push(message.sequence);
            }
            Err(err) if err.kind() == DirectGetErrorKind::NotFound => break,
            Err(err) => return Err(err.into()),
        }
    }
    assert_eq!(read, [1, 2, 3, 4]);
    let log = CaseLog::open(auditor.js.clone()).await?;
    assert_eq!(log.load(case_id).await?.len(), 2);
    assert_eq!(log.load(other_case).await?.len(), 2);
    auditor.nothing_refused().await?;

    let forged = format!("onedoor.v1.case.{case_id}.MOF.MOIC");
    let publish = async { auditor.js.publish(forged.clone(), "x".into()).await?.await };
    let pull = auditor.client.request(
        "$JS.API.CONSUMER.MSG.NEXT.ONEDOOR.inbox-MOF",
        r#"{"batch":1}"#.into(),
    );
    // What `onedoor audit verify --all` does today: an ordered consumer.
    let ordered = stream.create_consumer(consumer::pull::OrderedConfig {
        filter_subject: "onedoor.v1.case.>".into(),
        ..Default::default()
    });
    // Why that cannot be allowed: the same "ephemeral" subject takes a body naming an
    // existing consumer and updates it (here: MOF's inbox would see every event).
    let rewrite = auditor.client.request(
        "$JS.API.CONSUMER.CREATE.ONEDOOR",
        r#"{"stream_name":"ONEDOOR","action":"update","config":{"name":"inbox-MOF","filter_subject":"onedoor.v1.case.>","ack_policy":"explicit","deliver_policy":"all"}}"#.into(),
    );
    let expected = [
        (Denied::Publish, forged.as_str()),
        (
            Denied::Publish,
            "$JS.API.CONSUMER.MSG.NEXT.ONEDOOR.inbox-MOF",
        ),
        (Denied::Publish, "$JS.API.CONSUMER.CREATE.ONEDOOR"),
    ];
    let (publish, pull, ordered, rewrite, reported) = tokio::join!(
        publish,
        pull,
        ordered,
        rewrite,
        refused(&mut auditor.violations, &expected)
    );
    reported?;
    assert!(publish.is_err());
    assert!(pull.is_err());
    assert!(ordered.is_err());
    assert!(rewrite.is_err());
    let operator = bus.operator_js().await?;
    let mut stream = operator.get_stream(STREAM_NAME).await?;
    let inbox = stream.consumer_info("inbox-MOF").await?;
    assert_eq!(inbox.config.filter_subject, "onedoor.v1.case.*.*.MOF");
    let messages = stream.info().await?.state.messages;
    assert_eq!(messages, 4);
    Ok(())
}

#[tokio::test]
async fn the_tracker_consumes_only_its_own_consumer_and_reads_stuck_records() -> anyhow::Result<()>
{
    let bus = SecuredBus::provisioned().await?;
    bus.case_handed_to("MOF").await?;
    // The operator makes the tracker's durable consumer (the tracker crate owns its config).
    let operator = bus.operator_js().await?;
    operator
        .get_stream(STREAM_NAME)
        .await?
        .create_consumer(consumer::pull::Config {
            durable_name: Some("tracker".into()),
            filter_subject: "onedoor.v1.case.>".into(),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let mof = bus.connect(&agency("MOF")).await?;
    let mof_store = mof.js.get_key_value(STUCK_BUCKET).await?;
    record_stuck(&mof_store, &stuck_record("MOF", 2)).await?;

    let mut tracker = bus.connect(&Identity::Tracker).await?;
    let stream = tracker.js.get_stream(STREAM_NAME).await?;
    let consumer = stream
        .get_consumer::<consumer::pull::Config>("tracker")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut batch = consumer.fetch().max_messages(10).messages().await?;
    let mut seen = 0;
    while let Some(message) = batch.next().await {
        message
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .double_ack()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        seen += 1;
    }
    assert_eq!(seen, 2);
    let stuck = list_stuck(&tracker.js).await?;
    assert_eq!(stuck.len(), 1);
    assert_eq!(stuck[0].key(), "MOF.2");
    tracker.nothing_refused().await?;

    let forged = "onedoor.v1.case.01JDQ3Z6Y8K9M2N4P5R7S9T1V3.MOF.MOIC";
    let publish = async { tracker.js.publish(forged, "x".into()).await?.await };
    let pull = tracker.client.request(
        "$JS.API.CONSUMER.MSG.NEXT.ONEDOOR.inbox-MOF",
        r#"{"batch":1}"#.into(),
    );
    // Its own consumers it may remake (rebuild); an agency's inbox it may not touch.
    let delete = stream.delete_consumer("inbox-MOF");
    let expected = [
        (Denied::Publish, forged),
        (
            Denied::Publish,
            "$JS.API.CONSUMER.MSG.NEXT.ONEDOOR.inbox-MOF",
        ),
        (Denied::Publish, "$JS.API.CONSUMER.DELETE.ONEDOOR.inbox-MOF"),
    ];
    let (publish, pull, delete, reported) = tokio::join!(
        publish,
        pull,
        delete,
        refused(&mut tracker.violations, &expected)
    );
    reported?;
    assert!(publish.is_err());
    assert!(pull.is_err());
    assert!(delete.is_err());
    Ok(())
}

#[tokio::test]
async fn the_operator_manages_consumers_but_cannot_erase_history_or_speak_for_an_agency()
-> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    bus.case_handed_to("MOF").await?;
    let mut operator = bus.connect(&Identity::Operator).await?;
    let stream = operator.js.get_stream(STREAM_NAME).await?;

    // Consumers come and go (a tracker rebuild deletes and re-creates its consumer).
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("scratch".into()),
            ..Default::default()
        })
        .await?;
    stream.delete_consumer("scratch").await?;
    operator.nothing_refused().await?;

    let purge = stream.purge().into_future();
    let delete = operator.js.delete_stream(STREAM_NAME);
    let forged = "onedoor.v1.case.01JDQ3Z6Y8K9M2N4P5R7S9T1V3.MOF.MOIC";
    let publish = async { operator.js.publish(forged, "x".into()).await?.await };
    let pull = operator.client.request(
        "$JS.API.CONSUMER.MSG.NEXT.ONEDOOR.inbox-MOF",
        r#"{"batch":1}"#.into(),
    );
    let expected = [
        (Denied::Publish, "$JS.API.STREAM.PURGE.ONEDOOR"),
        (Denied::Publish, "$JS.API.STREAM.DELETE.ONEDOOR"),
        (Denied::Publish, forged),
        (
            Denied::Publish,
            "$JS.API.CONSUMER.MSG.NEXT.ONEDOOR.inbox-MOF",
        ),
    ];
    let (purge, delete, publish, pull, reported) = tokio::join!(
        purge,
        delete,
        publish,
        pull,
        refused(&mut operator.violations, &expected)
    );
    reported?;
    assert!(purge.is_err());
    assert!(delete.is_err());
    assert!(publish.is_err());
    assert!(pull.is_err());

    // The operator may update the stream (provision changes its replicas), but the server
    // refuses to lift the protections against erasing it.
    let mut unprotected = StreamSettings::development().stream_config();
    unprotected.deny_purge = false;
    let lifted = operator.js.update_stream(unprotected).await;
    assert!(lifted.is_err(), "deny_purge was lifted: {lifted:?}");
    assert!(
        operator
            .js
            .get_stream(STREAM_NAME)
            .await?
            .cached_info()
            .config
            .deny_purge,
        "the stream still denies purges"
    );
    Ok(())
}

/// The shipped (2025) registry merges MPI into MOF: the operator may publish the transfer of
/// MPI's open tasks on MPI's subject to MOF, and on no other case subject.
#[tokio::test]
async fn the_operator_may_publish_only_the_transfers_the_registry_calls_for() -> anyhow::Result<()>
{
    let bus = SecuredBus::provisioned().await?;
    let mut operator = bus.connect(&Identity::Operator).await?;
    let case = "01JDQ3Z6Y8K9M2N4P5R7S9T1V3";
    operator
        .js
        .publish(format!("onedoor.v1.case.{case}.MPI.MOF"), "x".into())
        .await?
        .await?;
    operator.nothing_refused().await?;

    let elsewhere = format!("onedoor.v1.case.{case}.MPI.MOIC");
    let current = format!("onedoor.v1.case.{case}.MOF.MOIC");
    let first = async {
        operator
            .js
            .publish(elsewhere.clone(), "x".into())
            .await?
            .await
    };
    let second = async {
        operator
            .js
            .publish(current.clone(), "x".into())
            .await?
            .await
    };
    let expected = [
        (Denied::Publish, elsewhere.as_str()),
        (Denied::Publish, current.as_str()),
    ];
    let (first, second, reported) =
        tokio::join!(first, second, refused(&mut operator.violations, &expected));
    reported?;
    assert!(first.is_err());
    assert!(second.is_err());
    Ok(())
}

#[tokio::test]
async fn a_connection_without_credentials_or_with_an_unknown_nkey_is_refused() -> anyhow::Result<()>
{
    let bus = SecuredBus::start().await?;

    let anonymous = async_nats::ConnectOptions::new()
        .connect(bus.nats.url())
        .await;
    assert_eq!(
        anonymous.map(|_| ()).map_err(|e| e.kind()),
        Err(async_nats::ConnectErrorKind::AuthorizationViolation)
    );

    let stranger = onedoor_natsauth::Seed::generate()?;
    let unknown = connect_options(&agency("MOF"), &stranger)
        .connect(bus.nats.url())
        .await;
    assert_eq!(
        unknown.map(|_| ()).map_err(|e| e.kind()),
        Err(async_nats::ConnectErrorKind::AuthorizationViolation)
    );

    // The real MOF gets in.
    bus.connect(&agency("MOF")).await?;
    Ok(())
}

/// Who answers a published registry, as its NATS identity may.
fn answers_as(identity: &Identity) -> String {
    match identity {
        Identity::Agency(code) => code.to_string(),
        Identity::Tracker => "tracker".to_owned(),
        _ => "reader".to_owned(),
    }
}

#[tokio::test]
async fn every_process_follows_the_published_registry_and_only_the_operator_writes_it()
-> anyhow::Result<()> {
    use onedoor_bus::Signer;
    use onedoor_bus::registry_feed::{
        ACK_SUBJECT_PREFIX, Ack, LiveRegistry, Publication, REGISTRY_BUCKET, follow, publish,
    };
    use onedoor_testkit::registry::{key_file, shipped_text, with_key_file};

    let bus = SecuredBus::provisioned().await?;
    let signer = Signer::generate("OPERATOR-TEST-01");
    let keys = key_file(&[], Some(&signer));
    let text = shipped_text("lao-2025.toml");
    let running = std::sync::Arc::new(with_key_file(&text, &keys));
    let correction = text
        .replace("version = \"2025-03\"", "version = \"2025-03.1\"")
        .replace("effective_from = 2025-05-01", "effective_from = 2025-06-01");
    let operator = bus.connect(&Identity::Operator).await?;
    let mut acks = operator
        .client
        .subscribe(format!("{ACK_SUBJECT_PREFIX}.>"))
        .await?;
    operator.client.flush().await?;

    let mut processes = Vec::new();
    for identity in [agency("MOF"), Identity::Tracker, Identity::Reader] {
        let session = bus.connect(&identity).await?;
        let live = LiveRegistry::new(running.clone());
        let follower = follow(session.js.clone(), live.clone(), &answers_as(&identity));
        processes.push((session, live, follower));
    }
    let revision = publish(
        &operator.js,
        &Publication::signed(&correction, &keys, &signer),
    )
    .await?;
    let mut answered = Vec::new();
    while answered.len() < processes.len() {
        let message = tokio::time::timeout(onedoor_testkit::DEADLINE, acks.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("ack subscription ended"))?;
        let ack: Ack = serde_json::from_slice(&message.payload)?;
        assert_eq!((ack.revision, ack.outcome.as_str()), (revision, "moved"));
        answered.push(message.subject.to_string());
    }
    answered.sort();
    assert_eq!(
        answered,
        [
            "onedoor.v1.registry.ack.MOF",
            "onedoor.v1.registry.ack.reader",
            "onedoor.v1.registry.ack.tracker",
        ]
    );
    for (session, live, _) in &mut processes {
        assert_eq!(live.current().version.to_string(), "2025-03.1");
        session.nothing_refused().await?;
    }

    // An agency may read the bucket but neither write it nor answer for another agency.
    let mut mof = bus.connect(&agency("MOF")).await?;
    let store = mof.js.get_key_value(REGISTRY_BUCKET).await?;
    let expected = [
        (Denied::Publish, "$KV.ONEDOOR_REGISTRY.current"),
        (Denied::Publish, "onedoor.v1.registry.ack.MOIC"),
    ];
    let forged = Publication::signed(&correction, &keys, &Signer::generate("MOF-TEST-01"));
    let put = store.put("current", forged.encode().into());
    let answer = mof
        .client
        .publish("onedoor.v1.registry.ack.MOIC", "{}".into());
    let (put, answer, reported) =
        tokio::join!(put, answer, refused(&mut mof.violations, &expected));
    reported?;
    assert!(put.is_err(), "an agency wrote the registry");
    answer?;
    let operator_store = operator.js.get_key_value(REGISTRY_BUCKET).await?;
    assert_eq!(
        operator_store
            .entry("current")
            .await?
            .map(|entry| entry.revision),
        Some(revision)
    );
    Ok(())
}
