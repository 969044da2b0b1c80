-- DisFER Studio store, schema version 1.
-- Emotions are stored as their canonical names (disfer.emotions.EMOTIONS), never as codes.
-- Images are stored as raw 48x48 grey uint8 bytes (2,304 bytes, row-major).

CREATE TABLE sources (
    source_id       INTEGER PRIMARY KEY,          -- ours, stable, written by export-stimuli
    dataset         TEXT    NOT NULL,             -- 'fer2013', 'folder', 'demo', ...
    original_index  INTEGER NOT NULL,             -- row (fer2013) or file order (folder) in the input
    original_label  TEXT,                         -- canonical emotion; NULL where unknown (FERPlus alone)
    split           TEXT,                         -- 'Training', 'PublicTest', 'PrivateTest', ...
    pixels          BLOB,                         -- 2,304 bytes; NULL for a vote-only source
    original_image  BLOB,                         -- the file as ingested (folder ingest), else NULL
    original_name   TEXT,                         -- file name in the input, where there is one
    UNIQUE (dataset, original_index)
);

CREATE TABLE stimuli (
    stimulus_id  TEXT    PRIMARY KEY,             -- '<source_id>-<distortion>-<level>'
    source_id    INTEGER NOT NULL REFERENCES sources (source_id),
    distortion   TEXT    NOT NULL,                -- 'original', 'gaussian_blur', ...
    level        INTEGER NOT NULL,                -- 0 for the original, 1..n
    param        DOUBLE,                          -- sigma, probability, ...
    seed         BIGINT  NOT NULL,
    pixels       BLOB    NOT NULL,
    UNIQUE (source_id, distortion, level)
);

CREATE TABLE playlists (
    playlist_id  INTEGER NOT NULL,
    stimulus_id  TEXT    NOT NULL REFERENCES stimuli (stimulus_id),
    position     INTEGER NOT NULL,
    PRIMARY KEY (stimulus_id)
);

CREATE TABLE participants (
    participant_id  TEXT PRIMARY KEY,
    crowd           TEXT NOT NULL DEFAULT 'study',
    attributes      JSON                          -- age, gender, ... as given in the import
);

CREATE TABLE votes (
    participant_id  TEXT    NOT NULL REFERENCES participants (participant_id),
    stimulus_id     TEXT    NOT NULL REFERENCES stimuli (stimulus_id),
    emotion         TEXT    NOT NULL,
    rt_ms           DOUBLE,
    answered_at     TIMESTAMP,
    PRIMARY KEY (participant_id, stimulus_id)
);

-- Aggregated crowd labels of another crowd, per source (FERPlus: 10 taggers, 10 categories
-- including contempt, unknown and NF = not a face), kept apart from the study's own votes.
CREATE TABLE crowd_counts (
    crowd      TEXT    NOT NULL,
    source_id  INTEGER NOT NULL REFERENCES sources (source_id),
    category   TEXT    NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (crowd, source_id, category)
);

CREATE TABLE models (
    model_id     TEXT PRIMARY KEY,                -- 'fer_minixception', 'deepface', 'deepface-ft-gaussian_blur', ...
    family       TEXT NOT NULL,                   -- adapter name in the registry, or 'external'
    parent_id    TEXT,                            -- the model a fine-tuned variant started from
    fingerprint  TEXT,                            -- hash of the weights; predictions are cached by it
    config       JSON,                            -- full configuration (fine-tuning protocol, ...)
    weights_path TEXT,
    created_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE predictions (
    model_id     TEXT    NOT NULL REFERENCES models (model_id),
    stimulus_id  TEXT    NOT NULL REFERENCES stimuli (stimulus_id),
    fingerprint  TEXT,
    anger        DOUBLE  NOT NULL,
    disgust      DOUBLE  NOT NULL,
    fear         DOUBLE  NOT NULL,
    happiness    DOUBLE  NOT NULL,
    neutral      DOUBLE  NOT NULL,
    sadness      DOUBLE  NOT NULL,
    surprise     DOUBLE  NOT NULL,
    predicted    TEXT    NOT NULL,
    PRIMARY KEY (model_id, stimulus_id)
);

-- Append-only: a decision is never updated or deleted; undo is one more event.
CREATE SEQUENCE curation_event_seq START 1;
CREATE TABLE curation_events (
    event_id   BIGINT    PRIMARY KEY DEFAULT nextval('curation_event_seq'),
    source_id  INTEGER   NOT NULL REFERENCES sources (source_id),
    curator    TEXT      NOT NULL,
    decided_at TIMESTAMP NOT NULL DEFAULT current_timestamp,  -- "at" is reserved in DuckDB
    labels     TEXT[]    NOT NULL,                -- one or more canonical emotions (empty for undo/excluded)
    weights    DOUBLE[],                          -- same length as labels, summing to 1, or NULL
    status     TEXT      NOT NULL,                -- confirmed | relabeled | ambiguous | excluded | undo | resolved
    note       TEXT,
    undoes     BIGINT                             -- event_id this event reverts (status 'undo')
);

-- Long jobs (builds, predictions, fine-tuning, demo, export) with their configuration and outcome.
CREATE SEQUENCE run_seq START 1;
CREATE TABLE runs (
    run_id      BIGINT    PRIMARY KEY DEFAULT nextval('run_seq'),
    kind        TEXT      NOT NULL,
    config      JSON,
    started_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    finished_at TIMESTAMP,
    status      TEXT      NOT NULL DEFAULT 'running',
    result      JSON
);

-- Key/value facts about the study: 'study_kind' = 'demo' | 'real', build parameters, ...
CREATE TABLE study_meta (
    key    TEXT PRIMARY KEY,
    value  TEXT
);
