-- One row per scanned file (or container member) and analyser that recognised it; a file no
-- analyser recognised has one row with analyser = '' and facts NULL. Release verification
-- compares these rows between a known-good and a candidate release (by run_id or top).
CREATE TABLE file_facts (
    run_id VARCHAR NOT NULL,
    host VARCHAR,
    top VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    sha256 VARCHAR,
    sha1 VARCHAR,
    md5 VARCHAR,
    size BIGINT,
    filetype VARCHAR,
    depth INTEGER,
    analyser VARCHAR NOT NULL,
    facts JSON,
    recorded TIMESTAMP NOT NULL
);
