//! The operator's `task_transferred` writes (`docs/agency-lifecycle.md`): one per open task of
//! an agency a registry change ends, each with an event id fixed by the case, the holder and
//! the registry version, so running the change again writes nothing twice (the case log
//! answers a known event id from the log, and JetStream's duplicate window drops a resend).

use onedoor_case::{Action, AgencyCode, CaseId, Command, EventId, Registry, RegistryVersion};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::write::WriteRequest;

/// Who the transfer events name as `actor`.
pub const TRANSFER_ACTOR: &str = "onedoor-registry-apply";

/// The id of the transfer of `holder`'s task on `case_id` under registry `version`.
pub fn transfer_event_id(
    case_id: CaseId,
    holder: &AgencyCode,
    version: RegistryVersion,
) -> EventId {
    let mut hasher = Sha256::new();
    for part in [
        "onedoor-transfer-v1",
        &case_id.to_string(),
        holder.as_str(),
        &version.to_string(),
    ] {
        // Length-prefixed, so ("ab","c") and ("a","bc") differ.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    EventId::from_ulid(ulid::Ulid::from_bytes(bytes))
}

/// The write that moves `holder`'s open task on `case_id` to its successor in `registry`;
/// [`crate::CaseLog::execute`] it with the registry and a log signing with an operator key.
pub fn transfer_request(
    case_id: CaseId,
    holder: &AgencyCode,
    registry: &Registry,
    at: OffsetDateTime,
) -> WriteRequest {
    WriteRequest {
        case_id,
        event_id: transfer_event_id(case_id, holder, registry.version),
        command: Command {
            agency: holder.clone(),
            actor: TRANSFER_ACTOR.to_owned(),
            at,
            action: Action::Transfer,
        },
        idempotency_key: format!("transfer-{}-{holder}", registry.version),
        caller_trace: None,
    }
}
