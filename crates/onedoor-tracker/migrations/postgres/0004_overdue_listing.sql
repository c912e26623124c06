-- Overdue cases by holder (PostgreSQL). Keep in step with ../sqlite/0004_overdue_listing.sql.
--
-- Each task carries its case's earliest due time (a copy of cases.next_due_ns kept by the
-- triggers below), and the holder index has it, so "held by X and overdue" skips X's tasks on
-- cases that are not overdue without reading the cases.

ALTER TABLE tasks ADD COLUMN IF NOT EXISTS case_next_due_ns BIGINT;
UPDATE tasks SET case_next_due_ns = c.next_due_ns FROM cases c WHERE c.case_id = tasks.case_id;

-- The projection writes a case's row before its tasks, so a new task copies from it.
CREATE OR REPLACE FUNCTION tasks_opened_copy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT c.opened_at_ns, c.next_due_ns INTO NEW.opened_at_ns, NEW.case_next_due_ns
        FROM cases c WHERE c.case_id = NEW.case_id;
    RETURN NEW;
END;
$$;

-- A case's earliest due time moves when its tasks change: its tasks follow.
CREATE OR REPLACE FUNCTION tasks_due_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks SET case_next_due_ns = NEW.next_due_ns WHERE case_id = NEW.case_id;
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS tasks_due_follow ON cases;
CREATE TRIGGER tasks_due_follow AFTER UPDATE OF next_due_ns ON cases
    FOR EACH ROW WHEN (OLD.next_due_ns IS DISTINCT FROM NEW.next_due_ns)
    EXECUTE FUNCTION tasks_due_follow();

-- Replaces tasks_holding_newest (same order, one more column): no more indexes to write.
DROP INDEX IF EXISTS tasks_holding_newest;
CREATE INDEX IF NOT EXISTS tasks_holding_due
    ON tasks (agency, opened_at_ns DESC, case_id DESC, case_next_due_ns) WHERE is_open = 1;

-- The staff page's overdue list, a page at a time in its full order (due time, then case and
-- hand-off ids, either way round): a page and the rows skipped before it are read off this
-- index instead of sorting every overdue task (thousands share a due time: the end of a working
-- day). Only open tasks are listed, so it replaces tasks_open_due, which held every task.
-- is_open rides along so that the rows skipped before a page are read off the index alone
-- (SQLite counts an index as covering only when it holds every column the query names).
DROP INDEX IF EXISTS tasks_open_due;
CREATE INDEX IF NOT EXISTS tasks_open_due_order
    ON tasks (due_at_ns, case_id, handoff_event_id, is_open) WHERE is_open = 1;
