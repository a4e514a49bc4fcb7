-- Natural keys (see NATURAL_KEYS in case.py): one row per (run, top, path, analyser); an
-- import of the same export twice stored the rows twice. Keep the first recorded.
CREATE TEMPORARY TABLE _file_facts_once AS
SELECT DISTINCT ON (run_id, top, path, analyser) *
FROM file_facts
ORDER BY run_id, top, path, analyser, recorded;
DELETE FROM file_facts;
INSERT INTO file_facts SELECT * FROM _file_facts_once;
DROP TABLE _file_facts_once;
