//! Documents travel by reference: the bus carries name, hash and location, never the file, so
//! events stay small and each agency keeps its papers in its own store.

use super::decide::Refusal;
use crate::{limits, text};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRef {
    pub name: String,
    /// SHA-256 of the content, 64 lower-case hex characters.
    pub sha256: String,
    pub uri: String,
    pub media_type: String,
    pub size_bytes: u64,
}

impl DocumentRef {
    fn check(&self, field: &'static str) -> Result<(), Refusal> {
        let bad = |why: String| Refusal::BadDocument {
            field,
            name: self.name.clone(),
            why,
        };
        for (part, text) in [
            ("name", &self.name),
            ("uri", &self.uri),
            ("media_type", &self.media_type),
        ] {
            if let Err(why) = text::check_identifier(text) {
                return Err(bad(format!("{part} {why}")));
            }
        }
        if self.name.is_empty() || self.name.len() > limits::DOCUMENT_NAME_MAX_BYTES {
            return Err(bad(format!(
                "name must be 1 to {} bytes",
                limits::DOCUMENT_NAME_MAX_BYTES
            )));
        }
        let hex = self.sha256.len() == limits::SHA256_HEX_LEN
            && self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex {
            return Err(bad("sha256 must be 64 lower-case hex characters".into()));
        }
        if self.uri.is_empty() || self.uri.len() > limits::DOCUMENT_URI_MAX_BYTES {
            return Err(bad(format!(
                "uri must be 1 to {} bytes",
                limits::DOCUMENT_URI_MAX_BYTES
            )));
        }
        if self.media_type.len() > limits::DOCUMENT_MEDIA_TYPE_MAX_BYTES {
            return Err(bad(format!(
                "media_type is longer than {} bytes",
                limits::DOCUMENT_MEDIA_TYPE_MAX_BYTES
            )));
        }
        Ok(())
    }
}

pub(super) fn check_documents(
    field: &'static str,
    documents: &[DocumentRef],
) -> Result<(), Refusal> {
    if documents.len() > limits::DOCUMENTS_MAX {
        return Err(Refusal::TooMany {
            field,
            max: limits::DOCUMENTS_MAX,
            found: documents.len(),
        });
    }
    documents.iter().try_for_each(|d| d.check(field))
}
