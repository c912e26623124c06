-- The tracker's projection (PostgreSQL). Keep in step with ../sqlite/0001_projection.sql: the two
-- differ only where the databases' types do (BYTEA here, BLOB there).
--
-- Times are Unix nanoseconds (BIGINT): exact round trips of the events' timestamps, ordering
-- and comparisons that mean the same on both databases.

-- Every event as stored in the stream, payload bytes untouched. The views below are a pure
-- function of these rows (the case rules' fold over each case's gapless prefix of versions).
CREATE TABLE IF NOT EXISTS events (
    event_id       TEXT PRIMARY KEY NOT NULL,
    case_id        TEXT NOT NULL,
    version        BIGINT NOT NULL,
    stream_seq     BIGINT NOT NULL,
    occurred_at_ns BIGINT NOT NULL,
    kind           TEXT NOT NULL,
    from_agency    TEXT NOT NULL,
    to_agency      TEXT,
    payload        BYTEA NOT NULL,
    UNIQUE (case_id, version)
);

-- One row per case: the fold of its events up to `version`.
CREATE TABLE IF NOT EXISTS cases (
    case_id        TEXT PRIMARY KEY NOT NULL,
    service        TEXT NOT NULL,
    origin_agency  TEXT NOT NULL,
    status         TEXT NOT NULL,
    resolution     TEXT,
    citizen_ref    TEXT NOT NULL,
    summary        TEXT NOT NULL,
    -- lower-cased case id, citizen_ref and summary, for ListCases' text filter
    search_text    TEXT NOT NULL,
    trace_id       TEXT NOT NULL,
    opened_at_ns   BIGINT NOT NULL,
    resolved_at_ns BIGINT,
    updated_at_ns  BIGINT NOT NULL,
    version        BIGINT NOT NULL,
    open_tasks     BIGINT NOT NULL,
    -- earliest due time of an open task: "overdue now" is next_due_ns < now
    next_due_ns    BIGINT,
    -- set when a stored event does not fold: the view stops before it
    problem        TEXT
);
CREATE INDEX IF NOT EXISTS cases_newest ON cases (opened_at_ns DESC, case_id DESC);
CREATE INDEX IF NOT EXISTS cases_next_due ON cases (next_due_ns);
CREATE INDEX IF NOT EXISTS cases_origin ON cases (origin_agency, opened_at_ns DESC);
CREATE INDEX IF NOT EXISTS cases_service ON cases (service, opened_at_ns DESC);
CREATE INDEX IF NOT EXISTS cases_resolved ON cases (resolved_at_ns);

-- Every task of every case, open and ended, as the fold has them.
CREATE TABLE IF NOT EXISTS tasks (
    case_id          TEXT NOT NULL,
    handoff_event_id TEXT NOT NULL,
    agency           TEXT NOT NULL,
    handed_by        TEXT NOT NULL,
    service          TEXT NOT NULL,
    state            TEXT NOT NULL,
    instructions     TEXT NOT NULL,
    open_question    TEXT,
    handed_off_at_ns BIGINT NOT NULL,
    accepted_at_ns   BIGINT,
    due_at_ns        BIGINT NOT NULL,
    ended_at_ns      BIGINT,
    ended_by         TEXT,
    is_open          BIGINT NOT NULL,
    PRIMARY KEY (case_id, handoff_event_id)
);
CREATE INDEX IF NOT EXISTS tasks_open_agency ON tasks (is_open, agency, due_at_ns);
CREATE INDEX IF NOT EXISTS tasks_open_due ON tasks (is_open, due_at_ns);

-- Messages the tracker could not use (not a case event, or an event that contradicts the
-- case's history), so they are shown to operators instead of wedging the consumer.
CREATE TABLE IF NOT EXISTS rejected_messages (
    stream_seq     BIGINT PRIMARY KEY NOT NULL,
    subject        TEXT NOT NULL,
    reason         TEXT NOT NULL,
    recorded_at_ns BIGINT NOT NULL
);
