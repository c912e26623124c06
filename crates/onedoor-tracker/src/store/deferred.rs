//! Setting the secondary indexes aside while a rebuild fills an empty database, and making
//! them again at the end: one sort per index instead of an index update per written row.
//!
//! Only secondary indexes go: the primary keys and unique constraints (which the writes'
//! `ON CONFLICT` clauses and lookups stand on) stay, and so do the triggers. Each definition is
//! listed in `deferred_indexes` in the same transaction that drops the index, and each index
//! is created again in the same transaction that takes it off the list. So a rebuild that dies
//! part-way loses no index: opening the database ([`Store::connect`]) creates whatever is
//! still listed.

use sqlx::{AssertSqlSafe, Executor as _};

use super::{Store, column};
use crate::config::Backend;
use crate::error::TrackerError;

impl Store {
    /// Drops the secondary indexes of the projection's tables, listing their definitions in
    /// `deferred_indexes`; returns how many.
    pub async fn defer_indexes(&self) -> Result<usize, TrackerError> {
        let indexes = self.index_definitions().await?;
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(TrackerError::db("beginning a transaction"))?;
        for (name, create_sql) in &indexes {
            sqlx::query(
                "INSERT INTO deferred_indexes (name, create_sql) VALUES ($1, $2) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(create_sql)
            .execute(&mut *tx)
            .await
            .map_err(TrackerError::db("listing an index to defer"))?;
            tx.execute(AssertSqlSafe(format!(
                "DROP INDEX IF EXISTS {}",
                quoted(name)
            )))
            .await
            .map_err(TrackerError::db("dropping an index for a rebuild"))?;
        }
        tx.commit()
            .await
            .map_err(TrackerError::db("committing a transaction"))?;
        Ok(indexes.len())
    }

    /// Creates every index listed in `deferred_indexes` and takes it off the list; returns how
    /// many. Nothing to do (one small read) unless a rebuild set indexes aside.
    pub async fn restore_indexes(&self) -> Result<usize, TrackerError> {
        let listed = sqlx::query("SELECT name, create_sql FROM deferred_indexes ORDER BY name")
            .fetch_all(self.pool())
            .await
            .map_err(TrackerError::db("reading the deferred indexes"))?;
        for row in &listed {
            let name: String = column(row, "name")?;
            let create_sql: String = column(row, "create_sql")?;
            tracing::info!(index = %name, "creating an index set aside by a rebuild");
            let mut tx = self
                .pool()
                .begin()
                .await
                .map_err(TrackerError::db("beginning a transaction"))?;
            // The definition was read from the database's own catalogue, never from input.
            tx.execute(AssertSqlSafe(create_sql))
                .await
                .map_err(TrackerError::db("creating a deferred index"))?;
            sqlx::query("DELETE FROM deferred_indexes WHERE name = $1")
                .bind(&name)
                .execute(&mut *tx)
                .await
                .map_err(TrackerError::db("taking an index off the deferred list"))?;
            tx.commit()
                .await
                .map_err(TrackerError::db("committing a transaction"))?;
        }
        Ok(listed.len())
    }

    /// Name and `CREATE INDEX` statement of each secondary index on the projection's tables,
    /// by name.
    pub async fn index_definitions(&self) -> Result<Vec<(String, String)>, TrackerError> {
        let sql = match self.backend() {
            // Indexes behind PRIMARY KEY and UNIQUE have no statement of their own.
            Backend::Sqlite => {
                "SELECT name, sql AS create_sql FROM sqlite_master WHERE type = 'index' \
                 AND sql IS NOT NULL AND tbl_name IN ('events', 'cases', 'tasks') ORDER BY name"
            }
            Backend::Postgres => {
                "SELECT i.indexname::text AS name, i.indexdef AS create_sql FROM pg_indexes i \
                 WHERE i.schemaname = current_schema() \
                 AND i.tablename IN ('events', 'cases', 'tasks') \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c \
                     WHERE c.conname = i.indexname AND c.connamespace = \
                     (SELECT oid FROM pg_namespace WHERE nspname = current_schema())) \
                 ORDER BY i.indexname"
            }
        };
        let rows = sqlx::query(sql)
            .fetch_all(self.pool())
            .await
            .map_err(TrackerError::db("listing the secondary indexes"))?;
        rows.iter()
            .map(|row| Ok((column(row, "name")?, column(row, "create_sql")?)))
            .collect()
    }
}

/// `name` as an SQL identifier, whatever it holds.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
