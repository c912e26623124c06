//! Which cases an agency is part of, for confining a gRPC caller to its own cases.

use std::collections::HashSet;

use onedoor_case::AgencyCode;
use sqlx::AssertSqlSafe;

use super::Store;
use crate::error::TrackerError;

impl Store {
    /// Of `case_ids`, those `agency` is part of: it opened the case, or holds or held one of its
    /// tasks (the `tasks` table keeps ended tasks too).
    pub async fn cases_involving(
        &self,
        agency: &AgencyCode,
        case_ids: &[String],
    ) -> Result<HashSet<String>, TrackerError> {
        if case_ids.is_empty() {
            return Ok(HashSet::new());
        }
        // $1 is the agency, $2… the ids; the text holds placeholders only, never a value.
        let placeholders = (2..case_ids.len() + 2)
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT case_id FROM cases WHERE origin_agency = $1 AND case_id IN ({placeholders}) \
             UNION SELECT case_id FROM tasks WHERE agency = $1 AND case_id IN ({placeholders})"
        );
        let mut query =
            sqlx::query_scalar::<_, String>(AssertSqlSafe(sql)).bind(agency.to_string());
        for id in case_ids {
            query = query.bind(id.clone());
        }
        let found = query
            .fetch_all(self.pool())
            .await
            .map_err(TrackerError::db("reading which cases an agency is part of"))?;
        Ok(found.into_iter().collect())
    }
}
