-- Core tables: runs, findings, indicators (one row per indicator and source), graph nodes/edges.
-- All TIMESTAMP columns hold UTC.
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY,
    command VARCHAR NOT NULL,
    started TIMESTAMP NOT NULL,
    finished TIMESTAMP,
    status VARCHAR,
    summary JSON
);

CREATE TABLE findings (
    fingerprint VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    subject VARCHAR NOT NULL,
    message VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    host VARCHAR,
    time TIMESTAMP,
    evidence JSON,
    indicators VARCHAR[],
    first_recorded TIMESTAMP NOT NULL,
    last_recorded TIMESTAMP NOT NULL,
    run_id VARCHAR,
    origin VARCHAR
);

CREATE TABLE indicator_sources (
    type VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    campaign VARCHAR,
    confidence INTEGER,
    valid_from TIMESTAMP,
    valid_until TIMESTAMP,
    description VARCHAR,
    labels VARCHAR[],
    context JSON,
    added_at TIMESTAMP NOT NULL
);

CREATE VIEW indicators AS
SELECT
    type,
    value,
    list(DISTINCT source ORDER BY source) AS sources,
    any_value(campaign) FILTER (WHERE campaign IS NOT NULL) AS campaign,
    max(confidence) AS confidence,
    min(valid_from) AS valid_from,
    max(valid_until) AS valid_until,
    any_value(description) FILTER (WHERE description IS NOT NULL) AS description,
    min(added_at) AS added_at
FROM indicator_sources
GROUP BY type, value;

CREATE TABLE nodes (
    kind VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    attrs JSON,
    source VARCHAR,
    recorded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (kind, key)
);

CREATE TABLE edges (
    kind VARCHAR NOT NULL,
    src_kind VARCHAR NOT NULL,
    src_key VARCHAR NOT NULL,
    dst_kind VARCHAR NOT NULL,
    dst_key VARCHAR NOT NULL,
    valid_from TIMESTAMP,
    valid_until TIMESTAMP,
    recorded_at TIMESTAMP NOT NULL,
    source VARCHAR NOT NULL,
    confidence DOUBLE NOT NULL DEFAULT 1.0,
    attrs JSON
);
