//! The names behind the codes in `onedoor case show`: each agency of a case under the name it
//! bore when it took its steps (Lao and English), and who does its work today when it has been
//! merged, renamed or retired since. A case opened in 2024 at MPI still reads as the Ministry of
//! Planning and Investment, with "now MOF".

use std::path::Path;

use onedoor_case::{AgencyCode, Registry};
use onedoor_tracker::view::TimelineEntry;
use serde::Serialize;

use crate::data_dir::Endpoints;

/// One agency of a case, named as it was at the time of its steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgencyName {
    pub code: String,
    pub name_en: String,
    pub name_lo: String,
    /// Who does its work today, when it has ended since; `retired` when nobody does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
}

/// The registry to name agencies by: `--registry`, else the one the running bus names in
/// endpoints.json, else the built-in one. A registry that does not load leaves the codes
/// unnamed (the case is still shown) and says why on stderr.
pub fn registry_for_names(explicit: Option<&Path>, data_dir: &Path) -> Option<Registry> {
    let listed = Endpoints::read(data_dir)
        .ok()
        .flatten()
        .map(|endpoints| endpoints.registry)
        .filter(|name| !name.starts_with("built-in "));
    let path = explicit.map(Path::to_path_buf).or(listed.map(Into::into));
    match super::common::load_registry_mut(path.as_deref()) {
        Ok((registry, _)) => Some(registry),
        Err(err) => {
            eprintln!("warning: agencies are shown by code only: {err:#}");
            None
        }
    }
}

/// Every agency named in `entries` (origin first, then in order of appearance), once per name
/// it bore during the case.
pub fn names(registry: &Registry, origin: &str, entries: &[TimelineEntry]) -> Vec<AgencyName> {
    let opened = entries.first().map(|e| e.at.date());
    let steps = std::iter::once((origin, opened)).chain(entries.iter().flat_map(|e| {
        [Some(e.from.as_str()), e.to.as_deref()]
            .into_iter()
            .flatten()
            .map(move |code| (code, Some(e.at.date())))
    }));
    let mut named: Vec<AgencyName> = Vec::new();
    for (code, date) in steps {
        let Some(agency) = AgencyCode::parse(code)
            .ok()
            .and_then(|c| registry.agency(&c))
        else {
            continue;
        };
        let (name_en, name_lo) = match date {
            Some(date) => agency.name_on(date),
            None => (agency.name_en.as_str(), agency.name_lo.as_str()),
        };
        let now = if agency.is_active() {
            None
        } else {
            Some(match registry.successor_of(&agency.code) {
                Some(successor) if successor != &agency.code => match registry.agency(successor) {
                    Some(s) => format!("{} {} ({})", s.code, s.name_en, s.name_lo),
                    None => successor.to_string(),
                },
                _ => "retired".to_owned(),
            })
        };
        let entry = AgencyName {
            code: code.to_owned(),
            name_en: name_en.to_owned(),
            name_lo: name_lo.to_owned(),
            now,
        };
        if !named.contains(&entry) {
            named.push(entry);
        }
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// The shipped 2025 registry, with a former name for MOIC used until 2021-03-31.
    fn registry() -> Registry {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/registry/lao-2025.toml");
        let text = std::fs::read_to_string(path).expect("shipped");
        let text = text.replacen(
            "name_lo = \"ກະຊວງອຸດສາຫະກຳ ແລະ ການຄ້າ\"\n",
            "name_lo = \"ກະຊວງອຸດສາຫະກຳ ແລະ ການຄ້າ\"\n\n[[agency.former_name]]\nname_en = \"Ministry of Commerce\"\nname_lo = \"ກະຊວງການຄ້າ\"\nuntil = 2021-03-31\n",
            1,
        );
        Registry::from_toml(&text, "with-former-name.toml").expect("valid")
    }

    fn entry(
        version: u64,
        at: time::OffsetDateTime,
        from: &str,
        to: Option<&str>,
    ) -> TimelineEntry {
        TimelineEntry {
            version,
            event_id: format!("event-{version}"),
            at,
            from: from.to_owned(),
            to: to.map(str::to_owned),
            kind: "handed_off",
            detail: String::new(),
            task: None,
        }
    }

    #[test]
    fn an_agency_is_named_as_it_was_at_each_step_with_its_successor_today() {
        let front = "ODSC-VTE-SAYSETTHA";
        let entries = [
            entry(1, datetime!(2021-02-01 09:00 UTC), front, None),
            entry(2, datetime!(2021-02-02 09:00 UTC), front, Some("MOIC")),
            entry(3, datetime!(2021-05-03 09:00 UTC), "MOIC", Some("MPI")),
        ];
        let named = names(&registry(), front, &entries);
        let rows: Vec<(&str, &str, Option<&str>)> = named
            .iter()
            .map(|a| (a.code.as_str(), a.name_en.as_str(), a.now.as_deref()))
            .collect();
        assert_eq!(
            rows,
            [
                (front, "One-Door Service Center, Saysettha District", None),
                ("MOIC", "Ministry of Commerce", None),
                ("MOIC", "Ministry of Industry and Commerce", None),
                (
                    "MPI",
                    "Ministry of Planning and Investment",
                    Some("MOF Ministry of Finance (ກະຊວງການເງິນ)")
                ),
            ]
        );
    }
}
