//! The registry: which agencies exist, which services the catalogue offers, and the working
//! calendar. It is data (a TOML file under `deploy/registry/`), never code: merging two
//! ministries is an edit to that file.

pub mod diff;
mod live;
mod raw;
mod validate;
mod version;

use std::collections::BTreeMap;
use std::path::Path;

use time::Date;

pub use crate::calendar::{Calendar, Holiday};
use crate::codes::{AgencyCode, ServiceCode};
pub use live::LiveRegistry;
pub use validate::{Problem, RegistryError};
pub use version::RegistryVersion;

/// What kind of organisation an agency is; it decides what the agency may do (only a front
/// office opens and resolves cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgencyKind {
    Ministry,
    /// Prime Minister's Office, State Inspection Authority, Bank of the Lao PDR…
    MinisterialBody,
    /// A One-Door Service Center (ສູນບໍລິການປະຕູດຽວ).
    FrontOffice,
}

impl AgencyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgencyKind::Ministry => "ministry",
            AgencyKind::MinisterialBody => "ministerial-body",
            AgencyKind::FrontOffice => "front-office",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    pub code: AgencyCode,
    pub kind: AgencyKind,
    pub name_en: String,
    pub name_lo: String,
    /// Province or capital the agency sits in; mostly for front offices.
    pub province: Option<String>,
    /// The agency that took over this one's work: set when it was merged away or renamed to a
    /// new code (see [`Agency::ending`]). It stays in the registry so the cases it still holds
    /// can be finished and read, but no route may go through it any more.
    pub merged_into: Option<AgencyCode>,
    /// How the agency stopped acting on its own; `None` while it is current.
    pub ending: Option<Ending>,
    /// Names it had before `name_en`/`name_lo`, oldest first, so a step taken years ago shows
    /// the name the agency bore on that day.
    pub former_names: Vec<FormerName>,
    /// Public keys that verify the agency's event signatures. Old keys stay listed after a
    /// rotation so old events still verify.
    pub keys: Vec<AgencyKey>,
    /// Hashes of the bearer tokens the agency's systems present to its adapter.
    pub tokens: Vec<TokenHash>,
}

/// A bearer token, as the registry keeps it: only its SHA-256, so a copy of the registry lets
/// nobody act for the agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash {
    pub label: String,
    pub sha256: [u8; 32],
    /// Kept listed so a revoked token is refused with a clear message, not as unknown.
    pub revoked: bool,
}

/// One of an agency's signing keys, public half only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencyKey {
    /// Named in each signed event's `key_id`, e.g. `MOIC-2026-01`.
    pub id: String,
    pub public_key: [u8; 32],
    pub valid_from: Date,
    /// Last day the key may sign; `None` while current.
    pub valid_until: Option<Date>,
}

impl AgencyKey {
    pub fn valid_on(&self, date: Date) -> bool {
        date >= self.valid_from && self.valid_until.is_none_or(|until| date <= until)
    }
}

/// How an agency left the current shape of government.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ending {
    /// Absorbed by [`Agency::merged_into`], which takes its open tasks.
    Merged,
    /// The same organisation continues under the code [`Agency::merged_into`].
    Renamed,
    /// Dissolved with no successor: it may hold no open task when the registry takes effect.
    Retired,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Merged => "merged",
            Ending::Renamed => "renamed",
            Ending::Retired => "retired",
        }
    }
}

/// A name an agency bore up to and including `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormerName {
    pub name_en: String,
    pub name_lo: String,
    pub until: Date,
}

impl Agency {
    pub fn is_active(&self) -> bool {
        self.ending.is_none()
    }

    /// The agency's (English, Lao) name on `date`: the first former name still in use that
    /// day, else the current one.
    pub fn name_on(&self, date: Date) -> (&str, &str) {
        self.former_names
            .iter()
            .find(|former| date <= former.until)
            .map_or((&self.name_en, &self.name_lo), |former| {
                (&former.name_en, &former.name_lo)
            })
    }
}

/// Who performs one step of a service's route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepAgency {
    /// A fixed agency, e.g. MOF for tax identification.
    Fixed(AgencyCode),
    /// One of several agencies, chosen by the sender at hand-off time (e.g. "the sector
    /// ministry" of an investment licence).
    AnyOf(Vec<AgencyCode>),
}

impl StepAgency {
    pub fn admits(&self, agency: &AgencyCode) -> bool {
        match self {
            StepAgency::Fixed(code) => code == agency,
            StepAgency::AnyOf(codes) => codes.contains(agency),
        }
    }

    pub fn codes(&self) -> &[AgencyCode] {
        match self {
            StepAgency::Fixed(code) => std::slice::from_ref(code),
            StepAgency::AnyOf(codes) => codes,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub agency: StepAgency,
    pub purpose_en: String,
    pub purpose_lo: String,
    /// Time limit for the agency's task, in working days of the registry's calendar.
    pub working_days: u32,
}

/// Steps that run at the same time (parallel reviews); a service's route is a list of stages
/// run one after the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub code: ServiceCode,
    pub name_en: String,
    pub name_lo: String,
    pub route: Vec<Stage>,
    /// A strict route refuses hand-offs off the route or ahead of an unfinished stage (see
    /// `case::route`); otherwise the route only gives time limits and guides the sender.
    pub strict_route: bool,
}

impl Service {
    /// The planned step for `agency`, if the route has one: gives its time limit.
    pub fn step_for(&self, agency: &AgencyCode) -> Option<&Step> {
        self.route
            .iter()
            .flat_map(|stage| &stage.steps)
            .find(|step| step.agency.admits(agency))
    }
}

/// A validated registry. Built only by [`Registry::load`] / [`Registry::from_toml`], so every
/// value inside has passed validation: routes name known, active agencies, codes are
/// subject-safe, every name has its Lao form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub name: String,
    pub version: RegistryVersion,
    /// When this shape of government took effect.
    pub effective_from: Date,
    /// Time limit for a task outside a service's planned route.
    pub default_step_working_days: u32,
    pub agencies: BTreeMap<AgencyCode, Agency>,
    pub services: BTreeMap<ServiceCode, Service>,
    pub calendar: Calendar,
    /// The bus operator's public signing keys (`[[operator.key]]`, the shape of an agency's):
    /// they verify `task_transferred` events, which move the open tasks of an agency a registry
    /// change ends to its successor, and no other kind. Old keys stay listed, as agencies' do.
    pub operator_keys: Vec<AgencyKey>,
}

impl Registry {
    /// Reads and validates a registry file; errors name the file.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            file: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates registry text; `origin` names the source in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, RegistryError> {
        let raw: raw::RawRegistry = toml::from_str(text).map_err(|err| RegistryError::Syntax {
            file: origin.to_owned(),
            message: err.to_string(),
        })?;
        validate::validate(raw, origin)
    }

    pub fn agency(&self, code: &AgencyCode) -> Option<&Agency> {
        self.agencies.get(code)
    }

    pub fn service(&self, code: &ServiceCode) -> Option<&Service> {
        self.services.get(code)
    }

    pub fn active_agencies(&self) -> impl Iterator<Item = &Agency> {
        self.agencies.values().filter(|a| a.is_active())
    }

    /// Follows `merged_into` links to the agency that now does `code`'s work.
    pub fn successor_of<'a>(&'a self, code: &'a AgencyCode) -> Option<&'a AgencyCode> {
        let mut current = code;
        // Validation refuses cycles, but stay bounded anyway: a registry is edited by hand.
        for _ in 0..=self.agencies.len() {
            match self.agencies.get(current)?.merged_into.as_ref() {
                Some(next) => current = next,
                None => return Some(current),
            }
        }
        None
    }

    /// Adds a public key to an agency (used by `onedoor up`, which makes development keys at
    /// start). Refuses an unknown agency or a key id already in use.
    pub fn add_key(&mut self, agency: &AgencyCode, key: AgencyKey) -> Result<(), String> {
        if self.key_id_in_use(&key.id) {
            return Err(format!("key id {} is already in use", key.id));
        }
        let entry = self
            .agencies
            .get_mut(agency)
            .ok_or_else(|| format!("agency {agency} is not in the registry"))?;
        entry.keys.push(key);
        Ok(())
    }

    /// Adds the credentials listed in a credentials file, all or nothing: `[[key]]` tables
    /// (`agency`, `id`, `public_key`, `valid_from`, optional `valid_until`), `[[operator_key]]`
    /// tables (the same without `agency`) and `[[token]]` tables (`agency`, `label`, `sha256`,
    /// optional `revoked`).
    pub fn add_keys_from_toml(&mut self, text: &str, origin: &str) -> Result<(), RegistryError> {
        let raw: raw::RawKeyFile = toml::from_str(text).map_err(|err| RegistryError::Syntax {
            file: origin.to_owned(),
            message: err.to_string(),
        })?;
        let mut problems = validate::Problems::default();
        let mut seen = self
            .agencies
            .values()
            .flat_map(|a| a.keys.iter().map(|k| k.id.clone()))
            .chain(self.operator_keys.iter().map(|k| k.id.clone()))
            .collect();
        let operator_additions = validate::keys(
            "[[operator_key]]",
            &raw.operator_keys,
            &mut seen,
            &mut problems,
        );
        let mut additions = Vec::new();
        for (index, entry) in raw.keys.iter().enumerate() {
            let name = format!("key #{} of agency {:?}", index + 1, entry.agency);
            let agency = match AgencyCode::parse(&entry.agency) {
                Ok(code) if self.agencies.contains_key(&code) => code,
                _ => {
                    problems.0.push(Problem {
                        entry: name,
                        problem: "agency is not in the registry".into(),
                    });
                    continue;
                }
            };
            for key in validate::keys(
                &name,
                std::slice::from_ref(&entry.key),
                &mut seen,
                &mut problems,
            ) {
                additions.push((agency.clone(), key));
            }
        }
        let mut token_additions = Vec::new();
        for (index, entry) in raw.tokens.iter().enumerate() {
            let name = format!("token #{} of agency {:?}", index + 1, entry.agency);
            let agency = match AgencyCode::parse(&entry.agency) {
                Ok(code) if self.agencies.contains_key(&code) => code,
                _ => {
                    problems.0.push(Problem {
                        entry: name,
                        problem: "agency is not in the registry".into(),
                    });
                    continue;
                }
            };
            for token in validate::tokens(&name, std::slice::from_ref(&entry.token), &mut problems)
            {
                token_additions.push((agency.clone(), token));
            }
        }
        if !problems.0.is_empty() {
            return Err(RegistryError::Invalid {
                file: origin.to_owned(),
                problems: problems.0,
            });
        }
        for (agency, key) in additions {
            if let Some(entry) = self.agencies.get_mut(&agency) {
                entry.keys.push(key);
            }
        }
        self.operator_keys.extend(operator_additions);
        for (agency, token) in token_additions {
            if let Some(entry) = self.agencies.get_mut(&agency) {
                entry.tokens.push(token);
            }
        }
        Ok(())
    }

    /// Adds a token hash to an agency (used by `onedoor up` for its development tokens).
    pub fn add_token(&mut self, agency: &AgencyCode, token: TokenHash) -> Result<(), String> {
        let entry = self
            .agencies
            .get_mut(agency)
            .ok_or_else(|| format!("agency {agency} is not in the registry"))?;
        entry.tokens.push(token);
        Ok(())
    }

    /// The operator key `key_id`, if the registry lists it.
    pub fn operator_key(&self, key_id: &str) -> Option<&AgencyKey> {
        self.operator_keys.iter().find(|k| k.id == key_id)
    }

    /// Adds an operator key (`onedoor up` makes a development one). Refuses a key id in use.
    pub fn add_operator_key(&mut self, key: AgencyKey) -> Result<(), String> {
        if self.key_id_in_use(&key.id) {
            return Err(format!("key id {} is already in use", key.id));
        }
        self.operator_keys.push(key);
        Ok(())
    }

    fn key_id_in_use(&self, id: &str) -> bool {
        self.operator_keys.iter().any(|k| k.id == id)
            || self
                .agencies
                .values()
                .any(|a| a.keys.iter().any(|k| k.id == id))
    }

    /// The key `key_id` of `agency`, if the registry lists it.
    pub fn key(&self, agency: &AgencyCode, key_id: &str) -> Option<&AgencyKey> {
        self.agencies
            .get(agency)?
            .keys
            .iter()
            .find(|k| k.id == key_id)
    }

    /// One line for `onedoor registry check`.
    pub fn summary(&self) -> String {
        let count = |kind| self.active_agencies().filter(|a| a.kind == kind).count();
        let merged = self.agencies.values().filter(|a| !a.is_active()).count();
        format!(
            "{} (version {}): {} ministries, {} ministerial bodies, {} front offices, {} merged, renamed or retired; {} services; {} holidays (effective {})",
            self.name,
            self.version,
            count(AgencyKind::Ministry),
            count(AgencyKind::MinisterialBody),
            count(AgencyKind::FrontOffice),
            merged,
            self.services.len(),
            self.calendar.holidays.len(),
            self.effective_from,
        )
    }
}
