//! The registry's half of the rule for `task_transferred`: the operator may move an open task
//! only from an agency the registry ended with a successor, only to that successor, and only
//! once the change took effect. The registry-free half (the writer held the task, the event
//! repeats its hand-off and due time) is in `authorize`, which every fold runs.
//!
//! A registry keeps every ended agency listed, so a transfer written under one registry still
//! verifies under the next: there `merged_into` names the *final* successor, which may have
//! been merged on since. A transfer under an earlier version is therefore accepted when the
//! agency it went to does the old agency's work today too (they share a final successor),
//! and the effective date is only checked against the registry version that made it.

use super::decide::Refusal;
use super::event::{CaseEvent, EventBody, TransferReason};
use crate::registry::{Ending, Registry, RegistryVersion};

/// May the operator have written `event` under `registry`? Any other kind passes.
pub fn authorize_transfer(event: &CaseEvent, registry: &Registry) -> Result<(), Refusal> {
    let EventBody::Transferred {
        registry_version,
        reason,
        ..
    } = &event.body
    else {
        return Ok(());
    };
    let case_id = event.case_id;
    let old = &event.from;
    let agency = registry
        .agency(old)
        .ok_or_else(|| Refusal::UnknownActingAgency {
            agency: old.clone(),
        })?;
    let to = event.to.as_ref().ok_or(Refusal::NoReceiver { case_id })?;
    let ended_as = match agency.ending {
        Some(Ending::Merged) => TransferReason::Merged,
        Some(Ending::Renamed) => TransferReason::Renamed,
        _ => {
            return Err(Refusal::NoSuccessor {
                agency: old.clone(),
            });
        }
    };
    let version =
        RegistryVersion::parse(registry_version).map_err(|_| Refusal::TransferMismatch {
            case_id,
            why: "its registry_version is not a registry version",
        })?;
    let successor = registry.successor_of(old);
    let succeeds = if version == registry.version {
        successor == Some(to)
    } else {
        version < registry.version && successor.is_some() && registry.successor_of(to) == successor
    };
    if !succeeds {
        return Err(Refusal::NotSuccessor {
            agency: old.clone(),
            expected: successor.cloned(),
            found: to.clone(),
        });
    }
    if version == registry.version && *reason != ended_as {
        return Err(Refusal::TransferMismatch {
            case_id,
            why: "its reason is not how the registry ended the agency",
        });
    }
    let day = event
        .occurred_at
        .to_offset(registry.calendar.utc_offset)
        .date();
    if version == registry.version && day < registry.effective_from {
        return Err(Refusal::TransferTooEarly {
            agency: old.clone(),
            effective: registry.effective_from,
            day,
        });
    }
    Ok(())
}
