//! Connecting as an identity, and recognising the server's "permissions violation" errors.

use std::path::Path;

use async_nats::{ConnectOptions, Event, ServerError};

use crate::credentials::read_seed_file;
use crate::error::NatsAuthError;
use crate::identity::Identity;
use crate::secret::Seed;

/// Client options for `identity` with `seed`: nkey authentication, the identity's own inbox
/// prefix (without it every request fails: the user may subscribe only to
/// `_INBOX_<name>.>`), and the connection name `onedoor-<name>` (shown in `/connz`).
///
/// Chain timeouts, callbacks and a more specific name on top; do not change the inbox prefix.
pub fn connect_options(identity: &Identity, seed: &Seed) -> ConnectOptions {
    ConnectOptions::new()
        .nkey(seed.expose_secret().to_owned())
        .custom_inbox_prefix(identity.inbox_prefix())
        .name(format!("onedoor-{identity}"))
}

/// [`connect_options`] with the seed read from `seed_file` (which must be readable by its
/// owner only). For callers that were handed one seed file rather than the whole credentials
/// directory (an adapter on its own host).
pub fn connect_options_from_file(
    identity: &Identity,
    seed_file: &Path,
) -> Result<ConnectOptions, NatsAuthError> {
    let seed = read_seed_file(seed_file, identity)?;
    Ok(connect_options(identity, &seed))
}

/// What the server refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    Publish,
    Subscribe,
}

/// A `-ERR 'Permissions Violation for … to "<subject>"'` from the server: the connection stays
/// up, the message or subscription is dropped, and a request made that way simply gets no
/// answer (it times out). This is how to tell that time-out apart from a slow server: watch
/// the client's events (`ConnectOptions::event_callback`) and log these loudly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionViolation {
    pub denied: Denied,
    pub subject: String,
}

impl PermissionViolation {
    /// The violation an event reports, if it is one.
    pub fn from_event(event: &Event) -> Option<Self> {
        match event {
            Event::ServerError(ServerError::Other(text)) => Self::parse(text),
            _ => None,
        }
    }

    /// Parses the server's text, e.g. `Permissions Violation for Publish to "a.b"` or
    /// `Permissions Violation for Subscription to "_INBOX.>"` (nats-server 2.x wording).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_matches('\'');
        let rest = text
            .get(..PREFIX.len())
            .filter(|head| head.eq_ignore_ascii_case(PREFIX))
            .map(|_| &text[PREFIX.len()..])?;
        let denied = if rest.starts_with("Publish") {
            Denied::Publish
        } else if rest.starts_with("Subscription") {
            Denied::Subscribe
        } else {
            return None;
        };
        let start = rest.find('"')? + 1;
        let len = rest[start..].find('"')?;
        Some(PermissionViolation {
            denied,
            subject: rest[start..start + len].to_owned(),
        })
    }
}

const PREFIX: &str = "Permissions Violation for ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_s_violation_texts_are_recognised() {
        assert_eq!(
            PermissionViolation::parse(
                r#"Permissions Violation for Publish to "onedoor.v1.case.C.MOIC.MOF""#
            ),
            Some(PermissionViolation {
                denied: Denied::Publish,
                subject: "onedoor.v1.case.C.MOIC.MOF".into()
            })
        );
        assert_eq!(
            PermissionViolation::parse(
                r#"'Permissions Violation for Subscription to "_INBOX_MOIC.>"'"#
            ),
            Some(PermissionViolation {
                denied: Denied::Subscribe,
                subject: "_INBOX_MOIC.>".into()
            })
        );
        assert_eq!(PermissionViolation::parse("Authorization Violation"), None);
        assert_eq!(
            PermissionViolation::parse("Permissions Violation for Publish to"),
            None
        );
    }
}
