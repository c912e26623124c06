//! Pieces several commands share: the registry they run with, secrets on disk, signals.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use onedoor_case::{LiveRegistry, Registry};

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

/// On every SIGHUP, reads the registry file at `path` again and moves `live` to it when it
/// is valid and later than the running one in version and effective date (`registry diff`'s
/// rule): a single-machine operator's alternative to the published registry. Without a file
/// (the built-in registry) there is nothing to re-read.
pub fn reload_on_sighup(path: Option<&Path>, live: &LiveRegistry) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let Some(path) = path.map(Path::to_path_buf) else {
        return Ok(());
    };
    let mut hangups = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let live = live.clone();
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let file = path.display().to_string();
            let running = live.current();
            let next = Registry::load(&path)
                .map_err(|e| e.to_string())
                .and_then(|next| {
                    onedoor_case::RegistryDiff::between(&running, &next)
                        .map_err(|e| e.to_string())?;
                    Ok(next)
                });
            match next.map(|next| live.advance(Arc::new(next))) {
                Ok(Ok(_)) => {
                    tracing::info!(%file, from = %running.version, to = %live.current().version, "SIGHUP: moved to the registry file");
                }
                Ok(Err(now)) => {
                    tracing::warn!(%file, running = %now, "SIGHUP: the registry file is not later than the running one; kept");
                }
                Err(why) => {
                    tracing::warn!(%file, %why, "SIGHUP: registry file refused; keeping the running one");
                }
            }
        }
    });
    Ok(())
}

/// What [`write_secret`] does when the file already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Replace it (development keys `up` remakes on every start).
    Replace,
    /// Refuse: a key someone may still use must never be silently lost.
    Refuse,
}

/// What [`private_dir`] does with an existing directory that group or others can enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LooseDir {
    /// Refuse, naming the `chmod` that fixes it: the directory may be shared on purpose.
    Refuse,
    /// `chmod 700` it and log that it did (a directory onedoor made itself).
    Tighten,
}

/// Makes `dir` (and missing parents) mode 0700, or checks an existing one: a secret written
/// into a directory others can list and traverse is one a mode change away from being theirs.
pub fn private_dir(dir: &Path, loose: LooseDir) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    if !dir.exists() {
        return std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()));
    }
    let metadata = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !metadata.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    match loose {
        LooseDir::Refuse => anyhow::bail!(
            "{} is open to other users (mode {mode:03o}); secrets go only into an owner-only \
             directory: run `chmod 700 {}` or choose another",
            dir.display(),
            dir.display()
        ),
        LooseDir::Tighten => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("making {} owner-only", dir.display()))?;
            tracing::warn!(dir = %dir.display(), was = format!("{mode:03o}"), "made the secrets directory owner-only (700)");
            Ok(())
        }
    }
}

/// Writes a secret file readable by its owner only (0600), into a directory that is owner-only
/// too (created 0700 when missing, refused when others can enter it).
pub fn write_secret(path: &Path, text: &str, existing: Existing) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        private_dir(dir, LooseDir::Refuse)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    match existing {
        Existing::Replace => options.create(true).truncate(true),
        Existing::Refuse => options.create_new(true),
    };
    let mut file = options.open(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{} exists; refusing to overwrite a key", path.display())
        } else {
            anyhow::Error::new(err).context(format!("writing {}", path.display()))
        }
    })?;
    // `mode` applies only to a file it creates; a replaced file may have been looser.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} owner-only", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// A bearer token: 32 random bytes in hex. `onedoor up` makes development ones; `onedoor keys`
/// the ones an agency's systems use in production.
pub fn dev_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Prints one line of human output with every control and bidi character shown as an escape:
/// case text comes from other ministries, and events stored before the input rules may still
/// hold ANSI sequences or bidi overrides that would otherwise rewrite the terminal.
pub fn say(line: &str) {
    println!("{}", onedoor_case::text::escape(line));
}

/// Ctrl-C and SIGTERM, caught from the moment [`ShutdownSignals::install`] returns: a signal
/// that arrives before anyone waits is kept, not left to the default action (which would kill
/// the process without cleanup).
pub struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(ShutdownSignals {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    /// Resolves on the first of them.
    pub async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() -> anyhow::Result<()> {
    ShutdownSignals::install()?.recv().await;
    Ok(())
}
