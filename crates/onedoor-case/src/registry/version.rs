//! A registry's version: `YYYY-MM`, the month the government decided the shape it describes,
//! or `YYYY-MM.N` for the Nth correction published within that month. Versions are ordered, so
//! `registry diff` and `registry apply` can tell an upgrade from a step back.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegistryVersion {
    year: u16,
    month: u8,
    /// 0 for the first publication of the month.
    revision: u16,
}

/// Highest correction number; more than this in one month is a typo, not a practice.
const MAX_REVISION: u16 = 999;

impl RegistryVersion {
    /// Parses `YYYY-MM` or `YYYY-MM.N` (N from 1 to 999); the error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = || {
            format!(
                "version {text:?} is not of the form YYYY-MM or YYYY-MM.N (e.g. \"2025-03\" or \"2025-03.2\")"
            )
        };
        let (date, revision) = match text.split_once('.') {
            Some((date, revision)) => (date, Some(revision)),
            None => (text, None),
        };
        let (year, month) = date.split_once('-').ok_or_else(expected)?;
        let digits = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(month, 2) {
            return Err(expected());
        }
        let year: u16 = year.parse().map_err(|_| expected())?;
        let month: u8 = month.parse().map_err(|_| expected())?;
        if !(1..=12).contains(&month) {
            return Err(format!(
                "version {text:?}: month {month:02} is not 01 to 12"
            ));
        }
        let revision = match revision {
            None => 0,
            Some(r) if !r.is_empty() && r.len() <= 3 && r.bytes().all(|b| b.is_ascii_digit()) => {
                match r.parse::<u16>() {
                    Ok(n) if (1..=MAX_REVISION).contains(&n) && !r.starts_with('0') => n,
                    _ => {
                        return Err(format!(
                            "version {text:?}: the correction number must be 1 to {MAX_REVISION}, without leading zeros"
                        ));
                    }
                }
            }
            Some(_) => return Err(expected()),
        };
        Ok(RegistryVersion {
            year,
            month,
            revision,
        })
    }

    pub fn year(self) -> u16 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }
}

impl fmt::Display for RegistryVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)?;
        if self.revision > 0 {
            write!(f, ".{}", self.revision)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_and_order_by_month_then_correction() {
        let parse = |s| RegistryVersion::parse(s).expect(s);
        for text in ["2021-10", "2025-03", "2025-03.2", "2025-03.999"] {
            assert_eq!(parse(text).to_string(), text);
        }
        assert!(parse("2021-10") < parse("2025-03"));
        assert!(parse("2025-03") < parse("2025-03.1"));
        assert!(parse("2025-03.9") < parse("2025-03.10"));
        assert!(parse("2025-03.10") < parse("2025-04"));
    }

    #[test]
    fn malformed_versions_are_refused_with_the_expected_form() {
        for text in [
            "",
            "2025",
            "2025-3",
            "25-03",
            "2025-03-01",
            "2025/03",
            "v2025-03",
            "2025-03.",
            "2025-03.x",
            "2025-03.1000",
            " 2025-03",
            "２０２５-03",
        ] {
            let err = RegistryVersion::parse(text).expect_err(text);
            assert!(err.contains(&format!("{text:?}")), "{text}: {err}");
        }
        assert!(
            RegistryVersion::parse("2025-13")
                .unwrap_err()
                .contains("month 13")
        );
        assert!(
            RegistryVersion::parse("2025-00")
                .unwrap_err()
                .contains("month 00")
        );
        assert!(
            RegistryVersion::parse("2025-03.0")
                .unwrap_err()
                .contains("1 to 999")
        );
        assert!(
            RegistryVersion::parse("2025-03.01")
                .unwrap_err()
                .contains("leading zeros")
        );
    }
}
