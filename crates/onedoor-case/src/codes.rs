//! Identifiers that travel in NATS subjects and gRPC fields, parsed once at the edge.

use std::fmt;

/// Longest agency code we accept. NATS subjects have no hard token limit, but codes show up in
/// consumer names (`inbox-<CODE>`), metric labels and the web page, so keep them short.
pub const AGENCY_CODE_MAX_LEN: usize = crate::limits::AGENCY_CODE_MAX_BYTES;
/// Longest service code we accept; service codes are shown to clerks and used in URLs.
pub const SERVICE_CODE_MAX_LEN: usize = crate::limits::SERVICE_CODE_MAX_BYTES;

/// Why a code string was refused. Messages are written for the person editing a registry file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("code is empty")]
    Empty,
    #[error("code {code:?} is longer than {max} characters")]
    TooLong { code: String, max: usize },
    #[error(
        "code {code:?} has {found:?} at position {position}; only {allowed} are allowed (it must be safe in a NATS subject token)"
    )]
    BadCharacter {
        code: String,
        found: char,
        position: usize,
        allowed: &'static str,
    },
    #[error("code {code:?} must start with a letter and must not end with '-' or contain '--'")]
    BadShape { code: String },
}

/// An agency's code, e.g. `MOIC` or `ODSC-VTE-SAYSETTHA`: upper-case letters, digits and single
/// hyphens. It is a NATS subject token (`onedoor.v1.case.<case>.<from>.<to>`), so the charset is
/// the contract, not a style choice.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgencyCode(String);

impl AgencyCode {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        check_code(
            text,
            AGENCY_CODE_MAX_LEN,
            |c| c.is_ascii_uppercase() || c.is_ascii_digit(),
            "A-Z, 0-9 and '-'",
        )?;
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A service catalogue code, e.g. `enterprise-registration`: lower-case letters, digits and
/// single hyphens, so it reads well in URLs, CLI flags and CloudEvents attributes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceCode(String);

impl ServiceCode {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        check_code(
            text,
            SERVICE_CODE_MAX_LEN,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
            "a-z, 0-9 and '-'",
        )?;
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_code(
    text: &str,
    max: usize,
    is_allowed: impl Fn(char) -> bool,
    allowed: &'static str,
) -> Result<(), CodeError> {
    if text.is_empty() {
        return Err(CodeError::Empty);
    }
    if text.chars().count() > max {
        return Err(CodeError::TooLong {
            code: text.to_owned(),
            max,
        });
    }
    if let Some((position, found)) = text
        .chars()
        .enumerate()
        .find(|&(_, c)| c != '-' && !is_allowed(c))
    {
        return Err(CodeError::BadCharacter {
            code: text.to_owned(),
            found,
            position,
            allowed,
        });
    }
    let starts_with_letter = text.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_with_letter || text.ends_with('-') || text.contains("--") {
        return Err(CodeError::BadShape {
            code: text.to_owned(),
        });
    }
    Ok(())
}

impl fmt::Display for AgencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ServiceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for AgencyCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl std::str::FromStr for ServiceCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agency_codes_accept_front_office_style_codes() {
        assert!(AgencyCode::parse("ODSC-VTE-SAYSETTHA").is_ok());
        assert!(AgencyCode::parse("MOIC").is_ok());
    }

    #[test]
    fn agency_codes_refuse_subject_breaking_characters() {
        for bad in ["MO.IC", "MO IC", "MOIC*", "MO>IC", "moic", "MOİC"] {
            assert!(
                matches!(AgencyCode::parse(bad), Err(CodeError::BadCharacter { .. })),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn agency_codes_refuse_bad_shapes() {
        for bad in ["-MOIC", "MOIC-", "MO--IC", "1MOIC"] {
            assert!(
                matches!(AgencyCode::parse(bad), Err(CodeError::BadShape { .. })),
                "{bad}"
            );
        }
        assert_eq!(AgencyCode::parse(""), Err(CodeError::Empty));
        assert!(matches!(
            AgencyCode::parse(&"A".repeat(65)),
            Err(CodeError::TooLong { .. })
        ));
    }

    #[test]
    fn service_codes_are_lower_case() {
        assert!(ServiceCode::parse("enterprise-registration").is_ok());
        assert!(ServiceCode::parse("Enterprise-Registration").is_err());
    }
}
