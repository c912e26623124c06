//! Read confinement on a real nats-server with the generated permissions: an agency reads a
//! case only through the case reader, and only once it is a party to it; every direct path to
//! the stream is refused by the broker itself; the tracker and the auditor read everything.

use std::time::Duration;

use async_nats::jetstream::consumer;
use onedoor_bus::read::read_subject;
use onedoor_bus::{BusError, CaseLog, STREAM_NAME};
use onedoor_case::{Action, AgencyCode, CaseId};
use onedoor_natsauth::{Denied, Identity, PermissionViolation};
use onedoor_testkit::SecuredBus;
use onedoor_testkit::registry::FRONT;
use onedoor_testkit::secured::REQUEST_TIMEOUT;
use tokio::sync::mpsc;

const VIOLATION_DEADLINE: Duration = Duration::from_secs(10);

fn code(text: &str) -> AgencyCode {
    AgencyCode::parse(text).expect("valid agency code")
}

/// Waits until the server reported a refusal of every subject prefix in `expected`.
async fn refused(
    violations: &mut mpsc::UnboundedReceiver<PermissionViolation>,
    expected: &[&str],
) -> anyhow::Result<()> {
    let mut missing: Vec<&str> = expected.to_vec();
    let deadline = tokio::time::Instant::now() + VIOLATION_DEADLINE;
    while !missing.is_empty() {
        let violation = tokio::time::timeout_at(deadline, violations.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no violation for {missing:?}"))?
            .ok_or_else(|| anyhow::anyhow!("the event channel closed"))?;
        assert_eq!(violation.denied, Denied::Publish, "{violation:?}");
        missing.retain(|prefix| !violation.subject.starts_with(prefix));
    }
    Ok(())
}

#[tokio::test]
async fn moic_reads_only_the_cases_it_was_sent() -> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    let mofs = bus.case_handed_to("MOF").await?;
    let moics = bus.case_handed_to("MOIC").await?;
    let mut moic = bus.connect(&Identity::Agency(code("MOIC"))).await?;
    let log = CaseLog::through_reader(moic.js.clone(), code("MOIC"), REQUEST_TIMEOUT);

    // Through the reader: its own case in full, MOF's not at all.
    assert_eq!(log.load(moics).await?.len(), 2);
    let err = log.load(mofs).await.expect_err("MOF's case is not MOIC's");
    assert!(matches!(err, BusError::NotParty { .. }), "{err}");
    // A case that does not exist is simply empty (a front office may open it).
    assert!(log.load(CaseId::generate()).await?.is_empty());

    // Every direct path is refused by the broker: last-by-subject (subject form), next-by-
    // subject and by-sequence (body form), the leader's get, stream info, a consumer of its
    // own over MOF's case.
    let stream = moic.js.get_stream_no_info(STREAM_NAME).await?;
    let filter = format!("onedoor.v1.case.{mofs}.>");
    let last = stream.direct_get_last_for_subject(filter.clone());
    let next = stream.direct_get_next_for_subject(filter.clone(), Some(1));
    let by_sequence = stream.direct_get(1);
    let leader = stream.get_raw_message(1);
    let info = moic.js.get_stream(STREAM_NAME);
    let peek = stream.create_consumer(consumer::pull::Config {
        durable_name: Some("moic-peeks".into()),
        filter_subject: filter.clone(),
        ..Default::default()
    });
    let expected = [
        "$JS.API.DIRECT.GET.ONEDOOR.onedoor.v1.case.",
        "$JS.API.DIRECT.GET.ONEDOOR",
        "$JS.API.STREAM.MSG.GET.ONEDOOR",
        "$JS.API.STREAM.INFO.ONEDOOR",
        "$JS.API.CONSUMER.CREATE.ONEDOOR.moic-peeks",
    ];
    let (last, next, by_sequence, leader, info, peek, reported) = tokio::join!(
        last,
        next,
        by_sequence,
        leader,
        info,
        peek,
        refused(&mut moic.violations, &expected)
    );
    reported?;
    assert!(last.is_err() && next.is_err() && by_sequence.is_err());
    assert!(leader.is_err() && info.is_err() && peek.is_err());

    // Asking the reader in another agency's name is refused by the broker too.
    let as_mof = moic.client.request(read_subject("MOF"), "".into());
    let (as_mof, reported) = tokio::join!(
        as_mof,
        refused(&mut moic.violations, &["onedoor.v1.read.MOF"])
    );
    reported?;
    assert!(as_mof.is_err());

    // The tracker and the auditor read both cases directly.
    for identity in [Identity::Tracker, Identity::Auditor] {
        let session = bus.connect(&identity).await?;
        let log = CaseLog::open(session.js.clone()).await?;
        assert_eq!(log.load(mofs).await?.len(), 2, "{identity}");
        assert_eq!(log.load(moics).await?.len(), 2, "{identity}");
    }
    Ok(())
}

#[tokio::test]
async fn a_case_becomes_readable_when_the_agency_is_sent_a_task_on_it() -> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    let case_id = bus.case_handed_to("MOF").await?;
    let moic_session = bus.connect(&Identity::Agency(code("MOIC"))).await?;
    let moic = CaseLog::through_reader(moic_session.js.clone(), code("MOIC"), REQUEST_TIMEOUT);
    assert!(matches!(
        moic.load(case_id).await,
        Err(BusError::NotParty { .. })
    ));

    // The front office sends MOIC a task on it too (in parallel with MOF's).
    let front_session = bus.connect(&Identity::Agency(code(FRONT))).await?;
    let front = CaseLog::through_reader(front_session.js.clone(), code(FRONT), REQUEST_TIMEOUT);
    let hand_off = Action::HandOff {
        to: code("MOIC"),
        instructions: "please check the premises".into(),
        documents: vec![],
        due_working_days: None,
    };
    let handed = front
        .execute(&bus.request(case_id, FRONT, hand_off), &bus.registry)
        .await?;
    moic.saw(case_id, handed.sequence);
    assert_eq!(moic.load(case_id).await?.len(), 3);
    Ok(())
}

#[tokio::test]
async fn a_forged_event_naming_itself_does_not_make_an_agency_a_party() -> anyhow::Result<()> {
    let bus = SecuredBus::provisioned().await?;
    let case_id = bus.case_handed_to("MOF").await?;
    let moic_session = bus.connect(&Identity::Agency(code("MOIC"))).await?;
    // MOIC may publish under its own name on any case: a message "from MOIC to MOF" on MOF's
    // case, which the rules refuse (MOIC holds no task there), is stored but quarantined.
    let subject = format!("onedoor.v1.case.{case_id}.MOIC.MOF");
    moic_session
        .js
        .publish(subject, "not an event".into())
        .await?
        .await?;
    let moic = CaseLog::through_reader(moic_session.js.clone(), code("MOIC"), REQUEST_TIMEOUT);
    let err = moic.load(case_id).await.expect_err("still not MOIC's case");
    assert!(matches!(err, BusError::NotParty { .. }), "{err}");
    Ok(())
}
