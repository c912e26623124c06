-- Cheaper projection writes (PostgreSQL). Keep in step with ../sqlite/0005_bulk_writes.sql.

-- The projection now writes each task's copies of its case's opened_at_ns and next_due_ns
-- itself; the per-row trigger that copied them from the case is no longer needed.
-- (tasks_opened_follow and tasks_due_follow stay.)
DROP TRIGGER IF EXISTS tasks_opened_insert ON tasks;
DROP FUNCTION IF EXISTS tasks_opened_copy();

-- Secondary index definitions set aside by a running rebuild (see store::deferred).
CREATE TABLE IF NOT EXISTS deferred_indexes (
    name       TEXT PRIMARY KEY NOT NULL,
    create_sql TEXT NOT NULL
);
