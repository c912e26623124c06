-- Indexes for ListCases and trace lookups (PostgreSQL). Keep in step with
-- ../sqlite/0002_list_indexes.sql; the text search differs (pg_trgm here, FTS5 there).

-- "Held by agency X": one probe per case walked.
CREATE INDEX IF NOT EXISTS tasks_holder ON tasks (case_id, is_open, agency);

-- Filters with the listing's full order (opened time, then case id).
DROP INDEX IF EXISTS cases_service;
DROP INDEX IF EXISTS cases_origin;
CREATE INDEX IF NOT EXISTS cases_service_newest ON cases (service, opened_at_ns DESC, case_id DESC);
CREATE INDEX IF NOT EXISTS cases_origin_newest ON cases (origin_agency, opened_at_ns DESC, case_id DESC);
CREATE INDEX IF NOT EXISTS cases_status_newest ON cases (status, opened_at_ns DESC, case_id DESC);

-- "Overdue only": cases with an open task, newest first, due time in the index.
CREATE INDEX IF NOT EXISTS cases_open_newest ON cases (opened_at_ns DESC, case_id DESC, next_due_ns)
    WHERE next_due_ns IS NOT NULL;

-- Finding a case from a trace id.
CREATE INDEX IF NOT EXISTS cases_trace ON cases (trace_id);

-- The text filter: a trigram index, which PostgreSQL uses for LIKE '%…%' directly.
-- pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS cases_search_trgm ON cases USING gin (search_text gin_trgm_ops);
