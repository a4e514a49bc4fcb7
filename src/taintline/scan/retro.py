"""Retroactive matching: new indicators against every file record already in the case.

During the 3CX response the indicator lists grew for days. A scan stores one record per file
and container member it saw (``file_facts``: path, host, run, MD5, SHA-1, SHA-256, size), on
this machine or imported from others; when indicators are added, this module joins them with
those records in DuckDB, without touching any file, and records ``ioc.hash`` findings exactly
as the scan would have (same kind, subject, host and indicators, so the same fingerprint: a
later re-scan merges with them instead of doubling them), with the scan run that saw the file
in the evidence.

The join is one hash join per hash type over the stored records; 100,000 new indicators
against 200,000 records take well under a second (``benchmarks/bench_retro.py``).

``filename-regex`` indicators (LOKI/THOR filename IOCs) are matched the same way against the
stored paths (container members too: ``setup.msi!/disk1.cab!/ffmpeg.dll``), with the scan's own
matcher (:class:`~taintline.scan.filenames.FilenameRules`: RE2 through Arrow, the same dialect
and the same Windows-form retry), so a later scan of the same file finds the same
``ioc.filename`` finding (same fingerprint).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from taintline.case import Case
from taintline.lazy import LazyModule
from taintline.model import Finding, FindingSource, Severity, utc
from taintline.scan.filenames import FilenameRules

if TYPE_CHECKING:
    import pyarrow as pa
else:
    pa = LazyModule("pyarrow")

_LABELS = {"sha256": "SHA-256", "sha1": "SHA-1", "md5": "MD5"}

# Every stored file record whose hash is an indicator (all of them, or only those added since
# a time). The indicators are joined with file_facts_all directly, not with its distinct
# records: DuckDB then filters the stored rows by the indicators' hashes before it follows a
# re-scan's links (expanding every link of every run first cost seconds on a large case).
_SQL = """
WITH wanted AS (
    SELECT type, value, source, campaign, description FROM indicator_sources
    WHERE type IN ('sha256', 'sha1', 'md5') AND ({since})
), hits AS (
    SELECT f.run_id, f.host, f.path, f.sha256, f.sha1, f.md5, f.size
    FROM file_facts_all f JOIN wanted w ON w.type = 'sha256' AND w.value = f.sha256
    UNION ALL
    SELECT f.run_id, f.host, f.path, f.sha256, f.sha1, f.md5, f.size
    FROM file_facts_all f JOIN wanted w ON w.type = 'sha1' AND w.value = f.sha1
    UNION ALL
    SELECT f.run_id, f.host, f.path, f.sha256, f.sha1, f.md5, f.size
    FROM file_facts_all f JOIN wanted w ON w.type = 'md5' AND w.value = f.md5
), matched AS (SELECT DISTINCT run_id, host, path, sha256, sha1, md5, size FROM hits),
-- For each matched record, every hash indicator it matches (old and new), as a scan names them.
every AS (
    SELECT m.*, s.* FROM matched m JOIN indicator_sources s ON s.type = 'sha256' AND s.value = m.sha256
    UNION ALL
    SELECT m.*, s.* FROM matched m JOIN indicator_sources s ON s.type = 'sha1' AND s.value = m.sha1
    UNION ALL
    SELECT m.*, s.* FROM matched m JOIN indicator_sources s ON s.type = 'md5' AND s.value = m.md5
)
SELECT run_id, host, path, sha256, sha1, md5, size, type, value,
       list(DISTINCT source ORDER BY source),
       any_value(campaign) FILTER (WHERE campaign IS NOT NULL),
       any_value(description) FILTER (WHERE description IS NOT NULL)
FROM every
GROUP BY run_id, host, path, sha256, sha1, md5, size, type, value
ORDER BY host NULLS FIRST, path, run_id, type
"""


@dataclass(slots=True)
class RetroResult:
    #: Stored file records that match (one per host, path and scan run).
    matched: int = 0
    #: Findings that were not in the case before.
    new_findings: int = 0
    hosts: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)

    def summary(self) -> str:
        if not self.matched:
            return "no stored file record matches"
        hosts = len(self.hosts)
        return (
            f"{self.new_findings} new match(es) among {self.matched} stored file record(s)"
            f" on {hosts} host(s)"
        )


def match_stored(case: Case, since: datetime | None = None, *, record: bool = True) -> RetroResult:
    """Match the case's hash indicators (only those added at or after ``since`` when given)
    against every stored file record; record the findings unless ``record`` is False."""
    since_sql = "added_at >= ?" if since is not None else "true"
    params = [utc(since).replace(tzinfo=None)] if since is not None else []
    rows = case.con.execute(_SQL.format(since=since_sql), params).fetchall()
    by_record: dict[tuple[str, str | None, str], list[tuple[object, ...]]] = defaultdict(list)
    for row in rows:
        by_record[(str(row[0]), row[1], str(row[2]))].append(row)
    result = RetroResult(matched=len(by_record))
    for (run_id, host, path), matches in by_record.items():
        first = matches[0]
        sources = sorted({s for m in matches for s in m[9]})  # type: ignore[attr-defined]
        campaigns = sorted({str(m[10]) for m in matches if m[10]})
        which = ", ".join(_LABELS.get(str(m[7]), str(m[7])) for m in matches)
        message = f"{which} matches a known-bad file indicator (sources: {', '.join(sources)})"
        if campaigns:
            message += f"; campaign: {', '.join(campaigns)}"
        message += " - matched later against the stored record, the file was not read again"
        result.findings.append(
            Finding(
                kind="ioc.hash",
                severity=Severity.CRITICAL,
                subject=path,
                message=message,
                source=FindingSource.SCAN,
                host=host,
                evidence={
                    "md5": first[5],  # type: ignore[dict-item]
                    "sha1": first[4],  # type: ignore[dict-item]
                    "sha256": first[3],  # type: ignore[dict-item]
                    "size": first[6],  # type: ignore[dict-item]
                    "scan_run": run_id,
                    "retroactive": True,
                    "matches": [
                        {
                            "indicator": f"{m[7]}:{m[8]}",
                            "sources": list(m[9]),  # type: ignore[call-overload]
                            "campaign": m[10],  # type: ignore[dict-item]
                            "description": m[11],  # type: ignore[dict-item]
                        }
                        for m in matches
                    ],
                },
                indicators=tuple(f"{m[7]}:{m[8]}" for m in matches),
            )
        )
        result.hosts.add(host or "(this machine)")
    _match_paths(case, since, result)
    if record and result.findings:
        result.new_findings = case.add_findings(result.findings, origin="match")
    return result


def _match_paths(case: Case, since: datetime | None, result: RetroResult) -> None:
    """``ioc.filename`` findings for stored paths that a (new) filename regex matches."""
    rules = FilenameRules.from_case(case, since)
    if not rules:
        return
    # every path stored (a linked row is a stored row under another run: file_facts holds
    # every path file_facts_all does), then, for the paths that match, every host that saw
    # them with its latest run that did
    paths = case.con.sql("SELECT DISTINCT path FROM file_facts ORDER BY path").to_arrow_table()
    found = rules.match_array(paths.column(0).combine_chunks())
    if not found:
        return
    subjects = pa.table({"path": pa.array(sorted({f.subject for f in found}), pa.string())})
    case.con.register("matched_paths", subjects)
    try:
        rows = case.con.execute(
            "SELECT path, host, arg_max(run_id, recorded) FROM file_facts_all"
            " WHERE path IN (SELECT path FROM matched_paths) GROUP BY path, host"
            " ORDER BY path, host NULLS FIRST"
        ).fetchall()
    finally:
        case.con.unregister("matched_paths")
    seen: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
    for path, host, run in rows:
        seen[str(path)].append((host, str(run)))
    matched: set[tuple[str | None, str]] = set()
    for finding in found:
        for host, run in seen[finding.subject]:
            matched.add((host, finding.subject))
            result.findings.append(
                dataclasses.replace(
                    finding,
                    host=host,
                    source=FindingSource.SCAN,
                    message=finding.message
                    + " - matched later against the stored record, the file was not read again",
                    evidence={**finding.evidence, "scan_run": run, "retroactive": True},
                )
            )
            result.hosts.add(host or "(this machine)")
    result.matched += len(matched)
