//! Size limits of the v1 contract.
//!
//! The `.proto` comments promise these numbers to ministry developers; the
//! adapter and tracker enforce them (a request over a limit is
//! `INVALID_ARGUMENT`). A test checks that each comment states the number its
//! constant holds, so change both together.
//!
//! The limits on what a caller writes (texts, codes, documents, ids) are
//! defined once, in [`onedoor_case::limits`], where the case rules check them,
//! and re-exported here. The limits below exist only on the gRPC surface
//! (acknowledgements, inbox flow, paging, idempotency memory).
//!
//! Text limits count UTF-8 bytes, not characters: a Lao character takes 3
//! bytes, so 4096 bytes hold about 1,300 Lao characters.

pub use onedoor_case::limits::*;

/// Event ids in one `AckRequest`.
pub const ACK_EVENT_IDS_MAX: usize = 1000;
/// `ListCasesRequest.page_size` when the caller sends 0.
pub const LIST_PAGE_SIZE_DEFAULT: u32 = 50;
/// `ListCasesRequest.page_size`: larger is served as this.
pub const LIST_PAGE_SIZE_MAX: u32 = 500;
/// `ListCasesRequest.text`.
pub const LIST_TEXT_MAX_BYTES: usize = 256;
