//! Finding cases by an agency's name: the stored search text holds the codes of the agencies
//! on a case (`view::search_text`), and the registry turns a searched name into codes. A name
//! matches an agency by its current name or any former one, in English or Lao; the agencies it
//! took over (merged or renamed into it) are found too, so a case handled by MPI is found by
//! "Planning and Investment" (its own name) and by "Finance" (MOF, which does its work today).

use onedoor_case::Registry;

use crate::view::agency_term;

/// The `agency:<code>` terms of every agency whose name (now or earlier) contains `text`
/// (lower-cased already), and of every agency whose work one of those does today.
pub(super) fn agency_terms(registry: &Registry, text: &str) -> Vec<String> {
    let named: Vec<&onedoor_case::AgencyCode> = registry
        .agencies
        .values()
        .filter(|agency| {
            let former = agency
                .former_names
                .iter()
                .flat_map(|f| [f.name_en.as_str(), f.name_lo.as_str()]);
            [agency.name_en.as_str(), agency.name_lo.as_str()]
                .into_iter()
                .chain(former)
                .any(|name| name.to_lowercase().contains(text))
        })
        .map(|agency| &agency.code)
        .collect();
    let mut terms: Vec<String> = registry
        .agencies
        .values()
        .filter(|agency| {
            named.contains(&&agency.code)
                || registry
                    .successor_of(&agency.code)
                    .is_some_and(|successor| named.contains(&successor))
        })
        .map(|agency| agency_term(agency.code.as_str()))
        .collect();
    terms.sort();
    terms.dedup();
    terms
}
