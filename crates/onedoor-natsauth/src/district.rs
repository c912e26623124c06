//! A district office's own nats-server (`docs/district-offices.md`): the JetStream domain its
//! outbox lives in, spelled once.

use onedoor_case::AgencyCode;

/// The JetStream domain of `office`'s own node: `odsc-vte-saysettha` for
/// `ODSC-VTE-SAYSETTHA`. Lower-case, so it never looks like an agency code in a
/// `$JS.<domain>.API` subject, and never the capital's (which has none).
pub fn office_domain(office: &AgencyCode) -> String {
    office.as_str().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_is_the_office_code_in_lower_case() {
        let office = AgencyCode::parse("ODSC-VTE-SAYSETTHA").expect("code");
        assert_eq!(office_domain(&office), "odsc-vte-saysettha");
    }
}
