//! Secrets and stores are the owner's alone. Everything a long-running command (and the
//! nats-server `up` starts) creates is owner-only through the umask, so no file is ever briefly
//! readable between create and chmod; secret files given to a command are checked before it
//! reads them, and one that others can read stops the start with the `chmod` that fixes it.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::Context as _;

/// New files 0600 and new directories 0700, for this process and every child it starts:
/// tracker.db and its -wal/-shm, endpoints.json, keys, JetStream's store.
pub fn owner_only_umask() {
    use nix::sys::stat::{Mode, umask};
    umask(Mode::from_bits_truncate(0o077));
}

fn mode_of(path: &Path) -> anyhow::Result<u32> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(metadata.permissions().mode() & 0o777)
}

/// Refuses a secret file that group or others may read or write: a key others can read is no
/// longer the agency's alone. Warns about the directory holding it when others can enter it.
pub fn check_secret(what: &str, path: &Path) -> anyhow::Result<()> {
    let mode = mode_of(path)?;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "{what} {} is open to other users (mode {mode:03o}); a secret must be owner-only: \
             run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        warn_if_open(dir)?;
    }
    Ok(())
}

/// [`check_secret`] for each given `(what, path)`; absent settings are skipped.
pub fn check_secrets(files: &[(&str, Option<&Path>)]) -> anyhow::Result<()> {
    for (what, path) in files {
        if let Some(path) = path {
            check_secret(what, path)?;
        }
    }
    Ok(())
}

/// Logs a warning when group or others may enter `dir`: a directory may be shared on purpose
/// (/etc/onedoor), so it is not refused, but the operator should know.
pub fn warn_if_open(dir: &Path) -> anyhow::Result<()> {
    let mode = mode_of(dir)?;
    if mode & 0o077 != 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{mode:03o}"),
            fix = format!("chmod 700 {}", dir.display()),
            "a directory holding secrets or stores is open to other users"
        );
    }
    Ok(())
}

/// Makes everything under `dir` owner-only, warning for each entry it changes: `up`'s own data
/// dir, where files written by an older onedoor (or restored from a backup) may be looser.
pub fn tighten_tree(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let metadata = path
            .symlink_metadata()
            .with_context(|| format!("reading {}", path.display()))?;
        let wanted = if metadata.is_dir() {
            0o700
        } else if metadata.is_file() {
            0o600
        } else {
            continue;
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wanted))
                .with_context(|| format!("making {} owner-only", path.display()))?;
            tracing::warn!(path = %path.display(), was = format!("{mode:03o}"), "made owner-only");
        }
        if wanted == 0o700 {
            tighten_tree(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_others_can_read_is_refused_with_the_chmod() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("seed");
        std::fs::write(&path, "x").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = check_secret("NATS seed", &path).expect_err("refused");
        assert!(err.to_string().contains("mode 640"), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("chmod 600 {}", path.display()))
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        check_secret("NATS seed", &path).expect("owner-only passes");
    }

    #[test]
    fn tighten_tree_makes_files_0600_and_directories_0700() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sub = dir.path().join("keys");
        std::fs::create_dir(&sub).expect("mkdir");
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let file = sub.join("seed");
        std::fs::write(&file, "x").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        tighten_tree(dir.path()).expect("tightened");
        assert_eq!(mode_of(&sub).expect("mode"), 0o700);
        assert_eq!(mode_of(&file).expect("mode"), 0o600);
    }
}
