-- Incremental scans (scan/cache.py). What a file on disk was when it was last read, per host:
-- an identical identity (size, mtime, ctime, device, inode) means the same content (sha256),
-- so the file need not be read again. Only the latest state of each path is kept; a path
-- that disappeared from a scanned root is deleted (and reported) by the next scan of it.
CREATE TABLE scan_identities (
    host VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    display VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    ctime_ns BIGINT NOT NULL,
    dev BIGINT NOT NULL,
    ino BIGINT NOT NULL,
    sha256 VARCHAR NOT NULL,
    run_id VARCHAR,
    recorded TIMESTAMP NOT NULL
);
-- What the analysis of one top-level content computed: its records and its members' (paths
-- relative to the file, JSON) and the findings of hashes-independent analysers and containers
-- (JSON), keyed by the analyser version, limits and context (analysis_key).
CREATE TABLE scan_contents (
    sha256 VARCHAR NOT NULL,
    analysis_key VARCHAR NOT NULL,
    name_class VARCHAR NOT NULL,
    display VARCHAR NOT NULL,
    records VARCHAR NOT NULL,
    findings VARCHAR NOT NULL,
    recorded TIMESTAMP NOT NULL
);
-- The YARA findings of one top-level content (and its members) under one compiled rule set;
-- place is '' unless the rules read external variables (then a digest of path and owner).
CREATE TABLE scan_yara (
    sha256 VARCHAR NOT NULL,
    rules_key VARCHAR NOT NULL,
    place VARCHAR NOT NULL,
    display VARCHAR NOT NULL,
    findings VARCHAR NOT NULL,
    recorded TIMESTAMP NOT NULL
);
