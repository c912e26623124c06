//! What changes from one registry to the next, in words an operator reads before a change of
//! government reaches the bus: agencies added, renamed, merged (with their successor),
//! retired, and services whose route changes. `onedoor registry diff` prints it and
//! `onedoor registry apply` plans from it.
//!
//! Only agencies current in the old registry can be renamed, merged or retired by the new one;
//! an agency already gone in the old one is history in both and not a change.

use std::fmt::Write as _;

use super::{Agency, Ending, Registry, Service, Stage};
use crate::codes::{AgencyCode, ServiceCode};
use crate::text::escape;

/// Why two registries cannot be compared as old and new.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error(
        "the new registry (version {new_version}, effective {new_effective}) does not follow the old one (version {old_version}, effective {old_effective}): both its version and its effective date must be later"
    )]
    NotNewer {
        old_version: String,
        old_effective: time::Date,
        new_version: String,
        new_effective: time::Date,
    },
}

/// One agency's change between two registries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgencyChange<'a> {
    /// Current in the new registry only (a rename's new code is reported as the rename).
    Added { agency: &'a Agency },
    /// Same code, new name.
    Renamed { old: &'a Agency, new: &'a Agency },
    /// The same organisation continues under a new code.
    Recoded {
        old: &'a Agency,
        successor: &'a Agency,
    },
    /// Absorbed by `successor`, which takes its open tasks.
    Merged {
        old: &'a Agency,
        successor: &'a Agency,
    },
    /// Gone with no successor. `listed` is false when the new registry dropped it outright, so
    /// its keys no longer verify the history it signed.
    Retired { old: &'a Agency, listed: bool },
}

impl<'a> AgencyChange<'a> {
    /// The agency the change is about, by its code in the old registry (the new one for
    /// additions).
    pub fn code(&self) -> &'a AgencyCode {
        match self {
            AgencyChange::Added { agency } => &agency.code,
            AgencyChange::Renamed { old, .. }
            | AgencyChange::Recoded { old, .. }
            | AgencyChange::Merged { old, .. }
            | AgencyChange::Retired { old, .. } => &old.code,
        }
    }

    /// Who takes over the agency's open tasks, for a change that ends it.
    pub fn successor(&self) -> Option<&'a Agency> {
        match self {
            AgencyChange::Recoded { successor, .. } | AgencyChange::Merged { successor, .. } => {
                Some(successor)
            }
            _ => None,
        }
    }

    /// Whether the agency stops acting under its code from the new registry's effective date.
    pub fn ends(&self) -> bool {
        matches!(
            self,
            AgencyChange::Recoded { .. }
                | AgencyChange::Merged { .. }
                | AgencyChange::Retired { .. }
        )
    }
}

/// A service's change between two registries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceChange<'a> {
    Added {
        new: &'a Service,
    },
    Removed {
        old: &'a Service,
    },
    /// Agencies, their order or time limits differ.
    Rerouted {
        old: &'a Service,
        new: &'a Service,
    },
}

/// Everything that changes from `old` to `new`, in a stable order: agencies by kind of change
/// then code (merges grouped by successor), services by code.
#[derive(Debug, Clone)]
pub struct RegistryDiff<'a> {
    pub old: &'a Registry,
    pub new: &'a Registry,
    pub agencies: Vec<AgencyChange<'a>>,
    pub services: Vec<ServiceChange<'a>>,
}

impl<'a> RegistryDiff<'a> {
    /// Compares `old` with `new`, which must be later in version and effective date.
    pub fn between(old: &'a Registry, new: &'a Registry) -> Result<Self, DiffError> {
        if new.version <= old.version || new.effective_from <= old.effective_from {
            return Err(DiffError::NotNewer {
                old_version: old.version.to_string(),
                old_effective: old.effective_from,
                new_version: new.version.to_string(),
                new_effective: new.effective_from,
            });
        }
        Ok(RegistryDiff {
            old,
            new,
            agencies: agency_changes(old, new),
            services: service_changes(old, new),
        })
    }

    /// The changes that end an agency current in the old registry.
    pub fn endings(&self) -> impl Iterator<Item = &AgencyChange<'a>> {
        self.agencies.iter().filter(|change| change.ends())
    }

    /// One line per change, then a count; English, with Lao names in parentheses.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![
            format!("from: {}", heading(self.old)),
            format!("to: {}", heading(self.new)),
        ];
        lines.extend(self.agencies.iter().map(agency_line));
        lines.extend(self.services.iter().map(service_line));
        let count = |wanted: fn(&AgencyChange<'_>) -> bool| {
            self.agencies.iter().filter(|c| wanted(c)).count()
        };
        lines.push(format!(
            "summary: {} added, {} renamed, {} merged, {} retired; {} services changed",
            count(|c| matches!(c, AgencyChange::Added { .. })),
            count(|c| matches!(
                c,
                AgencyChange::Renamed { .. } | AgencyChange::Recoded { .. }
            )),
            count(|c| matches!(c, AgencyChange::Merged { .. })),
            count(|c| matches!(c, AgencyChange::Retired { .. })),
            self.services.len(),
        ));
        lines
    }
}

fn agency_changes<'a>(old: &'a Registry, new: &'a Registry) -> Vec<AgencyChange<'a>> {
    let mut changes = Vec::new();
    let mut recoded_to = Vec::new();
    for before in old.active_agencies() {
        let Some(after) = new.agency(&before.code) else {
            changes.push(AgencyChange::Retired {
                old: before,
                listed: false,
            });
            continue;
        };
        let successor = after.merged_into.as_ref().and_then(|code| new.agency(code));
        changes.push(match (after.ending, successor) {
            (None, _) if (&before.name_en, &before.name_lo) != (&after.name_en, &after.name_lo) => {
                AgencyChange::Renamed {
                    old: before,
                    new: after,
                }
            }
            (None, _) => continue,
            (Some(Ending::Renamed), Some(successor)) => {
                recoded_to.push(&successor.code);
                AgencyChange::Recoded {
                    old: before,
                    successor,
                }
            }
            (Some(Ending::Merged), Some(successor)) => AgencyChange::Merged {
                old: before,
                successor,
            },
            // Validation gives every merged or renamed agency a listed successor.
            (Some(_), _) => AgencyChange::Retired {
                old: before,
                listed: true,
            },
        });
    }
    for after in new.active_agencies() {
        let was_current = old.agency(&after.code).is_some_and(Agency::is_active);
        if !was_current && !recoded_to.contains(&&after.code) {
            changes.push(AgencyChange::Added { agency: after });
        }
    }
    changes.sort_by(|a, b| order(a).cmp(&order(b)));
    changes
}

/// Additions, renames, merges (grouped by successor), retirements; then by code.
fn order<'a>(change: &AgencyChange<'a>) -> (u8, Option<&'a AgencyCode>, &'a AgencyCode) {
    let rank = match change {
        AgencyChange::Added { .. } => 0,
        AgencyChange::Renamed { .. } | AgencyChange::Recoded { .. } => 1,
        AgencyChange::Merged { .. } => 2,
        AgencyChange::Retired { .. } => 3,
    };
    let group = match change {
        AgencyChange::Merged { successor, .. } => Some(&successor.code),
        _ => None,
    };
    (rank, group, change.code())
}

fn service_changes<'a>(old: &'a Registry, new: &'a Registry) -> Vec<ServiceChange<'a>> {
    let mut codes: Vec<&ServiceCode> = old.services.keys().chain(new.services.keys()).collect();
    codes.sort();
    codes.dedup();
    codes
        .into_iter()
        .filter_map(|code| match (old.service(code), new.service(code)) {
            (Some(old), Some(new)) if route_key(&old.route) != route_key(&new.route) => {
                Some(ServiceChange::Rerouted { old, new })
            }
            (Some(_), Some(_)) | (None, None) => None,
            (Some(old), None) => Some(ServiceChange::Removed { old }),
            (None, Some(new)) => Some(ServiceChange::Added { new }),
        })
        .collect()
}

/// What makes a route: who, in which order, with which time limit (not the purpose wording).
fn route_key(route: &[Stage]) -> Vec<Vec<(Vec<&AgencyCode>, u32)>> {
    route
        .iter()
        .map(|stage| {
            stage
                .steps
                .iter()
                .map(|step| (step.agency.codes().iter().collect(), step.working_days))
                .collect()
        })
        .collect()
}

fn heading(registry: &Registry) -> String {
    format!(
        "\"{}\", version {}, effective {}",
        escape(&registry.name),
        registry.version,
        registry.effective_from
    )
}

/// `MOF "Ministry of Finance" (ກະຊວງການເງິນ)`.
pub fn named(agency: &Agency) -> String {
    format!(
        "{} \"{}\" ({})",
        agency.code,
        escape(&agency.name_en),
        escape(&agency.name_lo)
    )
}

fn agency_line(change: &AgencyChange<'_>) -> String {
    match change {
        AgencyChange::Added { agency } => {
            format!("added: {}, a {}", named(agency), agency.kind.as_str())
        }
        AgencyChange::Renamed { old, new } => format!(
            "renamed: {} keeps its code and is now \"{}\" ({})",
            named(old),
            escape(&new.name_en),
            escape(&new.name_lo)
        ),
        AgencyChange::Recoded { old, successor } => format!(
            "renamed: {} is now {}; its open tasks move there",
            named(old),
            named(successor)
        ),
        AgencyChange::Merged { old, successor } => format!(
            "merged: {} into {}; its open tasks move there",
            named(old),
            named(successor)
        ),
        AgencyChange::Retired { old, listed: true } => format!(
            "retired: {} with no successor; it may hold no open task",
            named(old)
        ),
        AgencyChange::Retired { old, listed: false } => format!(
            "retired: {} is no longer listed, so its keys no longer verify the history it signed; keep it listed with retired = true",
            named(old)
        ),
    }
}

fn service_line(change: &ServiceChange<'_>) -> String {
    match change {
        ServiceChange::Added { new } => format!(
            "service added: {} \"{}\", route {}",
            new.code,
            escape(&new.name_en),
            route_words(&new.route)
        ),
        ServiceChange::Removed { old } => format!(
            "service removed: {} \"{}\"; cases already open keep their route",
            old.code,
            escape(&old.name_en)
        ),
        ServiceChange::Rerouted { old, new } => format!(
            "service rerouted: {} \"{}\", route {} becomes {}",
            new.code,
            escape(&new.name_en),
            route_words(&old.route),
            route_words(&new.route)
        ),
    }
}

/// `MPWT 10d and MONRE 10d, then MOPS 5d`: stages in order, parallel steps joined by "and",
/// a choice of agencies by "or", each with its time limit in working days.
pub fn route_words(route: &[Stage]) -> String {
    let mut out = String::new();
    for (index, stage) in route.iter().enumerate() {
        if index > 0 {
            out.push_str(", then ");
        }
        for (step_index, step) in stage.steps.iter().enumerate() {
            if step_index > 0 {
                out.push_str(" and ");
            }
            let codes: Vec<&str> = step.agency.codes().iter().map(AgencyCode::as_str).collect();
            let _ = write!(out, "{} {}d", codes.join(" or "), step.working_days);
        }
    }
    out
}
