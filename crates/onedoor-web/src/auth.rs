//! Staff sign-in for the web page (issue 8, first step): per-front-office accounts that see
//! only their own office's cases, and supervisors who see everything.
//!
//! Accounts live in a TOML file the operator keeps (not in the registry: the registry describes
//! agencies, not people):
//!
//! ```toml
//! [[account]]
//! name = "somchai"
//! role = "front-office"          # or "supervisor"
//! office = "ODSC-VTE-SAYSETTHA"  # front-office accounts only; must be a front office
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! ```
//!
//! Passwords are stored only as Argon2id PHC strings; Debian's `argon2` tool makes one:
//! `printf %s 'the password' | argon2 "$(head -c 16 /dev/urandom | base64)" -id -e`.
//! Without an accounts file the page has no sign-in (the development default of `onedoor up`,
//! which listens on loopback only).
//!
//! Sessions are random 256-bit tokens held in memory (a tracker restart signs everyone out) in
//! an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the page is served over HTTPS), so
//! another site cannot post with a clerk's session; every form also carries a CSRF token
//! (`csrf`), and failed sign-ins are delayed (`throttle`). Not yet: a CLI to add accounts.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
};
use onedoor_case::{AgencyCode, AgencyKind, Registry};
use serde::Deserialize;

use crate::error::WebError;

/// The session cookie.
pub const SESSION_COOKIE: &str = "onedoor_session";
/// The cookie of a computer that has signed in to an account before (see `throttle`).
pub const DEVICE_COOKIE: &str = "onedoor_device";
/// A clerk's computer stays known for a season of working days.
pub const DEVICE_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// A working day and then some: a clerk signs in once a day.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; expired ones are dropped first, then the oldest.
const MAX_SESSIONS: usize = 10_000;

/// What an account may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Cases opened at this front office only.
    FrontOffice(AgencyCode),
    /// Every case, and the per-agency workload.
    Supervisor,
}

#[derive(Debug, Clone)]
struct Account {
    role: Role,
    password_hash: String,
}

/// The accounts file, checked once at start.
#[derive(Debug, Clone)]
pub struct StaffAccounts {
    accounts: BTreeMap<String, Account>,
    /// Verified against when the name is unknown, so an unknown name costs as much time as a
    /// wrong password and names cannot be told apart by timing.
    decoy: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    account: Vec<RawAccount>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: String,
    role: String,
    office: Option<String>,
    password_hash: String,
}

fn config_error(why: String) -> WebError {
    WebError::Config {
        key: "staff_accounts",
        why,
    }
}

impl StaffAccounts {
    pub fn load(path: &Path, registry: &Registry) -> Result<Self, WebError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| config_error(format!("reading {}: {e}", path.display())))?;
        Self::from_toml(&text, &path.display().to_string(), registry)
    }

    /// Parses and checks an accounts file: names unique and non-empty, roles known, offices
    /// front offices of the registry, hashes Argon2 PHC strings. Errors name the account.
    pub fn from_toml(text: &str, origin: &str, registry: &Registry) -> Result<Self, WebError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| config_error(format!("{origin}: {e}")))?;
        let mut accounts = BTreeMap::new();
        for account in raw.account {
            let name = account.name.trim().to_owned();
            let bad = |why: &str| config_error(format!("{origin}: account {name:?}: {why}"));
            if name.is_empty() || name.chars().any(char::is_control) {
                return Err(bad("a name must be non-empty printable text"));
            }
            let role = match (account.role.as_str(), account.office.as_deref()) {
                ("supervisor", None) => Role::Supervisor,
                ("supervisor", Some(_)) => return Err(bad("a supervisor has no office")),
                ("front-office", Some(office)) => {
                    let code =
                        AgencyCode::parse(office).map_err(|e| bad(&format!("office: {e}")))?;
                    match registry.agency(&code) {
                        Some(agency) if agency.kind == AgencyKind::FrontOffice => {
                            Role::FrontOffice(code)
                        }
                        Some(_) => return Err(bad("office is not a front office")),
                        None => return Err(bad("office is not in the registry")),
                    }
                }
                ("front-office", None) => {
                    return Err(bad("a front-office account needs an office"));
                }
                (other, _) => {
                    return Err(bad(&format!(
                        "role {other:?} is neither \"front-office\" nor \"supervisor\""
                    )));
                }
            };
            let parsed = PasswordHash::new(&account.password_hash)
                .map_err(|e| bad(&format!("password_hash is not a PHC string: {e}")))?;
            if !parsed.algorithm.as_str().starts_with("argon2") {
                return Err(bad("password_hash must be an Argon2 hash"));
            }
            if accounts
                .insert(
                    name.clone(),
                    Account {
                        role,
                        password_hash: account.password_hash,
                    },
                )
                .is_some()
            {
                return Err(bad("the name is used twice"));
            }
        }
        let decoy = accounts
            .values()
            .next()
            .map(|a| a.password_hash.clone())
            .ok_or_else(|| config_error(format!("{origin}: no [[account]] in the file")))?;
        Ok(StaffAccounts { accounts, decoy })
    }

    /// Whether `name` is an account of the file.
    pub fn knows(&self, name: &str) -> bool {
        self.accounts.contains_key(name.trim())
    }

    /// The account's role when `password` is its password.
    pub fn verify(&self, name: &str, password: &str) -> Option<Role> {
        let account = self.accounts.get(name.trim());
        let hash = account.map_or(self.decoy.as_str(), |a| a.password_hash.as_str());
        // Parsed at load, so parsing again cannot fail; if it did, nobody signs in.
        let parsed = PasswordHash::new(hash).ok()?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        match account {
            Some(account) if matches => Some(account.role.clone()),
            _ => None,
        }
    }
}

/// How much work a new hash costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    /// Argon2id with the crate's recommended parameters (OWASP's minimum: 19 MiB, 2 passes).
    Standard,
    /// Tiny parameters, for tests only: unoptimised test builds would take seconds per hash.
    TestOnly,
}

/// An Argon2id PHC string for `password`, with a random salt.
pub fn hash_password(password: &str, cost: HashCost) -> Result<String, WebError> {
    let params = match cost {
        HashCost::Standard => Params::default(),
        HashCost::TestOnly => Params::new(64, 1, 1, None)
            .map_err(|e| config_error(format!("argon2 parameters: {e}")))?,
    };
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| config_error(format!("hashing a password: {e}")))
}

/// Who is signed in with a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub name: String,
    pub role: Role,
    expires: Instant,
}

/// Open sessions, by token.
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves at worst one session half-added; the map is
        // still a valid map.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session; returns its token.
    pub fn start(&self, name: &str, role: Role) -> String {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut open = self.lock();
        if open.len() >= MAX_SESSIONS {
            open.retain(|_, s| s.expires > now);
        }
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(t, _)| t.clone())
        {
            open.remove(&oldest);
        }
        open.insert(
            token.clone(),
            Session {
                name: name.to_owned(),
                role,
                expires: now + SESSION_TTL,
            },
        );
        token
    }

    /// The live session of `token`, if any (an expired one is removed).
    pub fn get(&self, token: &str) -> Option<Session> {
        let mut open = self.lock();
        match open.get(token) {
            Some(session) if session.expires > Instant::now() => Some(session.clone()),
            Some(_) => {
                open.remove(token);
                None
            }
            None => None,
        }
    }

    pub fn end(&self, token: &str) {
        self.lock().remove(token);
    }
}

/// Who is looking at a page, as the handlers need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// The page runs without accounts (development, loopback): everything is visible.
    Open,
    Staff {
        name: String,
        role: Role,
    },
}

impl Viewer {
    /// May this viewer see a case opened at `origin`?
    pub fn may_see(&self, origin: &str) -> bool {
        match self {
            Viewer::Open
            | Viewer::Staff {
                role: Role::Supervisor,
                ..
            } => true,
            Viewer::Staff {
                role: Role::FrontOffice(office),
                ..
            } => office.as_str() == origin,
        }
    }

    /// The front office a viewer is limited to, if any.
    pub fn office(&self) -> Option<&AgencyCode> {
        match self {
            Viewer::Staff {
                role: Role::FrontOffice(office),
                ..
            } => Some(office),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onedoor_tracker::built_in_registry;

    fn file(accounts: &[(&str, &str, Option<&str>, &str)]) -> String {
        let mut text = String::new();
        for (name, role, office, password) in accounts {
            let hash = hash_password(password, HashCost::TestOnly).expect("hash");
            text.push_str(&format!(
                "[[account]]\nname = {name:?}\nrole = {role:?}\n{}password_hash = {hash:?}\n\n",
                office.map_or(String::new(), |o| format!("office = {o:?}\n"))
            ));
        }
        text
    }

    #[test]
    fn a_front_office_account_signs_in_and_sees_only_its_office() {
        let registry = built_in_registry().expect("registry");
        let text = file(&[
            (
                "somchai",
                "front-office",
                Some("ODSC-VTE-SAYSETTHA"),
                "pa55 word",
            ),
            ("boss", "supervisor", None, "another one"),
        ]);
        let accounts = StaffAccounts::from_toml(&text, "test", &registry).expect("valid");
        let office = AgencyCode::parse("ODSC-VTE-SAYSETTHA").expect("code");
        assert_eq!(
            accounts.verify("somchai", "pa55 word"),
            Some(Role::FrontOffice(office))
        );
        assert_eq!(accounts.verify("somchai", "wrong"), None);
        assert_eq!(accounts.verify("nobody", "pa55 word"), None);
        assert_eq!(
            accounts.verify("boss", "another one"),
            Some(Role::Supervisor)
        );
        let clerk = Viewer::Staff {
            name: "somchai".into(),
            role: accounts.verify("somchai", "pa55 word").expect("role"),
        };
        assert!(clerk.may_see("ODSC-VTE-SAYSETTHA"));
        assert!(!clerk.may_see("ODSC-CPS-PAKSE"));
    }

    #[test]
    fn bad_accounts_files_are_refused_naming_the_account() {
        let registry = built_in_registry().expect("registry");
        let bad = [
            file(&[("a", "front-office", Some("MOF"), "x")]),
            file(&[("a", "front-office", None, "x")]),
            file(&[("a", "supervisor", Some("ODSC-VTE-SAYSETTHA"), "x")]),
            file(&[("a", "admin", None, "x")]),
            file(&[
                ("a", "supervisor", None, "x"),
                ("a", "supervisor", None, "y"),
            ]),
            "[[account]]\nname = \"a\"\nrole = \"supervisor\"\npassword_hash = \"plain\"\n".into(),
            String::new(),
        ];
        for text in bad {
            let error = StaffAccounts::from_toml(&text, "staff.toml", &registry)
                .expect_err(&text)
                .to_string();
            assert!(error.contains("staff_accounts"), "{error}");
        }
    }

    #[test]
    fn sessions_expire_and_end() {
        let sessions = Sessions::default();
        let token = sessions.start("boss", Role::Supervisor);
        assert_eq!(token.len(), 64);
        assert_eq!(sessions.get(&token).map(|s| s.name), Some("boss".into()));
        sessions.end(&token);
        assert!(sessions.get(&token).is_none());
        assert!(sessions.get("not a token").is_none());
    }
}
