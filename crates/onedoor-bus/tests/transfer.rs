//! `task_transferred` against a real stream: a task opened under the 2021 registry moves, by
//! an operator-signed event on the old holder's subject, to its 2025 successor; every reader
//! believes it, and the same event signed by the old agency itself is quarantined. And the
//! other side of a merger: an answer to a task the ended agency handed out reaches its
//! successor's inbox.

use std::path::PathBuf;

use onedoor_bus::transfer::transfer_request;
use onedoor_bus::verify::{QuarantineReason, RawMessage, verify_history};
use onedoor_bus::{
    AuditProblem, CaseLog, Signer, StreamSettings, WriteRequest, ensure_stream, verify_case,
};
use onedoor_case::{
    Action, AgencyCode, AgencyKey, CaseId, CaseState, EventBody, Registry, ServiceCode,
};
use onedoor_testkit::TestNats;

const FRONT: &str = "ODSC-VTE-SAYSETTHA";

fn code(text: &str) -> AgencyCode {
    AgencyCode::parse(text).expect("valid code")
}

fn key(signer: &Signer) -> AgencyKey {
    AgencyKey {
        id: signer.key_id().to_owned(),
        public_key: signer.public_key(),
        valid_from: time::macros::date!(2026 - 01 - 01),
        valid_until: None,
    }
}

fn load(file: &str) -> Registry {
    Registry::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/registry")
            .join(file),
    )
    .expect("registry")
}

struct Keys {
    front: Signer,
    mpi: Signer,
    moic: Signer,
    operator: Signer,
}

/// The same agency keys in both registries (they live in the agencies' entries, which 2025
/// keeps); the operator key only in 2025's.
fn registries(keys: &Keys) -> (Registry, Registry) {
    let (mut old, mut new) = (load("lao-2021.toml"), load("lao-2025.toml"));
    for registry in [&mut old, &mut new] {
        registry
            .add_key(&code(FRONT), key(&keys.front))
            .expect("front key");
        registry
            .add_key(&code("MPI"), key(&keys.mpi))
            .expect("MPI key");
        registry
            .add_key(&code("MOIC"), key(&keys.moic))
            .expect("MOIC key");
    }
    new.add_operator_key(key(&keys.operator))
        .expect("operator key");
    (old, new)
}

fn request(case_id: CaseId, agency: &str, action: Action) -> WriteRequest {
    onedoor_testkit::bus::write_request(case_id, agency, action, time::OffsetDateTime::now_utc())
}

/// A case handed to MPI, which accepted it, under the 2021 registry.
async fn held_by_mpi(
    js: &async_nats::jetstream::Context,
    keys: &Keys,
    old: &Registry,
) -> anyhow::Result<CaseId> {
    let front = CaseLog::open(js.clone())
        .await?
        .with_signer(keys.front.clone());
    let mpi = CaseLog::open(js.clone())
        .await?
        .with_signer(keys.mpi.clone());
    let case_id = CaseId::generate();
    let open = Action::Open {
        service: ServiceCode::parse("investment-licence")?,
        citizen_ref: "R".into(),
        summary: "s".into(),
        documents: vec![],
    };
    front.execute(&request(case_id, FRONT, open), old).await?;
    let hand_off = Action::HandOff {
        to: code("MPI"),
        instructions: "x".into(),
        documents: vec![],
        due_working_days: None,
    };
    front
        .execute(&request(case_id, FRONT, hand_off), old)
        .await?;
    mpi.execute(&request(case_id, "MPI", Action::Accept), old)
        .await?;
    Ok(case_id)
}

fn raw(events: &[onedoor_bus::StoredEvent], subjects: &[String]) -> Vec<RawMessage> {
    events
        .iter()
        .zip(subjects)
        .map(|(stored, subject)| RawMessage {
            sequence: stored.sequence,
            subject: subject.clone(),
            payload: stored.payload.clone(),
        })
        .collect()
}

fn subjects(events: &[onedoor_bus::StoredEvent]) -> Vec<String> {
    events
        .iter()
        .map(|s| onedoor_bus::subjects::event_subject(&s.event).expect("subject"))
        .collect()
}

/// A stream, fresh keys, both registries, and a case MPI holds under 2021.
async fn set_up() -> anyhow::Result<(
    TestNats,
    async_nats::jetstream::Context,
    Keys,
    (Registry, Registry),
    CaseId,
)> {
    let nats = TestNats::start().await?;
    let js = nats.jetstream().await?;
    ensure_stream(&js, &StreamSettings::development()).await?;
    let keys = Keys {
        front: Signer::generate("FRONT-2026-01"),
        mpi: Signer::generate("MPI-2026-01"),
        moic: Signer::generate("MOIC-2026-01"),
        operator: Signer::generate("OPERATOR-2026-01"),
    };
    let registries = registries(&keys);
    let case_id = held_by_mpi(&js, &keys, &registries.0).await?;
    Ok((nats, js, keys, registries, case_id))
}

#[tokio::test]
async fn an_operator_signed_transfer_moves_the_task_and_verifies() -> anyhow::Result<()> {
    let (_nats, js, keys, (old, new), case_id) = set_up().await?;

    let operator = CaseLog::open(js.clone())
        .await?
        .with_signer(keys.operator.clone());
    let transfer = transfer_request(case_id, &code("MPI"), &new, time::OffsetDateTime::now_utc());
    let written = operator.execute(&transfer, &new).await?;
    assert!(!written.duplicate);
    assert!(matches!(written.event.body, EventBody::Transferred { .. }));
    assert_eq!(written.prepared.wire.key_id, "OPERATOR-2026-01");
    // Running the change again writes nothing twice, even from a fresh log (no cache).
    let again = transfer_request(case_id, &code("MPI"), &new, time::OffsetDateTime::now_utc());
    assert_eq!(again.event_id, transfer.event_id);
    let rerun = CaseLog::open(js.clone())
        .await?
        .with_signer(keys.operator.clone())
        .execute(&again, &new)
        .await?;
    assert!(rerun.duplicate);

    let events = CaseLog::open(js.clone()).await?.load(case_id).await?;
    assert_eq!(events.len(), 4);
    let subjects = subjects(&events);
    assert_eq!(subjects[3], format!("onedoor.v1.case.{case_id}.MPI.MOF"));
    let state = verified_under(case_id, &events, &subjects, &new)?;
    assert!(state.tasks.contains_key(&code("MOF")));
    assert!(!state.tasks.contains_key(&code("MPI")));

    // Under the 2021 registry nothing called for it: the audit names the event.
    let failure = verify_case(&events, &old).expect_err("2021 lists no operator key");
    assert_eq!(failure.version, 4);
    Ok(())
}

#[tokio::test]
async fn a_transfer_signed_by_the_old_agency_itself_is_quarantined() -> anyhow::Result<()> {
    let (_nats, js, keys, (_, new), case_id) = set_up().await?;

    // MPI's own credentials may publish on its subject; its key may not sign a transfer.
    let mpi = CaseLog::open(js.clone())
        .await?
        .with_signer(keys.mpi.clone());
    mpi.execute(&request(case_id, "MPI", Action::Transfer), &new)
        .await?;
    let events = CaseLog::open(js.clone()).await?.load(case_id).await?;
    let verified = verify_history(case_id, raw(&events, &subjects(&events)), Some(&new));
    assert_eq!(verified.accepted.len(), 3);
    assert_eq!(verified.quarantined.len(), 1);
    assert!(
        matches!(
            verified.quarantined[0].reason,
            QuarantineReason::Signature(AuditProblem::UnknownKey { .. })
        ),
        "{}",
        verified.quarantined[0]
    );
    Ok(())
}

/// Under 2021 MPI hands the case on to MOIC and finishes its own part; under 2025 MOIC's
/// acceptance and completion, decided without naming a receiver, go to MOF: on MOF's subject,
/// into MOF's inbox, believed by every reader; the same answer under 2021 would go to MPI.
#[tokio::test]
async fn an_answer_to_a_task_a_merged_agency_handed_out_reaches_its_successor() -> anyhow::Result<()>
{
    let (_nats, js, keys, (old, new), case_id) = set_up().await?;
    let mpi = CaseLog::open(js.clone())
        .await?
        .with_signer(keys.mpi.clone());
    let hand_on = Action::HandOff {
        to: code("MOIC"),
        instructions: "review".into(),
        documents: vec![],
        due_working_days: None,
    };
    mpi.execute(&request(case_id, "MPI", hand_on), &old).await?;
    let complete = Action::Complete {
        outcome: "promoted".into(),
        note: String::new(),
        documents: vec![],
    };
    mpi.execute(&request(case_id, "MPI", complete.clone()), &old)
        .await?;

    let moic = CaseLog::open(js.clone())
        .await?
        .with_signer(keys.moic.clone())
        .with_registry(std::sync::Arc::new(new.clone()));
    let accepted = moic
        .execute(&request(case_id, "MOIC", Action::Accept), &new)
        .await?;
    assert_eq!(accepted.event.to, Some(code("MOF")));
    let completed = moic
        .execute(&request(case_id, "MOIC", complete), &new)
        .await?;
    assert_eq!(completed.event.to, Some(code("MOF")));

    let events = CaseLog::open(js.clone()).await?.load(case_id).await?;
    let subjects = subjects(&events);
    assert_eq!(subjects[5], format!("onedoor.v1.case.{case_id}.MOIC.MOF"));
    let state = verified_under(case_id, &events, &subjects, &new)?;
    assert!(state.tasks.is_empty(), "MPI's and MOIC's tasks ended");

    // MOF's inbox: exactly the two answers, nothing else was ever addressed to it.
    let mut inbox = onedoor_bus::Inbox::open(
        js.clone(),
        &code("MOF"),
        &onedoor_bus::InboxSettings::default(),
    )
    .await?;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let delivery = tokio::time::timeout(onedoor_testkit::DEADLINE, inbox.next()).await??;
        seen.push(delivery.stored.event.event_id);
    }
    assert_eq!(
        seen,
        vec![accepted.event.event_id, completed.event.event_id]
    );

    // A reader still on 2021 does not know MOF as MPI's successor: it refuses the answer.
    let failure = verify_case(&events, &old).expect_err("MPI is current in 2021");
    assert_eq!(failure.version, 6);
    Ok(())
}

/// Checks `events` as the audit and every reader do under `registry`, with nothing
/// quarantined, and returns the case they fold to.
fn verified_under(
    case_id: CaseId,
    events: &[onedoor_bus::StoredEvent],
    subjects: &[String],
    registry: &Registry,
) -> anyhow::Result<CaseState> {
    verify_case(events, registry)?;
    let verified = verify_history(case_id, raw(events, subjects), Some(registry));
    assert!(
        verified.quarantined.is_empty(),
        "{:?}",
        verified.quarantined
    );
    Ok(CaseState::fold(verified.accepted.iter().map(|s| &s.event))?.expect("case"))
}
