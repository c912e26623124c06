//! Case and event identifiers: ULIDs, so they sort by creation time and can be made by any
//! agency without coordination.

use std::fmt;

use ulid::Ulid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} {text:?} is not a ULID (26 characters of Crockford base32, e.g. 01JD8X3Q6V9K2M4N5P7R8S9T0V)"
)]
pub struct IdError {
    pub what: &'static str,
    pub text: String,
}

macro_rules! ulid_id {
    ($name:ident, $what:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Ulid);

        impl $name {
            pub fn generate() -> Self {
                Self(Ulid::generate())
            }

            pub fn parse(text: &str) -> Result<Self, IdError> {
                // Ulid::from_string accepts lower case too; keep one canonical upper-case form
                // so ids compare equal as strings in subjects, URLs and databases.
                match Ulid::from_string(text) {
                    Ok(id) if id.to_string() == text => Ok(Self(id)),
                    _ => Err(IdError {
                        what: $what,
                        text: text.to_owned(),
                    }),
                }
            }

            pub fn from_ulid(id: Ulid) -> Self {
                Self(id)
            }

            pub fn ulid(self) -> Ulid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

ulid_id!(CaseId, "case id");
ulid_id!(EventId, "event id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = CaseId::generate();
        assert_eq!(CaseId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn malformed_and_lower_case_ids_are_refused() {
        assert!(CaseId::parse("not-a-ulid").is_err());
        assert!(CaseId::parse("").is_err());
        let id = EventId::generate().to_string().to_lowercase();
        assert!(EventId::parse(&id).is_err());
    }
}
