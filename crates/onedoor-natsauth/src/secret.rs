//! NATS user nkeys: the seed (secret) and the public key (goes into the server configuration).

use std::fmt;

use nkeys::{KeyPair, KeyPairType};

use crate::error::NatsAuthError;

/// A NATS **user** nkey seed (`SU…`). It never prints: `Debug` shows `Seed(<redacted>)`, there
/// is no `Display`, and no error of this crate carries its text. Read it only to hand it to the
/// NATS client ([`Seed::expose_secret`]).
///
/// Not zeroed on drop: the client keeps its own copy (`ConnectOptions::nkey` takes a `String`)
/// for reconnects, so wiping ours would promise more than it gives.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed {
    text: String,
    /// Derived once when the seed is read, so asking for it cannot fail later.
    public: PublicKey,
}

impl Seed {
    /// A fresh user key pair's seed, from the operating system's random source.
    pub fn generate() -> Result<Self, NatsAuthError> {
        let pair = KeyPair::new_user();
        let text = pair.seed().map_err(|e| NatsAuthError::KeyGeneration {
            why: e.kind().to_string(),
        })?;
        Ok(Seed {
            text,
            public: PublicKey(pair.public_key()),
        })
    }

    /// Checks that `text` (surrounding whitespace ignored, e.g. a file's final newline) is a
    /// user seed. `identity` only names the owner in the error.
    pub fn parse(text: &str, identity: &str) -> Result<Self, NatsAuthError> {
        let text = text.trim();
        let pair = KeyPair::from_seed(text).map_err(|e| NatsAuthError::InvalidSeed {
            identity: identity.to_owned(),
            // The kind only: nkeys' descriptions may quote parts of the input.
            why: e.kind().to_string(),
        })?;
        if pair.key_pair_type() != KeyPairType::User {
            return Err(NatsAuthError::InvalidSeed {
                identity: identity.to_owned(),
                why: format!(
                    "it is a {:?} seed; NATS users authenticate with a user seed (SU…)",
                    pair.key_pair_type()
                ),
            });
        }
        Ok(Seed {
            text: text.to_owned(),
            public: PublicKey(pair.public_key()),
        })
    }

    /// The public key (`U…`) the server configuration lists for this seed.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The seed's text, for `async_nats::ConnectOptions::nkey` and the seed file only.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

/// A NATS user public key (`U…`, 56 characters). Public: it is what the server configuration
/// and `credentials.json` hold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(String);

impl PublicKey {
    /// Checks that `text` is a user public key.
    pub fn parse(text: &str) -> Result<Self, NatsAuthError> {
        let pair = KeyPair::from_public_key(text).map_err(|e| NatsAuthError::InvalidPublicKey {
            key: text.to_owned(),
            why: e.kind().to_string(),
        })?;
        if pair.key_pair_type() != KeyPairType::User {
            return Err(NatsAuthError::InvalidPublicKey {
                key: text.to_owned(),
                why: format!("it is a {:?} key, not a user key", pair.key_pair_type()),
            });
        }
        Ok(PublicKey(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_seed_is_a_user_seed_with_a_user_public_key() {
        let seed = Seed::generate().expect("seed");
        assert!(seed.expose_secret().starts_with("SU"));
        let public = seed.public_key();
        assert!(public.as_str().starts_with('U'));
        assert_eq!(&PublicKey::parse(public.as_str()).expect("valid"), public);
        assert_eq!(
            Seed::parse(seed.expose_secret(), "MOF").expect("valid"),
            seed
        );
    }

    #[test]
    fn a_seed_never_prints_in_debug_or_in_errors() {
        let seed = Seed::generate().expect("seed");
        let secret = seed.expose_secret().to_owned();
        assert_eq!(format!("{seed:?}"), "Seed(<redacted>)");
        assert!(!format!("{:?}", Some(&seed)).contains(&secret));

        // A damaged seed: the error names the owner and the problem, never the text.
        let mut damaged = secret.clone();
        damaged.replace_range(10..14, "AAAA");
        let err = Seed::parse(&damaged, "MOF").expect_err("checksum");
        assert!(!err.to_string().contains(&damaged[..20]), "{err}");
        assert!(!format!("{err:?}").contains(&damaged[..20]), "{err:?}");
        assert!(err.to_string().contains("MOF"), "{err}");
    }

    #[test]
    fn a_non_user_seed_or_key_is_refused() {
        let account = KeyPair::new_account();
        let account_seed = account.seed().expect("seed");
        assert!(Seed::parse(&account_seed, "MOF").is_err());
        assert!(PublicKey::parse(&account.public_key()).is_err());
        assert!(PublicKey::parse("UNOTAKEY").is_err());
    }
}
