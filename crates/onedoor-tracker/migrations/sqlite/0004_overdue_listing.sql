-- Overdue cases by holder (SQLite). Keep in step with ../postgres/0004_overdue_listing.sql.
--
-- "Held by agency X and overdue" walks X's open tasks newest first (tasks_holding_newest) and
-- reads each task's case to test its earliest due time (cases.next_due_ns < now). An agency's
-- recent tasks are not due yet, so at a million cases the walk read weeks of cases before the
-- first overdue one. Each task now carries its case's earliest due time, and the holder index
-- has it, so the walk past cases that are not overdue never leaves the index. Overdue is still
-- the case's next_due_ns: this column is a copy of it, kept by the triggers below.

ALTER TABLE tasks ADD COLUMN case_next_due_ns BIGINT;
UPDATE tasks SET case_next_due_ns = (SELECT c.next_due_ns FROM cases c WHERE c.case_id = tasks.case_id);

-- The projection writes a case's row before its tasks, so a new task copies both of the case's
-- values in the one statement 0003's trigger already ran per inserted task.
DROP TRIGGER IF EXISTS tasks_opened_insert;
CREATE TRIGGER IF NOT EXISTS tasks_case_copy AFTER INSERT ON tasks BEGIN
    UPDATE tasks SET (opened_at_ns, case_next_due_ns) =
        (SELECT c.opened_at_ns, c.next_due_ns FROM cases c WHERE c.case_id = new.case_id)
        WHERE case_id = new.case_id AND handoff_event_id = new.handoff_event_id;
END;
-- A case's earliest due time moves when its tasks change: its tasks follow.
CREATE TRIGGER IF NOT EXISTS tasks_due_follow AFTER UPDATE OF next_due_ns ON cases
    WHEN new.next_due_ns IS NOT old.next_due_ns BEGIN
    UPDATE tasks SET case_next_due_ns = new.next_due_ns WHERE case_id = new.case_id;
END;

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
