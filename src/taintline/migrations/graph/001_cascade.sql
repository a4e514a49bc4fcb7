-- Cascade runs and, per run, every node reached with its earliest compromise time and the
-- fact (edge) that explains it, so paths can be redrawn later (HTML report) without re-running.
-- Times are UTC; NULL time = "since always" (e.g. an artifact known bad with no known origin).
CREATE TABLE cascade_runs (
    run_id VARCHAR PRIMARY KEY,
    started TIMESTAMP NOT NULL,
    engine VARCHAR NOT NULL,
    seeds JSON,
    rules JSON,
    nodes_reached BIGINT,
    summary JSON
);

CREATE TABLE cascade_reached (
    run_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    time TIMESTAMP,
    confidence DOUBLE NOT NULL,
    hops INTEGER NOT NULL,
    is_root BOOLEAN NOT NULL,
    parent_kind VARCHAR,
    parent_key VARCHAR,
    rule VARCHAR,
    edge_kind VARCHAR,
    edge_src_kind VARCHAR,
    edge_src_key VARCHAR,
    edge_dst_kind VARCHAR,
    edge_dst_key VARCHAR,
    edge_valid_from TIMESTAMP,
    edge_valid_until TIMESTAMP,
    edge_recorded_at TIMESTAMP,
    edge_source VARCHAR,
    PRIMARY KEY (run_id, kind, key)
);
