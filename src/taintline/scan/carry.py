"""Re-scans of unchanged files without rebuilding their records: the new run links the rows.

A re-scan of an unchanged tree reads no file (:mod:`taintline.scan.cache`), but it still has
to record what it saw: one ``file_facts`` row per file, container member and analyser, under
the new run (release verification and retroactive matching read them by run), plus the
findings. Rebuilding 180,000 jar members' records as Python objects from the cache and
writing them back cost about 60 us each; copying the rows in SQL still cost about a second
(writing 187,000 rows and their JSON facts). So the new run writes one ``file_facts_links``
row per unchanged file instead (``migrations/scan/005_file_facts_links.sql``): "this run saw
the file under this top; its rows (its own and its members') are those that run stored".
Every reader sees a run's rows, linked or not, through the ``file_facts_all`` view. Only
what is small comes to Python:

* the findings cached for the file's content (analysers, containers, YARA), usually none,
  fetched only where the cached list is not empty;
* the hash-indicator matches, found by a join of the linked rows with ``indicator_sources``
  and turned into findings by :func:`~taintline.scan.hashes.match_hashes` (the same findings
  as a scan's) for the matching records only;
* the filename-regex matches, the linked paths going to the matcher as one Arrow column.

A link always names the run that holds the rows itself: the identity of a linked file keeps
naming that run (only files read or replayed from the cache are recorded, and adopted, by
the new run), so a link of a link never happens. When that run saw the file under several
tops (overlapping inputs), the first top's rows are linked.

A file recorded under another display path (renamed, scanned through another path) or
another analysis key, or one whose display path holds ``!/`` (a folder named ``x!``: a
member path and a file path could then be the same text), or by a run whose file paths hold
``!/``, is not linked: its cached results are replayed as before
(:meth:`~taintline.scan.cache.ScanCache.replay`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from taintline.case import Case
from taintline.model import Finding
from taintline.scan.cache import ScanCache, Unchanged, findings_from_json
from taintline.scan.filenames import FilenameRules
from taintline.scan.hashes import match_hashes
from taintline.scan.reuse import name_class
from taintline.scan.walk import FileTask


@dataclass(slots=True)
class Carried:
    """What linking the unchanged files' rows gave."""

    #: task indexes whose rows were linked
    done: set[int] = field(default_factory=set)
    members: int = 0
    #: cached findings of the linked files, and their hash and filename matches
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Stored:
    """A linked record as :func:`match_hashes` reads it."""

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
    """Link the stored rows of the unchanged files that can be linked (see the module
    docstring) to ``run_id``, in the caller's transaction when one is open. Call before
    anything else is recorded under ``run_id``."""
    out = Carried()
    eligible = [
        (i, u)
        for i, u in sorted(unchanged.items())
        if u.run_id is not None
        and u.analysis_key == cache.analysis_key
        and u.display == tasks[i].display
        and "!/" not in tasks[i].display
        and "\0" not in tasks[i].display
        and "\0" not in tasks[i].top
    ]
    if not eligible:
        return out
    con = case.con
    # the unchanged files as one temporary table; each column goes to DuckDB as one text
    # joined by NUL bytes (which no path holds: the walk never yields one, and such a file
    # is not linked) and split there: 9,177 files in about 25 ms, where as many list items
    # took 40-80 ms and an Arrow table first imported pyarrow (0.15 s of start-up)
    columns = (
        [str(i) for i, _ in eligible],
        [tasks[i].top for i, _ in eligible],
        [tasks[i].display for i, _ in eligible],
        [u.run_id or "" for _, u in eligible],
        [u.sha256 for _, u in eligible],
        [name_class(tasks[i].display) for i, _ in eligible],
        [cache.place(tasks[i]) for i, _ in eligible],
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE carry_files AS"
        " SELECT unnest(string_split(?, chr(0)))::BIGINT AS idx,"
        " unnest(string_split(?, chr(0))) AS top, unnest(string_split(?, chr(0))) AS display,"
        " unnest(string_split(?, chr(0))) AS src_run, unnest(string_split(?, chr(0))) AS sha256,"
        " unnest(string_split(?, chr(0))) AS name_class, unnest(string_split(?, chr(0))) AS place",
        ["\0".join(column) for column in columns],
    )
    try:
        # the files (depth 0) the runs that recorded them stored, once
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE carry_src AS
            SELECT DISTINCT run_id, top, path FROM file_facts
            WHERE run_id IN (SELECT src_run FROM carry_files) AND depth = 0
            """
        )
        # the file's own row in the run that recorded it, under its first top (a run that
        # scanned overlapping inputs holds it under several); a run that recorded a file on
        # disk whose path holds "!/" cannot tell its members from that file's: not linked
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE carry_ok AS
            SELECT u.*, s.src_top FROM carry_files u
            JOIN (SELECT run_id, path, min(top) AS src_top FROM carry_src
                  GROUP BY run_id, path) s
              ON s.run_id = u.src_run AND s.path = u.display
            WHERE u.src_run NOT IN (SELECT run_id FROM carry_src WHERE contains(path, '!/'))
            """
        )
        # every file a run stored under a top is linked under one new top (an unchanged tree):
        # one link for all of them (display NULL), followed without splitting any path
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE carry_whole AS
            SELECT l.top, l.src_run, l.src_top FROM (
                SELECT top, src_run, src_top, count(DISTINCT display) AS n FROM carry_ok
                GROUP BY top, src_run, src_top) l
            JOIN (SELECT run_id, top, count(*) AS n FROM carry_src GROUP BY run_id, top) s
              ON s.run_id = l.src_run AND s.top = l.src_top AND s.n = l.n
            """
        )
        # otherwise one link per (top, display): the same file given twice is seen once, as
        # the run's rows are keyed by top, path and analyser
        stamp = [run_id, cache.host, case.now_naive()]
        con.execute(
            "INSERT INTO file_facts_links"
            " SELECT ?, ?, top, NULL, src_run, src_top, ? FROM carry_whole",
            stamp,
        )
        con.execute(
            """
            INSERT INTO file_facts_links
            SELECT DISTINCT ON (top, display) ?, ?, top, display, src_run, src_top, ?
            FROM carry_ok c
            WHERE NOT EXISTS (SELECT 1 FROM carry_whole w WHERE w.top = c.top
                              AND w.src_run = c.src_run AND w.src_top = c.src_top)
            ORDER BY top, display, idx
            """,
            stamp,
        )
        out.done = {int(r[0]) for r in con.execute("SELECT idx FROM carry_ok").fetchall()}
        if not out.done:
            return out
        out.members = linked_members(case, run_id)
        out.findings.extend(_cached_findings(case, cache, out.done, tasks))
        out.findings.extend(indicator_matches(case, run_id, path_rules))
    finally:
        for temp in ("carry_files", "carry_src", "carry_ok", "carry_whole"):
            con.execute(f"DROP TABLE IF EXISTS {temp}")
    return out


def linked_members(case: Case, run_id: str) -> int:
    """The container members among ``run_id``'s linked rows."""
    remembered = _remembered_members(case, run_id)
    if remembered is not None:
        return remembered
    members = case.con.execute(
        "SELECT count(*) FROM (SELECT DISTINCT top, path FROM file_facts_all"
        " WHERE run_id = ? AND depth > 0)",
        [run_id],
    ).fetchone()
    return int(members[0]) if members else 0


def indicator_matches(case: Case, run_id: str, path_rules: FilenameRules | None) -> list[Finding]:
    """The hash and filename indicator matches of ``run_id``'s linked rows."""
    return [*match_hashes(case, hash_rows(case, run_id)), *path_matches(case, run_id, path_rules)]


def path_matches(case: Case, run_id: str, path_rules: FilenameRules | None) -> list[Finding]:
    """The filename indicator matches of ``run_id``'s linked rows."""
    if not path_rules:
        return []
    paths = case.con.sql(
        "SELECT DISTINCT path FROM file_facts_all WHERE run_id = ?", params=[run_id]
    ).to_arrow_table()
    return path_rules.match_array(paths.column(0).combine_chunks())


def members_summary(case: Case, run_id: str) -> dict[str, object]:
    """What a run's summary remembers of the rows it stored itself: the container members
    under each top (``members_by_top``), so that a re-scan that links all of them need not
    count them again (counting 178,000 distinct paths: about 0.07 s)."""
    rows = case.con.execute(
        "SELECT top, count(*) FROM (SELECT DISTINCT top, path FROM file_facts"
        " WHERE run_id = ? AND depth > 0) GROUP BY top",
        [run_id],
    ).fetchall()
    return {"members_by_top": {str(top): int(n) for top, n in rows}}


def _remembered_members(case: Case, run_id: str) -> int | None:
    """The members of ``run_id``'s linked rows from the member counts the storing runs
    remembered, when every link is one of a whole top (their rows are then disjoint: each
    file is linked to the one run its identity names); None otherwise."""
    links = case.con.execute(
        "SELECT l.display IS NULL, l.src_top, json_extract(r.summary, '$.members_by_top')"
        " FROM file_facts_links l LEFT JOIN runs r ON r.run_id = l.src_run"
        " WHERE l.run_id = ?",
        [run_id],
    ).fetchall()
    total = 0
    for whole, src_top, remembered in links:
        counts = orjson.loads(remembered) if whole and remembered else None
        # a top the run stored no member under is not in its counts
        n = counts.get(src_top, 0) if isinstance(counts, dict) else None
        if not isinstance(n, int) or isinstance(n, bool):
            return None
        total += n
    return total if links else None


def _cached_findings(
    case: Case,
    cache: ScanCache,
    done: set[int],
    tasks: Sequence[FileTask],
) -> list[Finding]:
    """The cached analysis and YARA findings of the linked files (where there are any)."""
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


def hash_rows(case: Case, run_id: str, top: str | None = None) -> list[Stored]:
    """The records of ``run_id`` (under ``top``: all when None) whose MD5, SHA-1 or SHA-256
    is a hash indicator, as :func:`match_hashes` reads them."""
    under_top = "" if top is None else " AND top = ?"
    rows = case.con.execute(
        f"""
        SELECT DISTINCT path, md5, sha1, sha256, size FROM file_facts_all
        WHERE run_id = ?{under_top} AND sha256 IS NOT NULL AND (
            sha256 IN (SELECT value FROM indicator_sources WHERE type = 'sha256')
            OR sha1 IN (SELECT value FROM indicator_sources WHERE type = 'sha1')
            OR md5 IN (SELECT value FROM indicator_sources WHERE type = 'md5'))
        ORDER BY path
        """,  # noqa: S608  (a constant condition)
        [run_id] if top is None else [run_id, top],
    ).fetchall()
    return [
        Stored(str(p), md5 or "", sha1 or "", str(sha), int(size or 0))
        for p, md5, sha1, sha, size in rows
    ]


def hash_digest(case: Case) -> str:
    """What the case's hash indicators are, in a few bytes: equal digests, equal indicators
    (their values and sources; DuckDB's hash, so only ever compared within one case)."""
    row = case.con.execute(
        "SELECT count(*), coalesce(sum(hash(type, value, source)), 0) FROM indicator_sources"
        " WHERE type IN ('sha256', 'sha1', 'md5')"
    ).fetchone()
    return f"{row[0]}:{row[1]}" if row else "0:0"
