//! The one error type of this crate. No variant carries a seed's text: seeds are named by
//! their owner and their file, never shown.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NatsAuthError {
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is not a valid credentials manifest: {why}", path.display())]
    Manifest { path: PathBuf, why: String },

    #[error(
        "seed file {} of {identity} can be read by other users (mode {mode:03o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    InsecureSeedFile {
        identity: String,
        path: PathBuf,
        mode: u32,
    },

    #[error("the seed of {identity} is not a valid NATS user seed: {why}")]
    InvalidSeed { identity: String, why: String },

    #[error("{key:?} is not a valid NATS user public key: {why}")]
    InvalidPublicKey { key: String, why: String },

    /// The seed file holds another key than the manifest lists (a file copied from another
    /// data dir, or a half-finished rotation): connecting would fail as an unknown user.
    #[error(
        "seed file {} of {identity} belongs to public key {found}, but the manifest lists {expected}",
        path.display()
    )]
    SeedMismatch {
        identity: String,
        path: PathBuf,
        expected: String,
        found: String,
    },

    #[error("no credentials for {identity} in {}", dir.display())]
    MissingIdentity { identity: String, dir: PathBuf },

    /// The manifest lists only the public key: the identity's owner keeps the seed.
    #[error(
        "{} lists only the public key of {identity}; its seed is with its owner (imported with `onedoor keys nats-import`)",
        dir.display()
    )]
    SeedHeldElsewhere { identity: String, dir: PathBuf },

    #[error(
        "unknown identity {name:?}: expected an agency code or one of operator, tracker, auditor, system"
    )]
    UnknownIdentity { name: String },

    #[error("generating an nkey pair: {why}")]
    KeyGeneration { why: String },

    /// Setting up the stream, consumers or bucket as the operator.
    #[error("{action}: {source}")]
    Bus {
        action: String,
        #[source]
        source: onedoor_bus::BusError,
    },

    /// Provisioning found differences JetStream cannot close on an existing object; nothing
    /// was changed.
    #[error(
        "cannot change in place (JetStream refuses; nothing was changed): {}; make the object \
         again by hand (back up its data first) or keep its current value",
        changes.join("; ")
    )]
    NotInPlace { changes: Vec<String> },

    /// Provisioning would lose data or fault tolerance and was not forced; nothing was changed.
    #[error(
        "refusing a change that loses data (nothing was changed; --force to accept): {}",
        changes.join("; ")
    )]
    WouldLoseData { changes: Vec<String> },

    /// NATS settings no server could make work (no URL, a malformed one, half a TLS pair).
    #[error("NATS settings: {why}")]
    NatsSettings { why: String },

    /// A server answered and refused: waiting would not help.
    #[error("NATS at {urls}: {kind}: {why}")]
    NatsRefused {
        urls: String,
        kind: &'static str,
        why: String,
    },

    /// No listed server answered before the start-up deadline.
    #[error(
        "no NATS server at {urls} answered in {:.0} s ({attempts} attempts; last: {last}); \
         raise --nats-connect-timeout (0 waits for ever) or check the addresses",
        waited.as_secs_f64()
    )]
    NatsUnreachable {
        urls: String,
        attempts: u32,
        waited: std::time::Duration,
        last: String,
    },
}
