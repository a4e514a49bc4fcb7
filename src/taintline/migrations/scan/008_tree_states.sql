-- A tree as a finished run left it (scan/treestate.py): on host, the files a run walked under
-- top (their real paths and identities, and their owners, digested as fingerprint) were all
-- recorded by run_id, and their analysis (analysis_key) and YARA results (rules_key) are all
-- in the cache. A later scan whose walk gives the same fingerprint under the same keys sees
-- exactly what run_id saw: it links run_id's rows as run_id saw them (its own and its links),
-- with the cached findings of those files (findings: JSON, in walk order) and the container
-- members among those rows (members; NULL when the run did not count them per top), and reads nothing
-- else per file. Its records that matched a hash indicator when it was remembered
-- (hash_rows: JSON [path, md5, sha1, sha256, size]) hold while the hash indicators are those
-- of hash_digest. One row per host, top, analysis key and rules key: the latest run's.
CREATE TABLE IF NOT EXISTS scan_tree_states (
    host VARCHAR NOT NULL,
    top VARCHAR NOT NULL,
    analysis_key VARCHAR NOT NULL,
    rules_key VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    files BIGINT NOT NULL,
    members BIGINT,
    findings VARCHAR NOT NULL,
    hash_digest VARCHAR NOT NULL,
    hash_rows VARCHAR NOT NULL,
    recorded TIMESTAMP NOT NULL
);
