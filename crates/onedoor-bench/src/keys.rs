//! A fresh signing key for every agency a bench writes for, added to its registry: the bench's
//! events are signed and checked as production ones are.

use std::sync::Arc;

use onedoor_bus::Signer;
use onedoor_case::{AgencyCode, AgencyKey, Registry};
use time::Date;

use crate::BenchError;

/// Each bench agency's signer.
pub(crate) type Signers = Vec<(AgencyCode, Signer)>;

/// The registry with a new key for each of `agencies` (key id `<code>-<label>`), valid from
/// `valid_from`, and the signers that hold them.
pub(crate) fn registry_with_keys<'a>(
    mut registry: Registry,
    agencies: impl IntoIterator<Item = &'a AgencyCode>,
    label: &str,
    valid_from: Date,
) -> Result<(Arc<Registry>, Signers), BenchError> {
    let mut signers = Vec::new();
    for code in agencies {
        let signer = Signer::generate(format!("{code}-{label}"));
        let key = AgencyKey {
            id: signer.key_id().to_owned(),
            public_key: signer.public_key(),
            valid_from,
            valid_until: None,
        };
        registry
            .add_key(code, key)
            .map_err(|why| BenchError::Unfit(format!("adding {code}'s bench key: {why}")))?;
        signers.push((code.clone(), signer));
    }
    Ok((Arc::new(registry), signers))
}
