-- Cheaper projection writes (SQLite). Keep in step with ../postgres/0005_bulk_writes.sql.

-- The projection now writes each task's copies of its case's opened_at_ns and next_due_ns
-- itself, from the case view it writes in the same transaction; the trigger's extra UPDATE
-- per inserted task is no longer needed. (tasks_opened_follow and tasks_due_follow stay: a
-- case row that moves still moves its tasks' copies.)
DROP TRIGGER IF EXISTS tasks_opened_insert;
DROP TRIGGER IF EXISTS tasks_case_copy;

-- A rebuild drops the secondary indexes while it replays the stream and creates them again
-- at the end (one sort each, instead of an index update per row). Their definitions wait
-- here meanwhile, so that a rebuild that dies part-way loses no index: opening the database
-- creates whatever is listed (see store::deferred).
CREATE TABLE IF NOT EXISTS deferred_indexes (
    name       TEXT PRIMARY KEY NOT NULL,
    create_sql TEXT NOT NULL
);
