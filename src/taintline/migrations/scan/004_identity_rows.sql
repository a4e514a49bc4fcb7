-- Re-scans copy the stored rows of unchanged files (scan/carry.py): an identity remembers the
-- analysis key under which its run (run_id) recorded the file's file_facts rows, so rows
-- computed under other limits or another analyser version are never copied. NULL (rows
-- written before this migration): not copied, the cached results are replayed instead.
ALTER TABLE scan_identities ADD COLUMN analysis_key VARCHAR;
