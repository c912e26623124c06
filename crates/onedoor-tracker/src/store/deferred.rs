//! Setting the secondary indexes aside while a rebuild fills an empty database, and making
//! them again at the end: one sort per index instead of an index update per written row.
//!
//! Only secondary indexes go: the primary keys and unique constraints (which the writes'
//! `ON CONFLICT` clauses and lookups stand on) stay. On SQLite the text search goes too: the
//! triggers that keep the FTS5 table `cases_text` are dropped, and at the end the table is
//! filled from `cases` in one statement. FTS5 writes its pending terms out at every statement
//! that touches it, so the triggers cost a fifth of a rebuild's database time.
//!
//! Each definition is listed in `deferred_indexes` in the same transaction that drops what it
//! defines, and is made again in the same transaction that takes it off the list. So a
//! rebuild that dies part-way loses nothing: opening the database ([`Store::connect`]) makes
//! whatever is still listed.

use sqlx::{AssertSqlSafe, Executor as _};

use super::{Store, column};
use crate::config::Backend;
use crate::error::TrackerError;

/// The name the text search is listed under in `deferred_indexes` (no index has it).
const TEXT_SEARCH: &str = "cases_text (text search)";
const TEXT_SEARCH_TRIGGERS: [&str; 3] = [
    "cases_text_insert",
    "cases_text_update",
    "cases_text_delete",
];

impl Store {
    /// Drops the secondary indexes of the projection's tables (and, on SQLite, the text
    /// search's triggers), listing their definitions in `deferred_indexes`; returns how many
    /// definitions it listed.
    pub async fn defer_indexes(&self) -> Result<usize, TrackerError> {
        let indexes = self.index_definitions().await?;
        // Read before the transaction: a rebuild's pool has one connection.
        let mut deferred = indexes.clone();
        if let Some(text_search) = self.text_search_definition().await? {
            deferred.push(text_search);
        }
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(TrackerError::db("beginning a transaction"))?;
        for (name, create_sql) in &deferred {
            sqlx::query(
                "INSERT INTO deferred_indexes (name, create_sql) VALUES ($1, $2) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(create_sql)
            .execute(&mut *tx)
            .await
            .map_err(TrackerError::db("listing an index to defer"))?;
        }
        for (name, _) in &indexes {
            tx.execute(AssertSqlSafe(format!(
                "DROP INDEX IF EXISTS {}",
                quoted(name)
            )))
            .await
            .map_err(TrackerError::db("dropping an index for a rebuild"))?;
        }
        let text_search_deferred = deferred.len() > indexes.len();
        for trigger in TEXT_SEARCH_TRIGGERS.iter().filter(|_| text_search_deferred) {
            tx.execute(AssertSqlSafe(format!(
                "DROP TRIGGER IF EXISTS {}",
                quoted(trigger)
            )))
            .await
            .map_err(TrackerError::db(
                "dropping a text search trigger for a rebuild",
            ))?;
        }
        tx.commit()
            .await
            .map_err(TrackerError::db("committing a transaction"))?;
        Ok(deferred.len())
    }

    /// On SQLite, what makes the text search again once `cases` is filled: the table emptied
    /// and filled from `cases`, then the triggers that keep it (as the catalogue has them).
    /// `None` on PostgreSQL, whose text search is an index, or when the triggers are gone.
    async fn text_search_definition(&self) -> Result<Option<(String, String)>, TrackerError> {
        if self.backend() != Backend::Sqlite {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT name, sql AS create_sql FROM sqlite_master WHERE type = 'trigger' \
             AND tbl_name = 'cases' AND name IN ('cases_text_insert', 'cases_text_update', \
             'cases_text_delete') ORDER BY name",
        )
        .fetch_all(self.pool())
        .await
        .map_err(TrackerError::db("reading the text search triggers"))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut sql = String::from(
            "DELETE FROM cases_text; \
             INSERT INTO cases_text (case_id, search_text) SELECT case_id, search_text FROM cases;",
        );
        for row in &rows {
            let create: String = column(row, "create_sql")?;
            sql.push('\n');
            sql.push_str(&create);
            sql.push(';');
        }
        Ok(Some((TEXT_SEARCH.to_owned(), sql)))
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
            tracing::info!(index = %name, "making an index set aside by a rebuild");
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
