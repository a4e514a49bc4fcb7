-- A re-scan of an unchanged tree links every file a run stored under one top: one link with
-- display NULL, "run run_id saw every row src_run stored under src_top, under top", instead
-- of one link per file. Readers then follow it by an equality join on (run, top), where a
-- link per file costs a split of every stored path (scan/carry.py).
ALTER TABLE file_facts_links ALTER COLUMN display DROP NOT NULL;
CREATE OR REPLACE VIEW file_facts_all AS
SELECT run_id, host, top, path, sha256, sha1, md5, size, filetype, depth, analyser, facts,
       recorded
FROM file_facts
UNION ALL
SELECT l.run_id, l.host, l.top, f.path, f.sha256, f.sha1, f.md5, f.size, f.filetype, f.depth,
       f.analyser, f.facts, l.recorded
FROM file_facts_links l
JOIN file_facts f ON f.run_id = l.src_run AND f.top = l.src_top
WHERE l.display IS NULL
UNION ALL
SELECT l.run_id, l.host, l.top, f.path, f.sha256, f.sha1, f.md5, f.size, f.filetype, f.depth,
       f.analyser, f.facts, l.recorded
FROM file_facts_links l
JOIN file_facts f ON f.run_id = l.src_run AND f.top = l.src_top
    AND split_part(f.path, '!/', 1) = l.display
WHERE f.depth > 0 OR f.path = l.display;
-- The runs that saw rows (their own or linked): which run is the latest with facts, without
-- following every link.
CREATE VIEW file_facts_runs AS
SELECT DISTINCT run_id FROM file_facts
UNION
SELECT DISTINCT run_id FROM file_facts_links;
