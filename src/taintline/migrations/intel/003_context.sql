-- Intel component: statements kept as context only (MISP attributes with to_ids: false).
-- Same columns as indicator_sources, in a table of their own so that no matcher (scan,
-- hunt, graph) can ever read them by accident; `intel show` and the exports do.
CREATE TABLE intel_context (
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
