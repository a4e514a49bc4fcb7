-- Natural keys (see NATURAL_KEYS in case.py): a hunt run twice over the same logs stored its
-- sightings and file statistics twice. Keep one row per key, the first recorded.
CREATE TEMPORARY TABLE _sightings_once AS
SELECT DISTINCT ON (host, indicator_type, indicator_value, first_seen, last_seen, locations) *
FROM hunt_sightings
ORDER BY host, indicator_type, indicator_value, first_seen, last_seen, locations, recorded_at;
DELETE FROM hunt_sightings;
INSERT INTO hunt_sightings SELECT * FROM _sightings_once;
DROP TABLE _sightings_once;

CREATE TEMPORARY TABLE _files_once AS
SELECT DISTINCT ON (path, format, kind, lines, records, comments, blank, garbage, hits, problems) *
FROM hunt_files
ORDER BY path, format, kind, lines, records, comments, blank, garbage, hits, problems, recorded_at;
DELETE FROM hunt_files;
INSERT INTO hunt_files SELECT * FROM _files_once;
DROP TABLE _files_once;
