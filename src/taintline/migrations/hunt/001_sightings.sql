-- Hunt results: one row per (host, indicator) sighting, plus per-file read statistics.
CREATE TABLE hunt_sightings (
    run_id VARCHAR,
    host VARCHAR NOT NULL,
    indicator_type VARCHAR NOT NULL,
    indicator_value VARCHAR NOT NULL,
    first_seen TIMESTAMP,
    last_seen TIMESTAMP,
    count BIGINT NOT NULL,
    sources VARCHAR[],
    campaign VARCHAR,
    fields VARCHAR[],
    locations VARCHAR[],
    recorded_at TIMESTAMP NOT NULL
);

CREATE TABLE hunt_files (
    run_id VARCHAR,
    path VARCHAR NOT NULL,
    format VARCHAR,
    kind VARCHAR,
    lines BIGINT,
    records BIGINT,
    comments BIGINT,
    blank BIGINT,
    garbage BIGINT,
    hits BIGINT,
    problems VARCHAR[],
    recorded_at TIMESTAMP NOT NULL
);
