//! Searching by the names history keeps: a case handled by MPI under the 2021 registry is
//! found, once the tracker runs the 2025 registry (MPI merged into MOF), by MPI's code, by
//! its name, by its Lao name, and by the name of MOF, which does its work today; a name of no
//! agency on the case finds nothing, and without the registry only the code finds it.

use std::path::PathBuf;
use std::sync::Arc;

use onedoor_case::{Action, AgencyCode, CaseId, Registry};
use onedoor_testkit::on_both_databases;
use onedoor_testkit::{FRONT, TestBus, TestDb};
use onedoor_tracker::Store;

use crate::deferred::found;

fn registry(name: &str) -> Registry {
    Registry::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/registry")
            .join(name),
    )
    .expect("shipped registry")
}

/// Under 2021: the front office opens a case and hands it to `agency`, which accepts it.
async fn handled_in_2021(bus: &TestBus, old: &Registry, agency: &str) -> anyhow::Result<CaseId> {
    let case_id = CaseId::generate();
    let open = Action::Open {
        service: onedoor_case::ServiceCode::parse("investment-licence")?,
        citizen_ref: format!("R-{}", agency.len()),
        summary: "names".into(),
        documents: vec![],
    };
    let hand_off = Action::HandOff {
        to: AgencyCode::parse(agency)?,
        instructions: "x".into(),
        documents: vec![],
        due_working_days: None,
    };
    for (who, action) in [(FRONT, open), (FRONT, hand_off), (agency, Action::Accept)] {
        bus.log
            .execute(&bus.request(case_id, who, action), old)
            .await?;
    }
    Ok(case_id)
}

async fn a_case_handled_by_mpi_is_found_by_its_names_after_the_merger(
    db: TestDb,
) -> anyhow::Result<()> {
    let bus = TestBus::start().await?;
    let old = registry("lao-2021.toml");
    let by_mpi = handled_in_2021(&bus, &old, "MPI").await?.to_string();
    let by_moh = handled_in_2021(&bus, &old, "MOH").await?.to_string();
    let plain = Store::connect(&db.url()).await?;
    for case_id in [&by_mpi, &by_moh] {
        for stored in bus.log.load(CaseId::parse(case_id)?).await? {
            plain.apply(&stored).await?;
        }
    }
    let store = plain
        .clone()
        .with_names(Arc::new(registry("lao-2025.toml")));

    for text in [
        "MPI",
        "Planning and Investment",
        "ກະຊວງແຜນການ",
        "Ministry of Finance",
    ] {
        assert_eq!(
            found(&store, text).await?,
            std::slice::from_ref(&by_mpi),
            "{text:?}"
        );
    }
    assert_eq!(
        found(&store, "Ministry of Health").await?,
        std::slice::from_ref(&by_moh)
    );
    assert!(found(&store, "Ministry of Justice").await?.is_empty());
    // Without a registry the store knows codes only.
    assert_eq!(found(&plain, "mpi").await?, [by_mpi]);
    assert!(found(&plain, "Planning and Investment").await?.is_empty());
    Ok(())
}

on_both_databases!(a_case_handled_by_mpi_is_found_by_its_names_after_the_merger);
