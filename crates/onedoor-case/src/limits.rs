//! Size limits on what a caller sends, in UTF-8 bytes unless said otherwise. They are part of
//! the public contract (the `.proto` comments quote them; `onedoor-proto` re-exports this
//! module) and are checked before anything is written, so an oversize request is
//! `INVALID_ARGUMENT` and changes nothing. Lao script takes 3 bytes a character.

/// Agency code, e.g. `ODSC-VTE-SAYSETTHA`.
pub const AGENCY_CODE_MAX_BYTES: usize = 64;
/// Service catalogue code, e.g. `enterprise-registration`.
pub const SERVICE_CODE_MAX_BYTES: usize = 64;
/// The front office's reference for the citizen's application.
pub const CITIZEN_REF_MAX_BYTES: usize = 128;
/// Case summary written at the counter.
pub const SUMMARY_MAX_BYTES: usize = 4096;
/// Hand-off instructions.
pub const INSTRUCTIONS_MAX_BYTES: usize = 4096;
/// Completion or resolution note.
pub const NOTE_MAX_BYTES: usize = 4096;
/// Send-back reason.
pub const REASON_MAX_BYTES: usize = 4096;
/// Info request question.
pub const QUESTION_MAX_BYTES: usize = 4096;
/// A completion's outcome in a few words.
pub const OUTCOME_MAX_BYTES: usize = 256;
/// Caller-chosen idempotency key.
pub const IDEMPOTENCY_KEY_MAX_BYTES: usize = 128;
/// The officer or system user inside the agency who acted.
pub const ACTOR_MAX_BYTES: usize = 128;
/// Signing key id, e.g. `MOIC-2026-01`.
pub const KEY_ID_MAX_BYTES: usize = 64;

/// Document references on one request or event.
pub const DOCUMENTS_MAX: usize = 32;
pub const DOCUMENT_NAME_MAX_BYTES: usize = 256;
pub const DOCUMENT_URI_MAX_BYTES: usize = 2048;
pub const DOCUMENT_MEDIA_TYPE_MAX_BYTES: usize = 255;

/// Fixed lengths of identifiers on the wire.
pub const ULID_LEN: usize = 26;
pub const TRACE_ID_HEX_LEN: usize = 32;
pub const SPAN_ID_HEX_LEN: usize = 16;
pub const SHA256_HEX_LEN: usize = 64;
pub const PREV_HASH_BYTES: usize = 32;
pub const SIGNATURE_BYTES: usize = 64;

/// Largest time limit a hand-off may set for itself (`due_working_days`).
pub const DUE_WORKING_DAYS_MAX: u32 = 90;
