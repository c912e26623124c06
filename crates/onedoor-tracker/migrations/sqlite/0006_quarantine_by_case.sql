-- Quarantined messages by case (SQLite). Keep in step with ../postgres/0006_quarantine_by_case.sql.
--
-- The projection verifies every message before storing it; one it does not believe is
-- recorded here under the case its subject names, with the reason's label and its payload
-- (so the case can be verified again when a message arrives late), and staff see it on the
-- case. Rows recorded before have none of the three; `onedoor tracker rebuild` fills them.
ALTER TABLE rejected_messages ADD COLUMN case_id TEXT;
ALTER TABLE rejected_messages ADD COLUMN label TEXT;
ALTER TABLE rejected_messages ADD COLUMN payload BLOB;
CREATE INDEX IF NOT EXISTS rejected_by_case ON rejected_messages (case_id, stream_seq)
    WHERE case_id IS NOT NULL;
