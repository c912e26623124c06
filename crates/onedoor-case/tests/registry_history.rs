//! Registry versions, how agencies end (merged, renamed, retired) and the names they bore:
//! what `registry diff`, `registry apply` and old case histories rely on.

mod registry_edits;
mod support;

use onedoor_case::{Action, AgencyCode, Ending, Refusal, Registry, RegistryVersion, ServiceCode};
use support::World;
use time::macros::date;

fn agency(code: &str) -> AgencyCode {
    AgencyCode::parse(code).expect("test code is valid")
}

/// MPI is merged into MOF, MOXA renamed to MNEW, MOLD retired; MOIC had two former names.
const HISTORY: &str = r#"
[registry]
name = "history test"
version = "2025-03.2"
effective_from = 2025-05-01
default_step_working_days = 5

[calendar]
utc_offset = "+07:00"
working_days = ["mon", "tue", "wed", "thu", "fri"]

[[agency]]
code = "MOIC"
kind = "ministry"
name_en = "Ministry of Industry and Commerce"
name_lo = "ກະຊວງອຸດສາຫະກຳ ແລະ ການຄ້າ"

[[agency.former_name]]
name_en = "Ministry of Commerce"
name_lo = "ກະຊວງການຄ້າ"
until = 2011-06-30

[[agency.former_name]]
name_en = "Ministry of Industry, Commerce and Handicraft"
name_lo = "ກະຊວງອຸດສາຫະກຳ, ການຄ້າ ແລະ ຫັດຖະກຳ"
until = 2021-03-31

[[agency]]
code = "MOF"
kind = "ministry"
name_en = "Ministry of Finance"
name_lo = "ກະຊວງການເງິນ"

[[agency]]
code = "MNEW"
kind = "ministry"
name_en = "Ministry of Culture and Tourism"
name_lo = "ກະຊວງວັດທະນະທຳ ແລະ ທ່ອງທ່ຽວ"

[[agency]]
code = "ODSC-VTE-SAYSETTHA"
kind = "front-office"
name_en = "ODSC Saysettha"
name_lo = "ສູນບໍລິການປະຕູດຽວ ເມືອງໄຊເສດຖາ"

[[agency]]
code = "MPI"
kind = "ministry"
name_en = "Ministry of Planning and Investment"
name_lo = "ກະຊວງແຜນການ ແລະ ການລົງທຶນ"
merged_into = "MOF"

[[agency]]
code = "MOXA"
kind = "ministry"
name_en = "Ministry of Information, Culture and Tourism"
name_lo = "ກະຊວງຖະແຫຼງຂ່າວ, ວັດທະນະທຳ ແລະ ທ່ອງທ່ຽວ"
renamed_to = "MNEW"

[[agency]]
code = "ODSC-OLD"
kind = "front-office"
name_en = "ODSC that closed"
name_lo = "ສູນບໍລິການປະຕູດຽວ"
retired = true

[[agency]]
code = "MOLD"
kind = "ministry"
name_en = "Ministry of Home Affairs"
name_lo = "ກະຊວງພາຍໃນ"
retired = true

[[service]]
code = "enterprise-registration"
name_en = "Enterprise registration"
name_lo = "ການຈົດທະບຽນວິສາຫະກິດ"

[[service.stage]]
[[service.stage.step]]
agency = "MOIC"
purpose_en = "registration"
purpose_lo = "ຈົດທະບຽນ"
working_days = 5
"#;

fn refused(from: &str, to: &str) -> String {
    registry_edits::refused(HISTORY, from, to)
}

#[test]
fn a_registry_with_a_version_and_effective_date_round_trips() {
    let registry = Registry::from_toml(HISTORY, "history.toml").expect("valid");
    assert_eq!(registry.version.to_string(), "2025-03.2");
    assert_eq!(
        registry.version,
        RegistryVersion::parse("2025-03.2").expect("valid")
    );
    assert_eq!(registry.effective_from, date!(2025 - 05 - 01));
    assert!(registry.summary().contains("version 2025-03.2"));
    assert!(registry.summary().contains("4 merged, renamed or retired"));
}

#[test]
fn the_shipped_registries_name_their_versions() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry");
    let old = Registry::load(&dir.join("lao-2021.toml")).expect("valid");
    let new = Registry::load(&dir.join("lao-2025.toml")).expect("valid");
    assert_eq!(old.version.to_string(), "2021-10");
    assert_eq!(new.version.to_string(), "2025-03");
    assert!(old.version < new.version && old.effective_from < new.effective_from);
    let mict = new.agency(&agency("MICT")).expect("listed");
    assert_eq!(mict.ending, Some(Ending::Renamed));
    let mpi = new.agency(&agency("MPI")).expect("listed");
    assert_eq!(mpi.ending, Some(Ending::Merged));
}

#[test]
fn each_way_of_ending_is_recorded_with_its_successor() {
    let registry = Registry::from_toml(HISTORY, "history.toml").expect("valid");
    let ending = |code: &str| {
        let a = registry.agency(&agency(code)).expect("listed");
        (a.ending, a.merged_into.clone(), a.is_active())
    };
    assert_eq!(
        ending("MPI"),
        (Some(Ending::Merged), Some(agency("MOF")), false)
    );
    assert_eq!(
        ending("MOXA"),
        (Some(Ending::Renamed), Some(agency("MNEW")), false)
    );
    assert_eq!(ending("MOLD"), (Some(Ending::Retired), None, false));
    assert_eq!(ending("MOF"), (None, None, true));
}

#[test]
fn an_agency_shows_the_name_it_bore_on_each_date() {
    let registry = Registry::from_toml(HISTORY, "history.toml").expect("valid");
    let moic = registry.agency(&agency("MOIC")).expect("listed");
    assert_eq!(
        moic.name_on(date!(2008 - 01 - 01)).0,
        "Ministry of Commerce"
    );
    assert_eq!(
        moic.name_on(date!(2011 - 06 - 30)).0,
        "Ministry of Commerce"
    );
    assert_eq!(
        moic.name_on(date!(2011 - 07 - 01)),
        (
            "Ministry of Industry, Commerce and Handicraft",
            "ກະຊວງອຸດສາຫະກຳ, ການຄ້າ ແລະ ຫັດຖະກຳ"
        )
    );
    assert_eq!(
        moic.name_on(date!(2021 - 04 - 01)).0,
        "Ministry of Industry and Commerce"
    );
}

#[test]
fn malformed_versions_are_refused_with_the_expected_form() {
    for bad in ["2025", "2025-3", "2025-13", "25-03", "2025-03.0", "latest"] {
        let message = refused(r#"version = "2025-03.2""#, &format!("version = {bad:?}"));
        assert!(message.contains("[registry]: version"), "{bad}: {message}");
    }
    let message = refused("version = \"2025-03.2\"\n", "");
    assert!(message.contains("version"), "{message}");
}

#[test]
fn a_version_later_than_its_effective_date_is_refused() {
    let message = refused(r#"version = "2025-03.2""#, r#"version = "2025-06""#);
    assert!(
        message.contains("version 2025-06 is later than effective_from 2025-05-01"),
        "{message}"
    );
}

#[test]
fn a_malformed_effective_date_is_refused() {
    let message = refused(
        "effective_from = 2025-05-01",
        "effective_from = \"May 2025\"",
    );
    assert!(message.contains("effective_from"), "{message}");
    let message = refused(
        "effective_from = 2025-05-01",
        "effective_from = 2025-05-01T10:00:00",
    );
    assert!(message.contains("not a plain date"), "{message}");
}

#[test]
fn a_successor_cycle_is_refused_naming_the_cycle() {
    let text = HISTORY.replacen(
        "name_lo = \"ກະຊວງການເງິນ\"",
        "name_lo = \"ກະຊວງການເງິນ\"\nmerged_into = \"MPI\"",
        1,
    );
    let message = Registry::from_toml(&text, "cycle.toml")
        .expect_err("cycle")
        .to_string();
    assert!(
        message.contains("successors form a cycle: MPI → MOF → MPI"),
        "{message}"
    );
    assert!(
        message.contains("successors form a cycle: MOF → MPI → MOF"),
        "{message}"
    );
}

#[test]
fn unknown_and_chained_successors_are_refused() {
    let message = refused(r#"merged_into = "MOF""#, r#"merged_into = "MOZZ""#);
    assert!(
        message.contains("merged_into names unknown agency MOZZ"),
        "{message}"
    );
    let message = refused(r#"renamed_to = "MNEW""#, r#"renamed_to = "MOZZ""#);
    assert!(
        message.contains("renamed_to names unknown agency MOZZ"),
        "{message}"
    );
    let message = refused(r#"merged_into = "MOF""#, r#"merged_into = "MOLD""#);
    assert!(
        message
            .contains("merged_into names MOLD, which has itself been merged, renamed or retired"),
        "{message}"
    );
    let message = refused(r#"renamed_to = "MNEW""#, r#"renamed_to = "MOXA""#);
    assert!(
        message.contains("renamed_to names the agency itself"),
        "{message}"
    );
}

#[test]
fn an_agency_that_ends_two_ways_is_refused() {
    let message = refused("retired = true", "retired = true\nmerged_into = \"MOF\"");
    assert!(
        message.contains("give at most one of merged_into, renamed_to and retired"),
        "{message}"
    );
}

#[test]
fn two_agencies_renamed_to_one_code_are_refused() {
    let message = refused(r#"merged_into = "MOF""#, r#"renamed_to = "MNEW""#);
    assert!(
        message.contains("a rename has one predecessor"),
        "{message}"
    );
}

#[test]
fn a_route_through_a_retired_or_renamed_agency_is_refused() {
    let message = refused(r#"agency = "MOIC""#, r#"agency = "MOLD""#);
    assert!(message.contains("MOLD, which was retired"), "{message}");
    let message = refused(r#"agency = "MOIC""#, r#"agency = "MOXA""#);
    assert!(
        message.contains("MOXA, which was renamed to MNEW"),
        "{message}"
    );
}

#[test]
fn former_names_out_of_order_or_still_in_use_are_refused() {
    let message = refused("until = 2021-03-31", "until = 2010-01-01");
    assert!(
        message.contains("list former names oldest first"),
        "{message}"
    );
    let message = refused("until = 2021-03-31", "until = 2025-05-01");
    assert!(
        message.contains("is not before effective_from 2025-05-01"),
        "{message}"
    );
    let message = refused("until = 2021-03-31", "until = \"March 2021\"");
    assert!(message.contains("until"), "{message}");
    let message = refused(
        "name_lo = \"ກະຊວງການຄ້າ\"",
        "name_lo = \"Ministry of Commerce\"",
    );
    assert!(message.contains("former name #1"), "{message}");
    assert!(message.contains("has no Lao script"), "{message}");
}

#[test]
fn a_retired_agency_is_given_no_new_task() {
    let registry = Registry::from_toml(HISTORY, "history.toml").expect("valid");
    let mut world = World::with_registry(registry);
    world.open("enterprise-registration");
    let refusal = world.hand_off("ODSC-VTE-SAYSETTHA", "MOLD").unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "agency MOLD was retired and takes no new tasks; hand off to the agency that does its work now"
    );
    assert!(matches!(refusal, Refusal::ReceiverRetired { .. }));
}

#[test]
fn a_retired_front_office_opens_no_case() {
    let registry = Registry::from_toml(HISTORY, "history.toml").expect("valid");
    let mut world = World::with_registry(registry);
    let open = Action::Open {
        service: ServiceCode::parse("enterprise-registration").expect("valid"),
        citizen_ref: "LA-ID-1".into(),
        summary: "a shop".into(),
        documents: vec![],
    };
    let refusal = world.act("ODSC-OLD", open).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "front office ODSC-OLD was retired and opens no new cases"
    );
}
