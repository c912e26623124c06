//! Pieces several commands share: the registry they run with.

use std::path::Path;
use std::sync::Arc;

use onedoor_case::Registry;

/// The default registry ships inside the binary so commands work from any directory;
/// `--registry` points at an edited copy.
const DEFAULT_REGISTRY: &str = include_str!("../../../../deploy/registry/lao-2025.toml");
const DEFAULT_REGISTRY_NAME: &str = "built-in deploy/registry/lao-2025.toml";

/// The registry from `path`, or the built-in 2025 one; with a name for messages.
pub fn load_registry(path: Option<&Path>) -> anyhow::Result<(Arc<Registry>, String)> {
    match path {
        Some(path) => Ok((Arc::new(Registry::load(path)?), path.display().to_string())),
        None => Ok((
            Arc::new(Registry::from_toml(
                DEFAULT_REGISTRY,
                DEFAULT_REGISTRY_NAME,
            )?),
            DEFAULT_REGISTRY_NAME.to_owned(),
        )),
    }
}

/// A development token: 32 random bytes in hex. Only `onedoor up` makes these; production
/// tokens come from the operator.
pub fn dev_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() -> anyhow::Result<()> {
    use anyhow::Context as _;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
