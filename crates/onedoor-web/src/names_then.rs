//! An agency as the case page names it at one of its steps: the name it bore that day (from
//! the registry's `former_name` entries), and, when the registry has since ended it, the
//! agency that does its work today, so a step MPI took in 2024 reads "Ministry of Planning and
//! Investment (now Ministry of Finance)".

use onedoor_case::AgencyCode;
use time::OffsetDateTime;

use crate::Names;
use crate::i18n::{Lang, Msg};

impl Names {
    /// `code`'s name on the (civil) day of `at`, with its successor today when it has one; the
    /// code itself when the registry does not know it.
    pub fn agency_on(&self, code: &str, at: OffsetDateTime) -> String {
        let Some(agency) = AgencyCode::parse(code)
            .ok()
            .and_then(|c| self.registry.agency(&c))
        else {
            return code.to_owned();
        };
        let day = at.to_offset(self.registry.calendar.utc_offset).date();
        let (en, lo) = agency.name_on(day);
        let then = match self.lang {
            Lang::En => en,
            Lang::Lo => lo,
        };
        match self
            .registry
            .successor_of(&agency.code)
            .filter(|successor| **successor != agency.code)
        {
            Some(successor) => format!(
                "{then} ({} {})",
                self.lang.t(Msg::NowAgency),
                self.agency(successor.as_str())
            ),
            None => then.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use onedoor_case::Registry;
    use time::macros::datetime;

    use super::*;

    fn registry() -> std::sync::Arc<Registry> {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/registry/lao-2025.toml");
        std::sync::Arc::new(Registry::load(&path).expect("shipped registry"))
    }

    #[test]
    fn an_ended_agency_is_named_as_it_was_with_its_successor_today() {
        let registry = registry();
        let at = datetime!(2024-06-03 10:00 +07:00);
        let en = Names {
            registry: registry.clone(),
            lang: Lang::En,
        };
        assert_eq!(
            en.agency_on("MPI", at),
            "Ministry of Planning and Investment (now Ministry of Finance)"
        );
        assert_eq!(en.agency_on("MOF", at), "Ministry of Finance");
        assert_eq!(en.agency_on("NOT-LISTED", at), "NOT-LISTED");
        let lo = Names {
            registry: registry.clone(),
            lang: Lang::Lo,
        };
        let mpi = lo.agency_on("MPI", at);
        assert!(mpi.starts_with("ກະຊວງແຜນການ ແລະ ການລົງທຶນ (ປະຈຸບັນ "), "{mpi}");
        assert!(mpi.ends_with("ກະຊວງການເງິນ)"), "{mpi}");
    }

    /// A renamed agency's step shows the name of that day: MICT before the rename.
    #[test]
    fn a_former_name_is_shown_for_a_step_before_the_rename() {
        let registry = registry();
        let names = Names {
            registry: registry.clone(),
            lang: Lang::En,
        };
        let mict = names.agency_on("MICT", datetime!(2024-06-03 10:00 +07:00));
        assert!(mict.contains("(now "), "{mict}");
        assert!(mict.starts_with("Ministry of Information"), "{mict}");
    }
}
