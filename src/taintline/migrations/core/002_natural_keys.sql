-- Natural keys (see NATURAL_KEYS in case.py): cases written before them may hold the same
-- edge several times (`graph add`, `hunt` or `import` run twice). Keep one row per key, the
-- first recorded. NULL key columns group together (an edge with no start time is one fact).
CREATE TEMPORARY TABLE _edges_once AS
SELECT DISTINCT ON (kind, src_kind, src_key, dst_kind, dst_key, valid_from, valid_until, source) *
FROM edges
ORDER BY kind, src_kind, src_key, dst_kind, dst_key, valid_from, valid_until, source, recorded_at;
DELETE FROM edges;
INSERT INTO edges SELECT * FROM _edges_once;
DROP TABLE _edges_once;

CREATE TEMPORARY TABLE _indicator_sources_once AS
SELECT DISTINCT ON (type, value, source) *
FROM indicator_sources
ORDER BY type, value, source, added_at;
DELETE FROM indicator_sources;
INSERT INTO indicator_sources SELECT * FROM _indicator_sources_once;
DROP TABLE _indicator_sources_once;
