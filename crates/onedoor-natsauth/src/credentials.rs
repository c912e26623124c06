//! Credentials on disk: one seed file per identity (`<name>.nk`, mode 0600) and a manifest,
//! `credentials.json`, listing each identity's public key, seed file and inbox prefix.
//!
//! ```text
//! <dir>/                      mode 0700 when we create it
//!   credentials.json          { "version": 1, "identities": { "MOF": { "kind": "agency",
//!                               "account": "ONEDOOR", "public_key": "U…", "seed_file": "MOF.nk",
//!                               "inbox_prefix": "_INBOX_MOF" }, … } }
//!   MOF.nk                    the seed, one line, mode 0600
//!   operator.nk, tracker.nk, auditor.nk, system.nk, …
//! ```
//!
//! Seed files are named relative to the manifest, so the directory can be moved or mounted
//! elsewhere (a container secret) without editing it. An identity whose seed its owner keeps
//! (a ministry that made its own with `onedoor keys new`) is listed with its public key and no
//! `seed_file`: the server configuration needs only the public half.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use onedoor_case::Registry;
use serde::{Deserialize, Serialize};

use crate::error::NatsAuthError;
use crate::identity::Identity;
use crate::secret::{PublicKey, Seed};

pub const MANIFEST_FILE: &str = "credentials.json";

/// Bumped when the manifest's shape changes incompatibly.
pub const MANIFEST_VERSION: u32 = 1;

/// What the manifest says about one identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub public_key: PublicKey,
    /// Absolute (the manifest's directory joined with the file name it lists); `None` when
    /// the identity's owner holds the seed ([`CredentialSet::import_public_key`]).
    pub seed_file: Option<PathBuf>,
}

/// Every identity's public key and seed file, as listed by a manifest. Holds no seed: seeds
/// are read from their files only when a client connects ([`CredentialSet::seed`]).
#[derive(Debug, Clone)]
pub struct CredentialSet {
    dir: PathBuf,
    entries: BTreeMap<Identity, Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u32,
    identities: BTreeMap<String, ManifestEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestEntry {
    kind: String,
    account: String,
    public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed_file: Option<String>,
    /// For clients in other languages: the prefix their NATS library must use for replies.
    inbox_prefix: String,
}

impl CredentialSet {
    /// New key pairs for every identity `registry` needs, written to `dir` (created if
    /// missing). Existing seed files of those identities are replaced: this rotates every key.
    pub fn generate(dir: &Path, registry: &Registry) -> Result<Self, NatsAuthError> {
        create_private_dir(dir)?;
        let mut set = CredentialSet {
            dir: dir.to_path_buf(),
            entries: BTreeMap::new(),
        };
        for identity in Identity::all_for(registry) {
            set.add_new(identity)?;
        }
        set.write_manifest()?;
        Ok(set)
    }

    /// The manifest in `dir`. Seed files are not read (see [`CredentialSet::verify`]).
    pub fn load(dir: &Path) -> Result<Self, NatsAuthError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| NatsAuthError::Io {
            action: "reading",
            path: path.clone(),
            source,
        })?;
        let bad = |why: String| NatsAuthError::Manifest {
            path: path.clone(),
            why,
        };
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if manifest.version != MANIFEST_VERSION {
            return Err(bad(format!(
                "version {} (this onedoor reads version {MANIFEST_VERSION})",
                manifest.version
            )));
        }
        let mut entries = BTreeMap::new();
        for (name, entry) in manifest.identities {
            let identity = Identity::parse(&name).map_err(|e| bad(e.to_string()))?;
            let public_key =
                PublicKey::parse(&entry.public_key).map_err(|e| bad(format!("{name}: {e}")))?;
            let seed_file = match &entry.seed_file {
                // A bare file name: the manifest must not point outside its own directory.
                Some(name) => {
                    let file = Path::new(name);
                    if file.components().count() != 1 || file.file_name().is_none() {
                        return Err(bad(format!(
                            "{name}: seed_file {name:?} must be a file name in the same directory"
                        )));
                    }
                    Some(dir.join(file))
                }
                None => None,
            };
            entries.insert(
                identity,
                Entry {
                    public_key,
                    seed_file,
                },
            );
        }
        Ok(CredentialSet {
            dir: dir.to_path_buf(),
            entries,
        })
    }

    /// The credentials in `dir`, created where missing: an existing manifest is kept (keys are
    /// not rotated by a restart), identities `registry` has gained since (a new agency) get new
    /// keys. Every listed seed file is checked against its public key. This is what
    /// `onedoor up` wants on every start.
    pub fn load_or_generate(dir: &Path, registry: &Registry) -> Result<Self, NatsAuthError> {
        if !dir.join(MANIFEST_FILE).exists() {
            return Self::generate(dir, registry);
        }
        let mut set = Self::load(dir)?;
        set.verify()?;
        let missing: Vec<Identity> = Identity::all_for(registry)
            .into_iter()
            .filter(|identity| !set.entries.contains_key(identity))
            .collect();
        if !missing.is_empty() {
            for identity in missing {
                tracing::info!(identity = %identity, "generating NATS credentials for a new identity");
                set.add_new(identity)?;
            }
            set.write_manifest()?;
        }
        Ok(set)
    }

    /// Replaces `identity`'s key pair (a new seed file, the manifest updated). The old key keeps
    /// working until the server configuration is regenerated and reloaded.
    pub fn rotate(&mut self, identity: &Identity) -> Result<(), NatsAuthError> {
        if !self.entries.contains_key(identity) {
            return Err(NatsAuthError::MissingIdentity {
                identity: identity.to_string(),
                dir: self.dir.clone(),
            });
        }
        self.add_new(identity.clone())?;
        self.write_manifest()
    }

    /// Lists `public_key` as `identity`'s, its seed held by its owner (not in this directory);
    /// a seed file this set had for it stays on disk but is no longer listed. The old key keeps
    /// working until the server configuration is regenerated and reloaded.
    pub fn import_public_key(
        &mut self,
        identity: Identity,
        public_key: PublicKey,
    ) -> Result<(), NatsAuthError> {
        self.entries.insert(
            identity,
            Entry {
                public_key,
                seed_file: None,
            },
        );
        self.write_manifest()
    }

    /// Reads every seed file and checks it belongs to the public key the manifest lists (and
    /// is readable by its owner only). Imported public keys have no seed here to check.
    pub fn verify(&self) -> Result<(), NatsAuthError> {
        for (identity, entry) in &self.entries {
            if entry.seed_file.is_some() {
                self.seed(identity)?;
            }
        }
        Ok(())
    }

    /// The directory holding the manifest and the seed files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn identities(&self) -> impl Iterator<Item = &Identity> {
        self.entries.keys()
    }

    pub fn entry(&self, identity: &Identity) -> Option<&Entry> {
        self.entries.get(identity)
    }

    pub fn public_key(&self, identity: &Identity) -> Option<&PublicKey> {
        self.entries.get(identity).map(|e| &e.public_key)
    }

    pub fn seed_file(&self, identity: &Identity) -> Option<&Path> {
        self.entries
            .get(identity)
            .and_then(|e| e.seed_file.as_deref())
    }

    /// Reads `identity`'s seed from its file, refusing a file others can read and a seed that
    /// is not the one the manifest lists.
    pub fn seed(&self, identity: &Identity) -> Result<Seed, NatsAuthError> {
        let entry = self
            .entries
            .get(identity)
            .ok_or_else(|| NatsAuthError::MissingIdentity {
                identity: identity.to_string(),
                dir: self.dir.clone(),
            })?;
        let path = entry
            .seed_file
            .as_ref()
            .ok_or_else(|| NatsAuthError::SeedHeldElsewhere {
                identity: identity.to_string(),
                dir: self.dir.clone(),
            })?;
        let seed = read_seed_file(path, identity)?;
        if seed.public_key() != &entry.public_key {
            return Err(NatsAuthError::SeedMismatch {
                identity: identity.to_string(),
                path: path.clone(),
                expected: entry.public_key.to_string(),
                found: seed.public_key().to_string(),
            });
        }
        Ok(seed)
    }

    /// Client options for `identity`: its nkey, its inbox prefix and a connection name. Add
    /// timeouts and callbacks on top; keep the inbox prefix (see [`Identity::inbox_prefix`]).
    pub fn connect_options(
        &self,
        identity: &Identity,
    ) -> Result<async_nats::ConnectOptions, NatsAuthError> {
        Ok(crate::connect::connect_options(
            identity,
            &self.seed(identity)?,
        ))
    }

    fn add_new(&mut self, identity: Identity) -> Result<(), NatsAuthError> {
        let seed = Seed::generate()?;
        let seed_file = self.dir.join(format!("{}.nk", identity.name()));
        write_private(
            &self.dir,
            &seed_file,
            format!("{}\n", seed.expose_secret()).as_bytes(),
        )?;
        self.entries.insert(
            identity,
            Entry {
                public_key: seed.public_key().clone(),
                seed_file: Some(seed_file),
            },
        );
        Ok(())
    }

    fn write_manifest(&self) -> Result<(), NatsAuthError> {
        let identities = self
            .entries
            .iter()
            .map(|(identity, entry)| {
                let file = entry
                    .seed_file
                    .as_ref()
                    .and_then(|path| path.file_name())
                    .map(|name| name.to_string_lossy().into_owned());
                (
                    identity.name().to_owned(),
                    ManifestEntry {
                        kind: identity.kind().to_owned(),
                        account: identity.account().to_owned(),
                        public_key: entry.public_key.to_string(),
                        seed_file: file,
                        inbox_prefix: identity.inbox_prefix(),
                    },
                )
            })
            .collect();
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            identities,
        };
        let path = self.dir.join(MANIFEST_FILE);
        let mut text =
            serde_json::to_string_pretty(&manifest).map_err(|e| NatsAuthError::Manifest {
                path: path.clone(),
                why: e.to_string(),
            })?;
        text.push('\n');
        write_private(&self.dir, &path, text.as_bytes())
    }
}

/// Reads a seed file, refusing one that group or others may read (like ssh does with private
/// keys: a seed anyone on the host can read is a credential anyone on the host has).
pub fn read_seed_file(path: &Path, identity: &Identity) -> Result<Seed, NatsAuthError> {
    let io = |action| {
        move |source| NatsAuthError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let metadata = std::fs::metadata(path).map_err(io("reading"))?;
    check_private(path, identity, &metadata)?;
    let text = std::fs::read_to_string(path).map_err(io("reading"))?;
    Seed::parse(&text, identity.name())
}

#[cfg(unix)]
fn check_private(
    path: &Path,
    identity: &Identity,
    metadata: &std::fs::Metadata,
) -> Result<(), NatsAuthError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(NatsAuthError::InsecureSeedFile {
            identity: identity.to_string(),
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(
    _path: &Path,
    _identity: &Identity,
    _metadata: &std::fs::Metadata,
) -> Result<(), NatsAuthError> {
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), NatsAuthError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| NatsAuthError::Io {
        action: "creating",
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` through a temporary file in `dir` (created 0600 by `tempfile`) and
/// a rename, so a reader never sees a half-written seed and the file is never briefly public.
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), NatsAuthError> {
    let io = |action| {
        move |source| NatsAuthError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io("creating a file next to"))?;
    file.write_all(bytes).map_err(io("writing"))?;
    file.as_file().sync_all().map_err(io("writing"))?;
    file.persist(path).map_err(|e| NatsAuthError::Io {
        action: "writing",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}
