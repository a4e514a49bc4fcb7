-- Intel component: YARA rule sources (compiled on import, stored with their text) and
-- end-of-life records (endoflife.date cycles). All TIMESTAMP columns hold UTC.
CREATE TABLE yara_sources (
    sha256 VARCHAR PRIMARY KEY,
    namespace VARCHAR NOT NULL,
    origin VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    rules VARCHAR[],
    text VARCHAR NOT NULL,
    added_at TIMESTAMP NOT NULL
);

CREATE TABLE eol_cycles (
    product VARCHAR NOT NULL,
    cycle VARCHAR NOT NULL,
    release_date DATE,
    eol_date DATE,
    eol_flag BOOLEAN,
    latest VARCHAR,
    source VARCHAR NOT NULL,
    description VARCHAR,
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (product, cycle, source)
);
