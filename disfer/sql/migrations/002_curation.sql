-- Curation: who speaks for an event. 'curator' events are one reviewer's opinion; 'lead' events
-- resolve a source for everybody (until undone). Kept apart from `status` so a resolution keeps
-- its real status (confirmed, relabeled, ambiguous, excluded).
ALTER TABLE curation_events ADD COLUMN role TEXT DEFAULT 'curator';
CREATE INDEX curation_events_source ON curation_events (source_id);
