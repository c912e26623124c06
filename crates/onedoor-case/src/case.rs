//! The case state machine: commands are decided against the state folded from the events
//! before them. No I/O and no async.

mod answers;
mod authorize;
mod command;
mod decide;
mod document;
mod event;
mod route;
mod state;
mod take_back;
mod transfer;

pub use answers::{answer_receiver, authorize_answer, authorize_in_registry};
pub use authorize::{MAX_CLOCK_SKEW, authorize, authorize_after_resolution, authorize_open};
pub use command::{Action, Command};
pub use decide::{Refusal, RefusalClass, check_input, decide};
pub use document::DocumentRef;
pub use event::{CaseEvent, EventBody, Resolution, TransferReason};
pub use route::{OffRoute, check_strict_route};
pub use state::{CaseState, CaseStatus, FoldError, PastTask, Task, TaskEnd, TaskState};
pub use transfer::authorize_transfer;
