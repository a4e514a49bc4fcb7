-- Re-scans link instead of copying (scan/carry.py): "run run_id saw the file display under
-- top on host; its rows are those src_run stored under src_top": the file's own row(s)
-- (path = display) and its members' (depth > 0, split_part(path, '!/', 1) = display).
-- src_run always holds the rows itself (a link never points at a run that only links), and
-- its depth-0 paths hold no '!/' (a member path could then be a file's).
CREATE TABLE file_facts_links (
    run_id VARCHAR NOT NULL,
    host VARCHAR,
    top VARCHAR NOT NULL,
    display VARCHAR NOT NULL,
    src_run VARCHAR NOT NULL,
    src_top VARCHAR NOT NULL,
    recorded TIMESTAMP NOT NULL
);
-- Every row each run saw: its own rows and its linked rows, labelled with the linking run's
-- id, host, top and time. Read file facts from here, never from file_facts directly.
CREATE VIEW file_facts_all AS
SELECT run_id, host, top, path, sha256, sha1, md5, size, filetype, depth, analyser, facts,
       recorded
FROM file_facts
UNION ALL
SELECT l.run_id, l.host, l.top, f.path, f.sha256, f.sha1, f.md5, f.size, f.filetype, f.depth,
       f.analyser, f.facts, l.recorded
FROM file_facts_links l
JOIN file_facts f ON f.run_id = l.src_run AND f.top = l.src_top
    AND split_part(f.path, '!/', 1) = l.display
WHERE f.depth > 0 OR f.path = l.display;
