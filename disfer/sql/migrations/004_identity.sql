-- Who did it. In hosted mode every write is signed by the signed-in person: `curator` / `actor`
-- hold their email, `subject` the identity provider's stable id for them. Local use and the CLI
-- record the name given and subject 'local'.
ALTER TABLE curation_events ADD COLUMN subject TEXT;
ALTER TABLE runs ADD COLUMN actor TEXT;
ALTER TABLE runs ADD COLUMN subject TEXT;
