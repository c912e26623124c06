//! `onedoor registry diff` run as an operator would: the real binary on the shipped 2021 and
//! 2025 registries, checked against the March 2025 restructuring, and on broken pairs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/registry")
        .join(name)
}

fn diff(old: &Path, new: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_onedoor"))
        .args(["registry", "diff"])
        .arg(old)
        .arg(new)
        .output()
        .expect("runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_2025_merger_is_told_in_words_one_change_per_line() {
    let out = diff(&shipped("lao-2021.toml"), &shipped("lao-2025.toml"));
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    let expected = [
        r#"from: "Lao PDR, 2021 government (17 ministries)", version 2021-10, effective 2021-10-01"#,
        r#"to: "Lao PDR, 2025 government (13 ministries)", version 2025-03, effective 2025-05-01"#,
        r#"added: MAE "Ministry of Agriculture and Environment" (ກະຊວງກະສິກຳ ແລະ ສິ່ງແວດລ້ອມ), a ministry"#,
        r#"renamed: MICT "Ministry of Information, Culture and Tourism" (ກະຊວງຖະແຫຼງຂ່າວ, ວັດທະນະທຳ ແລະ ທ່ອງທ່ຽວ) is now MCT "Ministry of Culture and Tourism" (ກະຊວງວັດທະນະທຳ ແລະ ທ່ອງທ່ຽວ); its open tasks move there"#,
        r#"merged: MAF "Ministry of Agriculture and Forestry" (ກະຊວງກະສິກຳ ແລະ ປ່າໄມ້) into MAE "Ministry of Agriculture and Environment" (ກະຊວງກະສິກຳ ແລະ ສິ່ງແວດລ້ອມ); its open tasks move there"#,
        r#"merged: MONRE "Ministry of Natural Resources and Environment" (ກະຊວງຊັບພະຍາກອນທຳມະຊາດ ແລະ ສິ່ງແວດລ້ອມ) into MAE "Ministry of Agriculture and Environment" (ກະຊວງກະສິກຳ ແລະ ສິ່ງແວດລ້ອມ); its open tasks move there"#,
        r#"merged: MPI "Ministry of Planning and Investment" (ກະຊວງແຜນການ ແລະ ການລົງທຶນ) into MOF "Ministry of Finance" (ກະຊວງການເງິນ); its open tasks move there"#,
        r#"merged: MEM "Ministry of Energy and Mines" (ກະຊວງພະລັງງານ ແລະ ບໍ່ແຮ່) into MOIC "Ministry of Industry and Commerce" (ກະຊວງອຸດສາຫະກຳ ແລະ ການຄ້າ); its open tasks move there"#,
        r#"merged: MOHA "Ministry of Home Affairs" (ກະຊວງພາຍໃນ) into PMO "Prime Minister's Office" (ຫ້ອງວ່າການສຳນັກງານນາຍົກລັດຖະມົນຕີ); its open tasks move there"#,
        "service rerouted: construction-permit \"Construction permit\", route MPWT 10d and MONRE 10d, then MOPS 5d becomes MPWT 10d and MAE 10d, then MOPS 5d",
        "service rerouted: investment-licence \"Investment licence\", route MPI 10d, then MOIC 5d, then MAF or MEM or MPWT or MOH or MOES or MICT 10d becomes MOF 10d, then MOIC 5d, then MAE or MPWT or MOH or MOES or MCT 10d",
        "service rerouted: land-title-transfer \"Land title transfer\", route MONRE 10d, then MOF 5d becomes MAE 10d, then MOF 5d",
        "summary: 1 added, 1 renamed, 5 merged, 0 retired; 3 services changed",
    ];
    assert_eq!(lines, expected, "{text}");
}

#[test]
fn the_same_pair_prints_the_same_text_every_time() {
    let first = stdout(&diff(&shipped("lao-2021.toml"), &shipped("lao-2025.toml")));
    let second = stdout(&diff(&shipped("lao-2021.toml"), &shipped("lao-2025.toml")));
    assert_eq!(first, second);
}

#[test]
fn a_diff_backwards_in_time_is_refused() {
    let out = diff(&shipped("lao-2025.toml"), &shipped("lao-2021.toml"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not follow the old one")
            && stderr.contains("version 2021-10")
            && stderr.contains("version 2025-03"),
        "{stderr}"
    );
    assert!(stdout(&out).is_empty(), "nothing is printed as a change");
}

#[test]
fn an_invalid_or_missing_registry_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(shipped("lao-2025.toml")).expect("shipped");
    let broken = dir.path().join("cycle.toml");
    std::fs::write(
        &broken,
        text.replacen("merged_into = \"MOF\"", "merged_into = \"MOHA\"", 1),
    )
    .expect("write");
    let out = diff(&shipped("lao-2021.toml"), &broken);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("cycle.toml") && text.contains("merged_into names MOHA"),
        "{text}"
    );

    let out = diff(
        &shipped("lao-2021.toml"),
        Path::new("/nonexistent/next.toml"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("/nonexistent/next.toml"));
}

#[test]
fn retirements_and_a_rename_in_place_are_told_apart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(shipped("lao-2025.toml")).expect("shipped");
    // Take SIA out entirely, retire BOL explicitly, rename MOJ in place; a later version.
    let sia = text.find("code = \"SIA\"").expect("SIA listed") - "[[agency]]\n".len();
    let sia_end = sia + text[sia..].find("\n\n").expect("entry ends") + 2;
    let next = format!("{}{}", &text[..sia], &text[sia_end..])
        .replacen("version = \"2025-03\"", "version = \"2025-06\"", 1)
        .replacen(
            "effective_from = 2025-05-01",
            "effective_from = 2025-07-01",
            1,
        )
        .replacen(
            "name_en = \"Ministry of Justice\"",
            "name_en = \"Ministry of Justice and Legal Affairs\"",
            1,
        )
        .replacen(
            "name_lo = \"ທະນາຄານແຫ່ງ ສປປ ລາວ\"",
            "name_lo = \"ທະນາຄານແຫ່ງ ສປປ ລາວ\"\nretired = true",
            1,
        );
    let path = dir.path().join("next.toml");
    std::fs::write(&path, next).expect("write");
    let out = diff(&shipped("lao-2025.toml"), &path);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("retired: BOL \"Bank of the Lao PDR\" (ທະນາຄານແຫ່ງ ສປປ ລາວ) with no successor; it may hold no open task"),
        "{text}"
    );
    assert!(
        text.contains("retired: SIA \"State Inspection Authority\" (ອົງການກວດກາລັດ) is no longer listed, so its keys no longer verify the history it signed"),
        "{text}"
    );
    assert!(
        text.contains("renamed: MOJ \"Ministry of Justice\" (ກະຊວງຍຸຕິທຳ) keeps its code and is now \"Ministry of Justice and Legal Affairs\" (ກະຊວງຍຸຕິທຳ)"),
        "{text}"
    );
    assert!(
        text.contains("summary: 0 added, 1 renamed, 0 merged, 2 retired; 0 services changed"),
        "{text}"
    );
}
