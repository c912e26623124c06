//! Case rules and registry types for onedoor. Pure code: no NATS, no gRPC, no SQL, so the
//! adapter (refusing a bad step before it is written) and the tracker (building views) share one
//! copy of the rules.
//!
//! # Layout
//! - [`codes`]: `AgencyCode` and `ServiceCode`, parsed once and safe in NATS subjects.
//! - [`ids`]: `CaseId` and `EventId` (ULIDs).
//! - [`registry`]: agencies, the service catalogue, loaded from TOML and validated with errors
//!   that name the file, the entry and the problem; [`registry::diff`] says in words what
//!   changes from one registry to the next.
//! - [`calendar`]: working days, public holidays and due times.
//! - [`case`]: the state machine: `CaseState::fold(events)` and `decide(state, command)`.
//! - [`limits`]: size limits on caller text, part of the public contract.
//! - [`text`]: which characters caller text may hold, and escaping for terminals.

pub mod calendar;
pub mod case;
pub mod codes;
pub mod ids;
pub mod limits;
pub mod registry;
pub mod text;

pub use calendar::{Calendar, Holiday};
pub use case::{
    Action, CaseEvent, CaseState, CaseStatus, Command, DocumentRef, EventBody, FoldError,
    MAX_CLOCK_SKEW, Refusal, RefusalClass, Resolution, TaskEnd, TaskState, TransferReason,
    answer_receiver, authorize, authorize_after_resolution, authorize_answer,
    authorize_in_registry, authorize_open, authorize_transfer, check_strict_route, decide,
};
pub use codes::{AgencyCode, CodeError, ServiceCode};
pub use ids::{CaseId, EventId, IdError};
pub use registry::diff::{AgencyChange, DiffError, RegistryDiff, ServiceChange};
pub use registry::{
    Agency, AgencyKey, AgencyKind, Ending, FormerName, LiveRegistry, Problem, Registry,
    RegistryError, RegistryVersion, Service, Stage, Step, StepAgency, TokenHash,
};
