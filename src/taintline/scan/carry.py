"""Re-scans of unchanged files without rebuilding their records: the rows are copied in SQL.

A re-scan of an unchanged tree reads no file (:mod:`taintline.scan.cache`), but it still has
to record what it saw: one ``file_facts`` row per file, container member and analyser, under
the new run (release verification and retroactive matching read them by run), plus the
findings. Rebuilding 180,000 jar members' records as Python objects from the cache and
writing them back cost about 60 us each, as long as yara took to scan the whole tree. Here the
rows of every unchanged file whose identity says which run recorded it, under which display
path and analysis key, are copied by one ``INSERT ... SELECT`` from that run; only what is
small comes to Python:

* the findings cached for the file's content (analysers, containers, YARA), usually none,
  fetched only where the cached list is not empty;
* the hash-indicator matches, found by a join of the copied rows with ``indicator_sources``
  and turned into findings by :func:`~taintline.scan.hashes.match_hashes` (the same findings
  as a scan's) for the matching records only;
* the filename-regex matches, the copied paths going to the matcher as one Arrow column.

A file recorded under another display path (renamed, scanned through another path) or
another analysis key, or one whose display path holds ``!/`` (a folder named ``x!``: a
member path and a file path could then be the same text), is not copied: its cached results
are replayed as before (:meth:`~taintline.scan.cache.ScanCache.replay`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from taintline.case import Case
from taintline.lazy import LazyModule
from taintline.model import Finding
from taintline.scan.cache import ScanCache, Unchanged, findings_from_json
from taintline.scan.filenames import FilenameRules
from taintline.scan.hashes import match_hashes
from taintline.scan.reuse import name_class
from taintline.scan.walk import FileTask

if TYPE_CHECKING:
    import pyarrow as pa
else:
    pa = LazyModule("pyarrow")


@dataclass(slots=True)
class Carried:
    """What copying the unchanged files' rows gave."""

    #: task indexes whose rows were copied
    done: set[int] = field(default_factory=set)
    members: int = 0
    #: cached findings of the copied files, and their hash and filename matches
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Stored:
    """A copied record as :func:`match_hashes` reads it."""

    path: str
    md5: str
    sha1: str
    sha256: str
    size: int


def carry_unchanged(
    case: Case,
    cache: ScanCache,
    run_id: str,
    tasks: Sequence[FileTask],
    unchanged: dict[int, Unchanged],
    path_rules: FilenameRules | None,
) -> Carried:
    """Copy the stored rows of the unchanged files that can be copied (see the module
    docstring) into ``run_id``, in the caller's transaction when one is open. Call before
    anything else is recorded under ``run_id``."""
    out = Carried()
    seen: set[tuple[str, str]] = set()
    eligible: list[tuple[int, Unchanged]] = []
    for i, u in sorted(unchanged.items()):
        task = tasks[i]
        if (
            u.run_id is not None
            and u.analysis_key == cache.analysis_key
            and u.display == task.display
            and "!/" not in task.display
            and (task.top, task.display) not in seen  # the same file given twice: once
        ):
            seen.add((task.top, task.display))
            eligible.append((i, u))
    if not eligible:
        return out
    carry_files = pa.table(
        {
            "idx": pa.array([i for i, _ in eligible], pa.int64()),
            "top": pa.array([tasks[i].top for i, _ in eligible], pa.string()),
            "display": pa.array([tasks[i].display for i, _ in eligible], pa.string()),
            "src_run": pa.array([u.run_id for _, u in eligible], pa.string()),
            "sha256": pa.array([u.sha256 for _, u in eligible], pa.string()),
            "name_class": pa.array([name_class(tasks[i].display) for i, _ in eligible]),
            "place": pa.array([cache.place(tasks[i]) for i, _ in eligible], pa.string()),
        }
    )
    con = case.con
    con.register("carry_files", carry_files)
    try:
        # a run that recorded a file on disk whose path holds "!/" cannot tell its members
        # from that file's: its rows are not copied
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE carry_ok AS
            SELECT * FROM carry_files WHERE src_run NOT IN (
                SELECT DISTINCT run_id FROM file_facts
                WHERE run_id IN (SELECT src_run FROM carry_files)
                  AND depth = 0 AND contains(path, '!/'))
            """
        )
        # a run that scanned overlapping inputs holds a path under several tops: one is copied
        tops = con.execute(
            "SELECT max(n) FROM (SELECT count(DISTINCT top) AS n FROM file_facts"
            " WHERE run_id IN (SELECT src_run FROM carry_ok) GROUP BY run_id)"
        ).fetchone()
        once = "DISTINCT ON (u.top, f.path, f.analyser)" if tops and (tops[0] or 0) > 1 else ""
        # straight into the new run (nothing else is recorded in it yet, so what it holds
        # next is what was copied); a file whose own row is missing there is replayed (its
        # rows are then stored once: the run's rows are keyed by top, path and analyser)
        con.execute(
            f"""
            INSERT INTO file_facts
            SELECT {once} ?, ?, u.top, f.path, f.sha256, f.sha1, f.md5, f.size, f.filetype,
                   f.depth, f.analyser, f.facts, ?
            FROM file_facts f
            JOIN carry_ok u ON f.run_id = u.src_run AND split_part(f.path, '!/', 1) = u.display
            WHERE f.run_id IN (SELECT src_run FROM carry_ok) AND (f.depth > 0 OR f.path = u.display)
            """,  # noqa: S608  (a constant)
            [run_id, cache.host, case.now_naive()],
        )
        shown = {
            str(r[0])
            for r in con.execute(
                "SELECT DISTINCT path FROM file_facts WHERE run_id = ? AND depth = 0", [run_id]
            ).fetchall()
        }
        out.done = {i for i, _ in eligible if tasks[i].display in shown}
        if not out.done:
            return out
        members = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT top, path FROM file_facts"
            " WHERE run_id = ? AND depth > 0)",
            [run_id],
        ).fetchone()
        out.members = int(members[0]) if members else 0
        out.findings.extend(_cached_findings(case, cache, out.done, tasks))
        out.findings.extend(_hash_matches(case, run_id))
        if path_rules:
            paths = con.sql(
                "SELECT DISTINCT path FROM file_facts WHERE run_id = ?", params=[run_id]
            ).to_arrow_table()
            out.findings.extend(path_rules.match_array(paths.column(0).combine_chunks()))
    finally:
        con.unregister("carry_files")
        con.execute("DROP TABLE IF EXISTS carry_ok")
    return out


def _cached_findings(
    case: Case,
    cache: ScanCache,
    done: set[int],
    tasks: Sequence[FileTask],
) -> list[Finding]:
    """The cached analysis and YARA findings of the copied files (where there are any)."""
    rows = case.con.execute(
        """
        SELECT u.idx, c.display, c.findings, y.display, y.findings
        FROM carry_ok u
        JOIN scan_contents c ON c.sha256 = u.sha256 AND c.analysis_key = ?
            AND c.name_class = u.name_class
        LEFT JOIN scan_yara y ON y.sha256 = u.sha256 AND y.rules_key = ? AND y.place = u.place
        WHERE c.findings <> '[]' OR coalesce(y.findings, '[]') <> '[]'
        ORDER BY u.idx
        """,
        [cache.analysis_key, cache.rules_key],
    ).fetchall()
    out: list[Finding] = []
    for idx, c_display, c_findings, y_display, y_findings in rows:
        if int(idx) not in done:
            continue
        display = tasks[int(idx)].display
        out.extend(findings_from_json(c_findings, c_display, display))
        if cache.rules_key and y_findings is not None:
            out.extend(findings_from_json(y_findings, y_display, display))
    return out


def _hash_matches(case: Case, run_id: str) -> list[Finding]:
    """``ioc.hash`` findings of the copied records whose hash is an indicator."""
    rows = case.con.execute(
        """
        SELECT DISTINCT path, md5, sha1, sha256, size FROM file_facts
        WHERE run_id = ? AND sha256 IS NOT NULL AND (
            sha256 IN (SELECT value FROM indicator_sources WHERE type = 'sha256')
            OR sha1 IN (SELECT value FROM indicator_sources WHERE type = 'sha1')
            OR md5 IN (SELECT value FROM indicator_sources WHERE type = 'md5'))
        ORDER BY path
        """,
        [run_id],
    ).fetchall()
    stored = [
        _Stored(str(p), md5 or "", sha1 or "", str(sha), int(size or 0))
        for p, md5, sha1, sha, size in rows
    ]
    return match_hashes(case, stored)
