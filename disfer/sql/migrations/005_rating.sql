-- The crowd study run inside DisFER Studio (the /rate page). Votes go into `votes` as imported
-- ones do; what is new is who was shown which playlist, the attention checks, and closed
-- playlists. No foreign keys here: DuckDB turns an UPDATE of a row in a keyed table into a
-- delete and insert, which a foreign key would refuse; the rating module writes these tables only.

-- One row per participant id that opened the study link and answered the consent.
CREATE TABLE rating_sessions (
    participant_id TEXT      PRIMARY KEY,
    playlist_id    INTEGER,                      -- NULL for a participant who declined
    order_seed     BIGINT    NOT NULL,           -- their random image order and checks
    checks         INTEGER   NOT NULL,           -- attention checks in their plan (fixed at the start)
    status         TEXT      NOT NULL,           -- rating | complete | failed | declined
    started_at     TIMESTAMP NOT NULL,
    last_seen_at   TIMESTAMP NOT NULL,           -- last answer (abandoned: long ago, not finished)
    finished_at    TIMESTAMP
);

-- Instructional attention checks ("for this image, please press surprise"): never votes.
CREATE TABLE attention_checks (
    participant_id TEXT      NOT NULL,
    check_no       INTEGER   NOT NULL,           -- 1.. in the order shown
    stimulus_id    TEXT      NOT NULL,           -- the face shown with the instruction
    expected       TEXT      NOT NULL,
    answered       TEXT      NOT NULL,
    rt_ms          DOUBLE,
    answered_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (participant_id, check_no)
);

-- Playlists an admin closed: never assigned again (their votes stay).
CREATE TABLE closed_playlists (
    playlist_id INTEGER   PRIMARY KEY,
    closed_at   TIMESTAMP NOT NULL,
    closed_by   TEXT      NOT NULL
);
