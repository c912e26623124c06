//! Size limits on the text a caller sends, in UTF-8 bytes. They are part of the public contract
//! (the `.proto` comments quote them) and are checked before anything is written, so an
//! oversize request is `INVALID_ARGUMENT` and changes nothing.

/// Citizen reference: an ID card, passport or family-book number, or the front office's file no.
pub const CITIZEN_REF_MAX_BYTES: usize = 128;
/// Case summary written at the counter.
pub const SUMMARY_MAX_BYTES: usize = 4096;
/// Free text on a hand-off, completion note, send-back reason, info question, resolution note.
pub const TEXT_MAX_BYTES: usize = 4096;
/// A completion's outcome code or short phrase, e.g. `registered`, `tin-issued`.
pub const OUTCOME_MAX_BYTES: usize = 256;
/// The officer or system user inside the agency who acted.
pub const ACTOR_MAX_BYTES: usize = 128;
/// Caller-chosen idempotency key.
pub const IDEMPOTENCY_KEY_MAX_BYTES: usize = 128;
