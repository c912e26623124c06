//! The nats-server binary the test kit launches, located once per test process.

use std::sync::OnceLock;

use onedoor_natsd::{NatsBinary, NatsdError};

static BINARY: OnceLock<NatsBinary> = OnceLock::new();

/// The binary [`onedoor_natsd::locate()`] finds (pinned install first; see its docs). A failure is
/// not cached, so every test reports the same clear "install it like this" error.
pub fn nats_server() -> Result<NatsBinary, NatsdError> {
    if let Some(binary) = BINARY.get() {
        return Ok(binary.clone());
    }
    let binary = onedoor_natsd::locate()?;
    Ok(BINARY.get_or_init(|| binary).clone())
}
