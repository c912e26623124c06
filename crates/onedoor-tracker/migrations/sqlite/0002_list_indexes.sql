-- Indexes for ListCases and trace lookups (SQLite). Keep in step with
-- ../postgres/0002_list_indexes.sql; the text search differs (FTS5 trigram here, pg_trgm there).

-- "Held by agency X": the listing walks cases newest first and asks, per case, whether X holds
-- an open task on it. Without this index SQLite answered that from tasks_open_agency, reading
-- every open task of X for every case (minutes on a million cases); this makes it one probe.
CREATE INDEX IF NOT EXISTS tasks_holder ON tasks (case_id, is_open, agency);

-- Filters with the listing's full order (opened time, then case id), so a page is read off
-- the index instead of sorting every matching case.
DROP INDEX IF EXISTS cases_service;
DROP INDEX IF EXISTS cases_origin;
CREATE INDEX IF NOT EXISTS cases_service_newest ON cases (service, opened_at_ns DESC, case_id DESC);
CREATE INDEX IF NOT EXISTS cases_origin_newest ON cases (origin_agency, opened_at_ns DESC, case_id DESC);
CREATE INDEX IF NOT EXISTS cases_status_newest ON cases (status, opened_at_ns DESC, case_id DESC);

-- "Overdue only": cases with an open task, newest first, with the due time in the index so
-- the walk past not-yet-due cases never touches the table.
CREATE INDEX IF NOT EXISTS cases_open_newest ON cases (opened_at_ns DESC, case_id DESC, next_due_ns)
    WHERE next_due_ns IS NOT NULL;

-- Finding a case from a trace id (operators coming from a trace).
CREATE INDEX IF NOT EXISTS cases_trace ON cases (trace_id);

-- The text filter: a trigram index over each case's search text, kept by triggers. LIKE on it
-- finds a citizen reference among a million cases without reading them all.
CREATE VIRTUAL TABLE IF NOT EXISTS cases_text USING fts5(
    case_id UNINDEXED,
    search_text,
    tokenize = 'trigram'
);
INSERT INTO cases_text (case_id, search_text)
    SELECT case_id, search_text FROM cases
    WHERE case_id NOT IN (SELECT case_id FROM cases_text);
CREATE TRIGGER IF NOT EXISTS cases_text_insert AFTER INSERT ON cases BEGIN
    INSERT INTO cases_text (case_id, search_text) VALUES (new.case_id, new.search_text);
END;
CREATE TRIGGER IF NOT EXISTS cases_text_update AFTER UPDATE OF search_text ON cases
    WHEN new.search_text IS NOT old.search_text BEGIN
    DELETE FROM cases_text WHERE case_id = old.case_id;
    INSERT INTO cases_text (case_id, search_text) VALUES (new.case_id, new.search_text);
END;
CREATE TRIGGER IF NOT EXISTS cases_text_delete AFTER DELETE ON cases BEGIN
    DELETE FROM cases_text WHERE case_id = old.case_id;
END;
