-- Listing by agency (PostgreSQL). Keep in step with ../sqlite/0003_agency_listing.sql.
--
-- Each task carries its case's opened time, so an agency's tasks are read off an index in the
-- listing's order and joined to their cases, instead of probing every case newest first.

ALTER TABLE tasks ADD COLUMN IF NOT EXISTS opened_at_ns BIGINT;
UPDATE tasks SET opened_at_ns = c.opened_at_ns FROM cases c WHERE c.case_id = tasks.case_id;

-- The projection writes a case's row before its tasks, so the case is there to copy from.
CREATE OR REPLACE FUNCTION tasks_opened_copy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.opened_at_ns := (SELECT c.opened_at_ns FROM cases c WHERE c.case_id = NEW.case_id);
    RETURN NEW;
END;
$$;
DROP TRIGGER IF EXISTS tasks_opened_insert ON tasks;
CREATE TRIGGER tasks_opened_insert BEFORE INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_opened_copy();

CREATE OR REPLACE FUNCTION tasks_opened_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks SET opened_at_ns = NEW.opened_at_ns WHERE case_id = NEW.case_id;
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS tasks_opened_follow ON cases;
CREATE TRIGGER tasks_opened_follow AFTER UPDATE OF opened_at_ns ON cases
    FOR EACH ROW WHEN (OLD.opened_at_ns IS DISTINCT FROM NEW.opened_at_ns)
    EXECUTE FUNCTION tasks_opened_follow();

-- Open tasks by holder (ListCases' agency filter); every task by agency (confinement).
CREATE INDEX IF NOT EXISTS tasks_holding_newest ON tasks (agency, opened_at_ns DESC, case_id DESC)
    WHERE is_open = 1;
CREATE INDEX IF NOT EXISTS tasks_agency_newest ON tasks (agency, opened_at_ns DESC, case_id DESC);

