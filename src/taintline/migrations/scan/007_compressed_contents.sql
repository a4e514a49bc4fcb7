-- The cached records of a content (scan/cache.py) as zstd-compressed JSON: a jar's members'
-- records are about 270 bytes each of JSON text, and DuckDB's checkpoints spent seconds
-- choosing a compression for 50 MB of it on a tree of 180,000 jar members (the parent's CPU,
-- taken from the workers). Rows written before keep their text in records (records_zstd NULL);
-- new rows leave records empty.
ALTER TABLE scan_contents ADD COLUMN IF NOT EXISTS records_zstd BLOB;
