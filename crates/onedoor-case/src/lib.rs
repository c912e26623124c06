//! Case rules and registry types for onedoor. Pure code: no NATS, no gRPC, no SQL, so the
//! adapter (refusing a bad step before it is written) and the tracker (building views) share one
//! copy of the rules.
//!
//! # Layout
//! - [`codes`]: `AgencyCode` and `ServiceCode`, parsed once and safe in NATS subjects.
//! - [`registry`]: agencies, the service catalogue and the working calendar, loaded from TOML
//!   and validated with errors that name the file, the entry and the problem.

pub mod codes;
pub mod registry;

pub use codes::{AgencyCode, CodeError, ServiceCode};
pub use registry::{
    Agency, AgencyKind, Calendar, Holiday, Problem, Registry, RegistryError, Service, Stage, Step,
    StepAgency,
};
