//! Pieces several commands share: the registry they run with, secrets on disk, signals.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use onedoor_case::Registry;

/// The default registry ships inside the binary so commands work from any directory;
/// `--registry` points at an edited copy.
const DEFAULT_REGISTRY: &str = include_str!("../../../../deploy/registry/lao-2025.toml");
const DEFAULT_REGISTRY_NAME: &str = "built-in deploy/registry/lao-2025.toml";

/// Where a bus keeps its state when no `--data-dir` or `ONEDOOR_DATA_DIR` says otherwise.
pub const DEFAULT_DATA_DIR: &str = ".onedoor";

/// The registry from `path`, or the built-in 2025 one; with a name for messages.
pub fn load_registry(path: Option<&Path>) -> anyhow::Result<(Arc<Registry>, String)> {
    let (registry, name) = load_registry_mut(path)?;
    Ok((Arc::new(registry), name))
}

/// [`load_registry`], still open for additions (keys).
pub fn load_registry_mut(path: Option<&Path>) -> anyhow::Result<(Registry, String)> {
    match path {
        Some(path) => Ok((Registry::load(path)?, path.display().to_string())),
        None => Ok((
            Registry::from_toml(DEFAULT_REGISTRY, DEFAULT_REGISTRY_NAME)?,
            DEFAULT_REGISTRY_NAME.to_owned(),
        )),
    }
}

/// The registry plus the public keys in `keys` (a key file such as the development keys
/// `onedoor up` writes to `DATA/keys/public-keys.toml`).
pub fn load_registry_with_keys(
    path: Option<&Path>,
    keys: Option<&Path>,
) -> anyhow::Result<(Arc<Registry>, String)> {
    let (mut registry, name) = load_registry_mut(path)?;
    if let Some(keys) = keys {
        let text = std::fs::read_to_string(keys)
            .with_context(|| format!("reading key file {}", keys.display()))?;
        registry.add_keys_from_toml(&text, &keys.display().to_string())?;
    }
    Ok((Arc::new(registry), name))
}

/// Writes a secret file readable by its owner only.
pub fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
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
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
