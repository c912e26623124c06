//! The shipped registries load, and each kind of broken registry is refused with a message that
//! names the file, the entry and the problem.

mod registry_edits;

use std::path::PathBuf;

use onedoor_case::{AgencyCode, AgencyKind, Registry, ServiceCode, StepAgency};

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/registry")
        .join(name)
}

fn agency(code: &str) -> AgencyCode {
    AgencyCode::parse(code).expect("test code is valid")
}

const SERVICES: [&str; 6] = [
    "enterprise-registration",
    "construction-permit",
    "land-title-transfer",
    "vehicle-registration",
    "investment-licence",
    "foreign-worker-permit",
];

#[test]
fn the_2025_registry_loads_with_thirteen_ministries_and_the_merges() {
    let registry =
        Registry::load(&shipped("lao-2025.toml")).expect("shipped 2025 registry is valid");
    let ministries = registry
        .active_agencies()
        .filter(|a| a.kind == AgencyKind::Ministry)
        .count();
    assert_eq!(ministries, 13);
    assert!(
        registry
            .active_agencies()
            .filter(|a| a.kind == AgencyKind::FrontOffice)
            .count()
            >= 5
    );
    for (old, new) in [
        ("MAF", "MAE"),
        ("MONRE", "MAE"),
        ("MEM", "MOIC"),
        ("MPI", "MOF"),
        ("MICT", "MCT"),
        ("MOHA", "PMO"),
    ] {
        assert_eq!(
            registry.successor_of(&agency(old)),
            Some(&agency(new)),
            "{old} should now be {new}"
        );
    }
    for code in SERVICES {
        assert!(
            registry
                .service(&ServiceCode::parse(code).expect("valid"))
                .is_some(),
            "missing {code}"
        );
    }
}

#[test]
fn the_2021_registry_loads_with_seventeen_ministries() {
    let registry =
        Registry::load(&shipped("lao-2021.toml")).expect("shipped 2021 registry is valid");
    let ministries = registry
        .active_agencies()
        .filter(|a| a.kind == AgencyKind::Ministry)
        .count();
    assert_eq!(ministries, 17);
    assert_eq!(
        registry
            .agencies
            .values()
            .filter(|a| !a.is_active())
            .count(),
        0
    );
    for code in SERVICES {
        assert!(
            registry
                .service(&ServiceCode::parse(code).expect("valid"))
                .is_some(),
            "missing {code}"
        );
    }
}

#[test]
fn construction_permit_reviews_run_in_parallel_before_fire_safety() {
    let registry = Registry::load(&shipped("lao-2025.toml")).expect("valid");
    let service = registry
        .service(&ServiceCode::parse("construction-permit").expect("valid"))
        .expect("present");
    let first: Vec<&str> = service.route[0]
        .steps
        .iter()
        .flat_map(|s| s.agency.codes())
        .map(|c| c.as_str())
        .collect();
    assert_eq!(first, ["MPWT", "MAE"]);
    assert_eq!(
        service.route[1].steps[0].agency,
        StepAgency::Fixed(agency("MOPS"))
    );
}

#[test]
fn lao_new_year_is_not_a_working_day_but_the_monday_after_is() {
    let registry = Registry::load(&shipped("lao-2025.toml")).expect("valid");
    let calendar = &registry.calendar;
    let pi_mai = time::macros::date!(2026 - 04 - 14);
    assert!(!calendar.is_working_day(pi_mai));
    assert_eq!(
        calendar.holiday_on(pi_mai).map(|h| h.name_lo.as_str()),
        Some("ບຸນປີໃໝ່ລາວ")
    );
    assert!(
        !calendar.is_working_day(time::macros::date!(2026 - 04 - 18)),
        "a Saturday"
    );
    assert!(
        calendar.is_working_day(time::macros::date!(2026 - 04 - 20)),
        "a plain Monday"
    );
}

/// A small valid registry; each bad-file test breaks one thing in it.
const VALID: &str = r#"
[registry]
name = "test"
version = "2025-03"
effective_from = 2025-05-01
default_step_working_days = 5

[calendar]
utc_offset = "+07:00"
working_days = ["mon", "tue", "wed", "thu", "fri"]

[[calendar.holiday]]
date = 2026-12-02
name_en = "National Day"
name_lo = "ວັນຊາດ"

[[agency]]
code = "MOIC"
kind = "ministry"
name_en = "Ministry of Industry and Commerce"
name_lo = "ກະຊວງອຸດສາຫະກຳ ແລະ ການຄ້າ"

[[agency]]
code = "MOF"
kind = "ministry"
name_en = "Ministry of Finance"
name_lo = "ກະຊວງການເງິນ"

[[agency]]
code = "ODSC-VTE-SAYSETTHA"
kind = "front-office"
name_en = "ODSC Saysettha"
name_lo = "ສູນບໍລິການປະຕູດຽວ ເມືອງໄຊເສດຖາ"

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

[[service.stage]]
[[service.stage.step]]
agency = "MOF"
purpose_en = "tax number"
purpose_lo = "ອາກອນ"
working_days = 3
"#;

/// Loads `VALID` with `from` replaced by `to` and returns the error text.
fn refused(from: &str, to: &str) -> String {
    registry_edits::refused(VALID, from, to)
}

#[test]
fn the_valid_test_registry_is_accepted() {
    let registry = Registry::from_toml(VALID, "valid.toml").expect("valid");
    assert_eq!(registry.agencies.len(), 3);
}

#[test]
fn a_duplicate_agency_code_is_refused() {
    let message = refused(r#"code = "MOF""#, r#"code = "MOIC""#);
    assert!(message.contains("duplicate agency code MOIC"), "{message}");
    assert!(message.contains("agency #2"), "{message}");
}

#[test]
fn a_route_through_an_unknown_agency_is_refused() {
    let message = refused(r#"agency = "MOF""#, r#"agency = "MOXX""#);
    assert!(message.contains("unknown agency MOXX"), "{message}");
    assert!(
        message.contains(r#"service #1 "enterprise-registration", stage 2, step 1"#),
        "{message}"
    );
}

#[test]
fn a_code_that_is_not_subject_safe_is_refused() {
    let message = refused(r#"code = "MOF""#, r#"code = "MO.F""#);
    assert!(message.contains("NATS subject"), "{message}");
    let message = refused(r#"code = "MOF""#, r#"code = "MO F""#);
    assert!(message.contains("' '"), "{message}");
}

#[test]
fn an_empty_route_is_refused() {
    let start = VALID.find("[[service.stage]]").expect("has stages");
    let text = VALID[..start].to_owned();
    let err = Registry::from_toml(&text, "broken.toml").expect_err("empty route");
    assert!(err.to_string().contains("route is empty"), "{err}");
}

#[test]
fn a_missing_lao_name_is_refused() {
    let message = refused("name_lo = \"ກະຊວງການເງິນ\"", "");
    assert!(
        message.contains("name_lo (Lao name) is missing"),
        "{message}"
    );
    assert!(message.contains("agency #2 \"MOF\""), "{message}");
}

#[test]
fn a_lao_name_in_latin_script_is_refused() {
    let message = refused(
        "name_lo = \"ກະຊວງການເງິນ\"",
        "name_lo = \"Ministry of Finance\"",
    );
    assert!(message.contains("has no Lao script"), "{message}");
}

#[test]
fn a_misspelt_key_is_refused_rather_than_ignored() {
    let message = refused("name_lo = \"ກະຊວງການເງິນ\"", "name_la = \"ກະຊວງການເງິນ\"");
    assert!(message.contains("name_la"), "{message}");
}

#[test]
fn a_registry_without_a_front_office_is_refused() {
    let message = refused(r#"kind = "front-office""#, r#"kind = "ministry""#);
    assert!(message.contains("no active front office"), "{message}");
}

#[test]
fn a_route_through_a_front_office_is_refused() {
    let message = refused(r#"agency = "MOF""#, r#"agency = "ODSC-VTE-SAYSETTHA""#);
    assert!(
        message.contains("route goes through front office"),
        "{message}"
    );
}

#[test]
fn a_route_through_a_merged_agency_is_refused() {
    let message = refused(
        r#"name_lo = "ກະຊວງການເງິນ""#,
        "name_lo = \"ກະຊວງການເງິນ\"\nmerged_into = \"MOIC\"",
    );
    assert!(
        message.contains("MOF, which was merged into MOIC"),
        "{message}"
    );
}

#[test]
fn a_merge_into_an_unknown_agency_is_refused() {
    let message = refused(
        r#"name_lo = "ກະຊວງການເງິນ""#,
        "name_lo = \"ກະຊວງການເງິນ\"\nmerged_into = \"MOXX\"",
    );
    assert!(
        message.contains("merged_into names unknown agency MOXX"),
        "{message}"
    );
}

#[test]
fn a_zero_day_time_limit_is_refused() {
    let message = refused("working_days = 3", "working_days = 0");
    assert!(message.contains("working_days must be 1..="), "{message}");
}

#[test]
fn a_step_with_no_agency_is_refused() {
    let message = refused("agency = \"MOF\"\n", "");
    assert!(message.contains("step names no agency"), "{message}");
}

#[test]
fn an_unknown_agency_kind_is_refused() {
    let message = refused(r#"kind = "ministry""#, r#"kind = "department""#);
    assert!(
        message.contains("kind \"department\" is not one of"),
        "{message}"
    );
}

#[test]
fn a_bad_holiday_date_and_unknown_weekday_are_refused() {
    let message = refused("date = 2026-12-02", "date = 2026-12-02T10:00:00");
    assert!(message.contains("not a plain date"), "{message}");
    let message = refused(r#""fri"]"#, r#""friday"]"#);
    assert!(message.contains("working day \"friday\""), "{message}");
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let text = VALID
        .replacen(r#"code = "MOF""#, r#"code = "MOIC""#, 1)
        .replacen("working_days = 3", "working_days = 0", 1);
    let err = Registry::from_toml(&text, "broken.toml").expect_err("two problems");
    assert!(err.problems().len() >= 2, "{err}");
}

#[test]
fn a_syntax_error_names_the_file_and_line() {
    let err = Registry::from_toml("[registry\nname = 1", "broken.toml").expect_err("bad toml");
    let message = err.to_string();
    assert!(
        message.contains("broken.toml") && message.contains("line 1"),
        "{message}"
    );
}

#[test]
fn a_missing_file_is_reported_with_its_path() {
    let err =
        Registry::load(std::path::Path::new("/nonexistent/registry.toml")).expect_err("missing");
    assert!(
        err.to_string().contains("/nonexistent/registry.toml"),
        "{err}"
    );
}

const MOF_KEY: &str = "name_lo = \"ກະຊວງການເງິນ\"\n\n[[agency.key]]\nid = \"MOF-2026-01\"\npublic_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\nvalid_from = 2026-01-01\n";

#[test]
fn agency_keys_load_with_their_validity() {
    let text = VALID.replacen("name_lo = \"ກະຊວງການເງິນ\"\n", MOF_KEY, 1);
    let registry = Registry::from_toml(&text, "keys.toml").expect("valid key");
    let key = registry.key(&agency("MOF"), "MOF-2026-01").expect("listed");
    assert_eq!(key.public_key[31], 31);
    assert!(key.valid_on(time::macros::date!(2026 - 11 - 27)));
    assert!(!key.valid_on(time::macros::date!(2025 - 12 - 31)));
}

#[test]
fn malformed_keys_are_refused() {
    for (from, to, expected) in [
        (
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "not base64!",
            "not base64",
        ),
        (
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "AAEC",
            "is 3 bytes; an Ed25519 key is 32",
        ),
        (
            "valid_from = 2026-01-01\n",
            "valid_from = 2026-01-01\nvalid_until = 2025-01-01\n",
            "valid_until is before valid_from",
        ),
    ] {
        let text = VALID.replacen(
            "name_lo = \"ກະຊວງການເງິນ\"\n",
            &MOF_KEY.replacen(from, to, 1),
            1,
        );
        let err = Registry::from_toml(&text, "keys.toml").expect_err(expected);
        assert!(err.to_string().contains(expected), "{err}");
    }
    let twice = VALID
        .replacen("name_lo = \"ກະຊວງການເງິນ\"\n", MOF_KEY, 1)
        .replacen(
            "name_lo = \"ກະຊວງອຸດສາຫະກຳ ແລະ ການຄ້າ\"\n",
            &MOF_KEY.replacen("ກະຊວງການເງິນ", "ກະຊວງອຸດສາຫະກຳ ແລະ ການຄ້າ", 1),
            1,
        );
    let err = Registry::from_toml(&twice, "keys.toml").expect_err("duplicate key id");
    assert!(err.to_string().contains("key id is listed twice"), "{err}");
}

#[test]
fn a_key_file_adds_keys_all_or_nothing() {
    let mut registry = Registry::from_toml(VALID, "valid.toml").expect("valid");
    let good = "[[key]]\nagency = \"MOF\"\nid = \"MOF-dev\"\npublic_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\nvalid_from = 2026-01-01\n";
    let bad = format!(
        "{good}\n[[key]]\nagency = \"MOXX\"\nid = \"X\"\npublic_key = \"AAEC\"\nvalid_from = 2026-01-01\n"
    );
    let err = registry
        .add_keys_from_toml(&bad, "keys.toml")
        .expect_err("unknown agency");
    assert!(
        err.to_string().contains("agency is not in the registry"),
        "{err}"
    );
    assert!(
        registry.key(&agency("MOF"), "MOF-dev").is_none(),
        "nothing added from a bad file"
    );
    registry
        .add_keys_from_toml(good, "keys.toml")
        .expect("good file");
    assert!(registry.key(&agency("MOF"), "MOF-dev").is_some());
}
