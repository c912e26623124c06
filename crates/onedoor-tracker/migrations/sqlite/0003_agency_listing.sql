-- Listing by agency (SQLite). Keep in step with ../postgres/0003_agency_listing.sql.
--
-- "Held by agency X" and "cases agency X is part of" used to walk every case newest first and
-- probe each for a task of X: an agency on few cases among a million read them all. Each task
-- now carries its case's opened time, so an agency's tasks can be read off an index in the
-- listing's order (opened time, then case id) and joined to their cases.

ALTER TABLE tasks ADD COLUMN opened_at_ns BIGINT;
UPDATE tasks SET opened_at_ns = (SELECT c.opened_at_ns FROM cases c WHERE c.case_id = tasks.case_id);

-- The projection writes a case's row before its tasks, so the case is there to copy from.
-- Kept here rather than in the writer so that every path that writes tasks gets it.
CREATE TRIGGER IF NOT EXISTS tasks_opened_insert AFTER INSERT ON tasks BEGIN
    UPDATE tasks SET opened_at_ns = (SELECT c.opened_at_ns FROM cases c WHERE c.case_id = new.case_id)
        WHERE case_id = new.case_id AND handoff_event_id = new.handoff_event_id;
END;
CREATE TRIGGER IF NOT EXISTS tasks_opened_follow AFTER UPDATE OF opened_at_ns ON cases
    WHEN new.opened_at_ns IS NOT old.opened_at_ns BEGIN
    UPDATE tasks SET opened_at_ns = new.opened_at_ns WHERE case_id = new.case_id;
END;

-- Open tasks by holder (ListCases' agency filter); every task by agency (confinement).
CREATE INDEX IF NOT EXISTS tasks_holding_newest ON tasks (agency, opened_at_ns DESC, case_id DESC)
    WHERE is_open = 1;
CREATE INDEX IF NOT EXISTS tasks_agency_newest ON tasks (agency, opened_at_ns DESC, case_id DESC);

