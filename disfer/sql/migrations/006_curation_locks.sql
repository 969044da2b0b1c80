-- Curation as a team (issue 16): soft locks, a lead's review, and a cache key that curation leaves alone.

-- Soft locks: the face each curator has open, and since when (UTC). One row per curator, replaced
-- when they open another face, so writing one is a single small upsert; a mark older than
-- disfer.ledger.locks.LOCK_MINUTES means nothing. Not part of the ledger: marks are never history.
-- No foreign key: an upsert is a delete and an insert in DuckDB, which a foreign key would refuse.
CREATE TABLE curation_locks (
    curator    TEXT      PRIMARY KEY,
    subject    TEXT,
    source_id  INTEGER   NOT NULL,
    opened_at  TIMESTAMP NOT NULL
);

-- The dashboard keeps one Study (votes, predictions, models, participants, stimuli) per value of
-- `study_counter`: every write bumps it except curation's own (events, settings, marks), so a
-- decision does not reload the study. `change_counter` still moves with every counted write.
ALTER TABLE store_state ADD COLUMN study_counter BIGINT;
UPDATE store_state SET study_counter = change_counter;

-- A lead's review of a disagreement: 'accept' (a curator's decision as it is, `accepts` = its
-- event), 'fix' (the lead's own labels), 'reject' (status 'rejected': sent back, see below).
-- NULL for curators' decisions, undos and plain resolutions.
ALTER TABLE curation_events ADD COLUMN review TEXT;
ALTER TABLE curation_events ADD COLUMN accepts BIGINT;

-- Rejections no undo reverts. A live rejection sends its face back: every earlier decision and
-- resolution on it stops counting, so its curators find it undecided again.
CREATE VIEW curation_rejections AS
SELECT e.event_id, e.source_id, e.curator, e.role, e.decided_at
FROM curation_events e
WHERE e.status = 'rejected'
  AND NOT EXISTS (SELECT 1 FROM curation_events u WHERE u.undoes = e.event_id);

-- Migration 003's rule, plus the rejection: live = not an undo or a rejection, not undone, and after
-- its face's latest live rejection, if any. (A join on that rejection, not a NOT EXISTS per event:
-- as cheap as 003's view, and the page reads it after every decision.)
CREATE OR REPLACE VIEW curation_live AS
SELECT e.event_id, e.source_id, e.curator, e.role, e.decided_at, e.labels, e.weights, e.status,
       e.note,
       CASE WHEN e.status = 'excluded' THEN 'excluded'
            ELSE array_to_string(list_sort(e.labels), '+') END AS key
FROM curation_events e
LEFT JOIN (SELECT source_id, max(event_id) AS last_rejection FROM curation_rejections GROUP BY source_id) r
       ON r.source_id = e.source_id
WHERE e.status NOT IN ('undo', 'rejected')
  AND NOT EXISTS (SELECT 1 FROM curation_events u WHERE u.undoes = e.event_id)
  AND (r.last_rejection IS NULL OR e.event_id > r.last_rejection);
