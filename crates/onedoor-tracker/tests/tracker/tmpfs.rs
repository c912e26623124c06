//! A tmpfs for one test: a file system the test can fill or make read-only under a SQLite
//! database. Mounting needs root (CI runs as root); elsewhere the tests that need it skip.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for one test, unmounted on drop even when the test fails.
pub struct Tmpfs {
    dir: tempfile::TempDir,
    filler: Option<PathBuf>,
}

impl Tmpfs {
    /// `None` (said on stderr) when this process may not mount; in CI that fails instead.
    pub fn mount(size: &str) -> anyhow::Result<Option<Self>> {
        let dir = tempfile::tempdir()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status();
        match mounted {
            Ok(status) if status.success() => Ok(Some(Tmpfs { dir, filler: None })),
            outcome => {
                let why = format!("cannot mount a tmpfs ({outcome:?}; needs root)");
                anyhow::ensure!(std::env::var_os("CI").is_none(), "{why}: required in CI");
                eprintln!("\n*** SKIPPED: {why} ***\n");
                Ok(None)
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn remount(&self, options: &str) -> anyhow::Result<()> {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.path())
            .status()?;
        anyhow::ensure!(status.success(), "remount {options}: {status}");
        Ok(())
    }

    /// Writes a file until the file system has no space left.
    pub fn fill(&mut self) -> anyhow::Result<()> {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path)?;
        let chunk = vec![0x5a_u8; 64 * 1024];
        let mut small = [0x5a_u8; 512];
        let mut full = false;
        while !full {
            full = file.write_all(&chunk).is_err();
        }
        // Down to the last bytes: a page SQLite could still allocate would let it commit.
        while file.write_all(&small).is_ok() {}
        small[0] = 0;
        let _ = file.write_all(&small[..1]);
        self.filler = Some(path);
        Ok(())
    }

    pub fn free(&mut self) -> anyhow::Result<()> {
        if let Some(path) = self.filler.take() {
            std::fs::remove_file(path)?;
        }
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily if something still holds a file there (a tracker task not yet gone): the
        // mount leaves the tree at once and goes when the last file closes.
        let unmounted = Command::new("umount").arg(self.path()).status();
        if !matches!(unmounted, Ok(status) if status.success()) {
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}
