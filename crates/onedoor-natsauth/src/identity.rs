//! Who connects to NATS: one identity per agency, plus the operator, the tracker, the auditor,
//! the case reader and the system-account user.

use std::fmt;

use onedoor_case::{AgencyCode, Registry};

use crate::error::NatsAuthError;

/// The application account every onedoor identity but [`Identity::System`] lives in. JetStream
/// is enabled for it; the `ONEDOOR` stream, the inbox consumers and the stuck bucket are in it.
pub const APP_ACCOUNT: &str = "ONEDOOR";

/// The system account (server events, `nats server …` commands). Holds no onedoor data.
pub const SYSTEM_ACCOUNT: &str = "SYS";

/// One NATS user. Agencies are named by their code (upper case, `A-Z 0-9 -`); the service
/// identities by lower-case words, so no agency code can ever collide with them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Identity {
    /// An agency's adapter: speaks only for that agency and reads only its own inbox.
    Agency(AgencyCode),
    /// Deploy tooling (`onedoor up`, `onedoor provision`): creates the stream, the inbox
    /// consumers, the tracker's consumer and the stuck bucket before anyone else connects.
    Operator,
    /// The tracker: reads the stream, pulls and acks only its own durable consumer `tracker`,
    /// reads the stuck bucket.
    Tracker,
    /// Read-only: may read every event, writes nothing (handed to scripts and other languages'
    /// clients through `endpoints.json`).
    Auditor,
    /// The case reader (`onedoor reader`): reads every event and answers each agency about the
    /// cases it is a party to; writes nothing.
    Reader,
    /// The system account's user, for server monitoring commands. No access to onedoor data.
    System,
}

impl Identity {
    pub const OPERATOR: &'static str = "operator";
    pub const TRACKER: &'static str = "tracker";
    pub const AUDITOR: &'static str = "auditor";
    pub const READER: &'static str = "reader";
    pub const SYSTEM: &'static str = "system";

    /// `MOF`, `operator`, `tracker`, `auditor`, `system`: the key in `credentials.json` and the
    /// seed file's stem.
    pub fn name(&self) -> &str {
        match self {
            Identity::Agency(code) => code.as_str(),
            Identity::Operator => Self::OPERATOR,
            Identity::Tracker => Self::TRACKER,
            Identity::Auditor => Self::AUDITOR,
            Identity::Reader => Self::READER,
            Identity::System => Self::SYSTEM,
        }
    }

    /// Parses a [`Identity::name`]: one of the service words, or an agency code.
    pub fn parse(name: &str) -> Result<Self, NatsAuthError> {
        match name {
            Self::OPERATOR => Ok(Identity::Operator),
            Self::TRACKER => Ok(Identity::Tracker),
            Self::AUDITOR => Ok(Identity::Auditor),
            Self::READER => Ok(Identity::Reader),
            Self::SYSTEM => Ok(Identity::System),
            other => AgencyCode::parse(other).map(Identity::Agency).map_err(|_| {
                NatsAuthError::UnknownIdentity {
                    name: other.to_owned(),
                }
            }),
        }
    }

    /// `agency`, `operator`, …: what kind of identity, for the manifest and comments.
    pub fn kind(&self) -> &'static str {
        match self {
            Identity::Agency(_) => "agency",
            Identity::Operator => Self::OPERATOR,
            Identity::Tracker => Self::TRACKER,
            Identity::Auditor => Self::AUDITOR,
            Identity::Reader => Self::READER,
            Identity::System => Self::SYSTEM,
        }
    }

    /// The account the user is declared in.
    pub fn account(&self) -> &'static str {
        match self {
            Identity::System => SYSTEM_ACCOUNT,
            _ => APP_ACCOUNT,
        }
    }

    /// `_INBOX_<name>`: the reply-subject prefix this identity's client must use.
    ///
    /// With the shared `_INBOX.>` every user would need to subscribe to `_INBOX.>`, and so could
    /// read every other user's replies: direct-get answers, and above all the inbox deliveries
    /// pulled by another agency (a pull's messages are sent to the puller's reply subject). A
    /// prefix per identity lets each subscribe only to its own replies. The client has to be told
    /// ([`crate::connect_options`] does it); a client on the default prefix is refused its
    /// reply subscription and every request it makes times out.
    pub fn inbox_prefix(&self) -> String {
        format!("_INBOX_{}", self.name())
    }

    /// Every identity the configuration for `registry` declares: each agency in the registry
    /// (merged-away ones too: they still finish the tasks they hold), then the service
    /// identities. Ordered, so generated text is stable.
    pub fn all_for(registry: &Registry) -> Vec<Identity> {
        let mut all: Vec<Identity> = registry
            .agencies
            .keys()
            .cloned()
            .map(Identity::Agency)
            .collect();
        all.extend([
            Identity::Operator,
            Identity::Tracker,
            Identity::Auditor,
            Identity::Reader,
            Identity::System,
        ]);
        all
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_service_words_never_parse_as_agencies() {
        for name in [
            "MOF",
            "ODSC-VTE-SAYSETTHA",
            "operator",
            "tracker",
            "auditor",
            "reader",
            "system",
        ] {
            assert_eq!(Identity::parse(name).expect(name).name(), name);
        }
        assert!(matches!(
            Identity::parse("OPERATOR").expect("an agency code"),
            Identity::Agency(_)
        ));
        assert!(Identity::parse("mof").is_err());
        assert!(Identity::parse("").is_err());
    }

    #[test]
    fn each_identity_has_its_own_inbox_prefix() {
        let mof = Identity::Agency(AgencyCode::parse("MOF").expect("code"));
        assert_eq!(mof.inbox_prefix(), "_INBOX_MOF");
        assert_eq!(Identity::Auditor.inbox_prefix(), "_INBOX_auditor");
        assert_eq!(Identity::System.account(), SYSTEM_ACCOUNT);
        assert_eq!(mof.account(), APP_ACCOUNT);
    }
}
