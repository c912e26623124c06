//! The registry file as written by hand, before validation. Unknown keys are refused so a typo
//! (`name_la` for `name_lo`) is an error, not a silently missing name.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistry {
    pub registry: RawHeader,
    pub calendar: RawCalendar,
    #[serde(default, rename = "agency")]
    pub agencies: Vec<RawAgency>,
    #[serde(default, rename = "service")]
    pub services: Vec<RawService>,
    /// The bus operator's signing keys: they sign the transfers of open tasks away from an
    /// agency a registry change ends, and nothing else.
    #[serde(default)]
    pub operator: RawOperator,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOperator {
    #[serde(default, rename = "key")]
    pub keys: Vec<RawKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeader {
    pub name: String,
    /// `YYYY-MM` or `YYYY-MM.N`: the month the shape was decided, and a revision within it.
    pub version: String,
    pub effective_from: toml::value::Datetime,
    pub default_step_working_days: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCalendar {
    pub utc_offset: String,
    pub working_days: Vec<String>,
    #[serde(default, rename = "holiday")]
    pub holidays: Vec<RawHoliday>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHoliday {
    pub date: toml::value::Datetime,
    pub name_en: String,
    pub name_lo: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgency {
    pub code: String,
    pub kind: String,
    pub name_en: String,
    #[serde(default)]
    pub name_lo: String,
    pub province: Option<String>,
    pub merged_into: Option<String>,
    /// Same organisation under a new code: its open tasks and history carry on there.
    pub renamed_to: Option<String>,
    /// Dissolved with no successor.
    #[serde(default)]
    pub retired: bool,
    /// Names the agency had before its current one, oldest first.
    #[serde(default, rename = "former_name")]
    pub former_names: Vec<RawFormerName>,
    #[serde(default, rename = "key")]
    pub keys: Vec<RawKey>,
    #[serde(default, rename = "token")]
    pub tokens: Vec<RawToken>,
}

/// A name an agency had up to and including `until`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFormerName {
    pub name_en: String,
    #[serde(default)]
    pub name_lo: String,
    pub until: toml::value::Datetime,
}

/// The hash of one of an agency's bearer tokens; the token itself is never stored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawToken {
    /// Which system holds it, e.g. `moic-erp`; shown in logs instead of the token.
    pub label: String,
    /// Lower-case hex SHA-256 of the token.
    pub sha256: String,
    #[serde(default)]
    pub revoked: bool,
}

/// An agency's Ed25519 public key for event signatures.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    pub id: String,
    /// Standard base64 of the 32-byte public key.
    pub public_key: String,
    pub valid_from: toml::value::Datetime,
    pub valid_until: Option<toml::value::Datetime>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub code: String,
    pub name_en: String,
    #[serde(default)]
    pub name_lo: String,
    /// Enforce the route (see `Service::strict_route`); off by default.
    #[serde(default)]
    pub strict_route: bool,
    #[serde(default, rename = "stage")]
    pub stages: Vec<RawStage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStage {
    #[serde(default, rename = "step")]
    pub steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub agency: Option<String>,
    pub any_of: Option<Vec<String>>,
    pub purpose_en: String,
    #[serde(default)]
    pub purpose_lo: String,
    pub working_days: u32,
}

/// A file of public keys added to a registry (e.g. the development keys `onedoor up` makes).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeyFile {
    #[serde(default, rename = "key")]
    pub keys: Vec<RawAgencyKey>,
    /// Operator keys (`[[operator_key]]`, the shape of an agency key).
    #[serde(default, rename = "operator_key")]
    pub operator_keys: Vec<RawKey>,
    #[serde(default, rename = "token")]
    pub tokens: Vec<RawAgencyToken>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgencyToken {
    pub agency: String,
    #[serde(flatten)]
    pub token: RawToken,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgencyKey {
    pub agency: String,
    #[serde(flatten)]
    pub key: RawKey,
}
