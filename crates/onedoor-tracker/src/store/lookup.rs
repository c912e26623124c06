//! Small reads for the staff web page: a case by its trace id (indexed since migration 0002),
//! open tasks counted per agency, and cases' front offices (to limit a front-office account to
//! its own cases).

use std::collections::BTreeMap;

use super::{Store, column};
use crate::error::TrackerError;

impl Store {
    /// The case whose opening event started trace `trace_id` (32 lower-case hex).
    pub async fn case_by_trace(&self, trace_id: &str) -> Result<Option<String>, TrackerError> {
        sqlx::query_scalar("SELECT case_id FROM cases WHERE trace_id = $1 ORDER BY case_id LIMIT 1")
            .bind(trace_id)
            .fetch_optional(self.pool())
            .await
            .map_err(TrackerError::db("finding a case by trace id"))
    }

    /// Open tasks per holding agency (agencies holding none are left out).
    pub async fn open_task_counts(&self) -> Result<BTreeMap<String, u64>, TrackerError> {
        let rows = sqlx::query(
            "SELECT agency, COUNT(*) AS open_tasks FROM tasks WHERE is_open = 1 GROUP BY agency",
        )
        .fetch_all(self.pool())
        .await
        .map_err(TrackerError::db("counting open tasks"))?;
        rows.iter()
            .map(|row| {
                Ok((
                    column::<String>(row, "agency")?,
                    column::<i64>(row, "open_tasks")?.unsigned_abs(),
                ))
            })
            .collect()
    }

    /// The originating front office of each of `case_ids` that is known.
    pub async fn case_origins(
        &self,
        case_ids: &[String],
    ) -> Result<BTreeMap<String, String>, TrackerError> {
        let mut origins = BTreeMap::new();
        // A hundred ids per statement: bounded statements, few round trips.
        for chunk in case_ids.chunks(100) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT case_id, origin_agency FROM cases WHERE case_id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.clone());
            }
            let rows = query
                .fetch_all(self.pool())
                .await
                .map_err(TrackerError::db("reading cases' front offices"))?;
            for row in &rows {
                origins.insert(
                    column::<String>(row, "case_id")?,
                    column::<String>(row, "origin_agency")?,
                );
            }
        }
        Ok(origins)
    }
}
