"""The scan component's tables: ``file_facts`` (see ``migrations/scan/001_file_facts.sql``),
and the :class:`Recorder` that writes what a scan collects, in batches."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from taintline.case import Case
from taintline.lazy import LazyModule
from taintline.model import Finding
from taintline.scan.filenames import FilenameRules
from taintline.scan.hashes import match_hashes
from taintline.scan.interface import FileRecord

if TYPE_CHECKING:
    import pyarrow as pa
else:
    pa = LazyModule("pyarrow")

if TYPE_CHECKING:
    from taintline.scan.cache import ScanCache

#: Records and findings are written to the case at least this often. Each write is one
#: transaction with a fixed cost (the hash-indicator join, the anti-join on file_facts, the
#: commit): about 70 ms, so a tree of 180,000 jar members written 2,000 records at a time
#: spent seconds of the parent's CPU, which the two workers needed.
FLUSH_RECORDS = 10_000
FLUSH_SECONDS = 5.0


def add_file_facts(case: Case, run_id: str, host: str, records: Sequence[FileRecord]) -> int:
    """One row per (record, analyser with facts), or one row with analyser ``''`` for a file
    no analyser recognised; returns how many rows were new (a row already stored for the
    same run, top, path and analyser is kept). Runs in the caller's transaction when one is
    open."""
    if not records:
        return 0
    # one row per (record, analyser with facts); built column by column with comprehensions
    # (a tree of jar members sends 180,000 records: appending to ten lists row by row cost
    # the parent about 8 us a record)
    rows_of: list[tuple[FileRecord, str, str | None]] = [
        (r, analyser, facts)
        for r in records
        for analyser, facts in (r.facts_json.items() if r.facts_json else (("", None),))
    ]
    plain = [r for r, _, _ in rows_of]
    rows = pa.table(
        {
            "top": pa.array([r.top for r in plain], pa.string()),
            "path": pa.array([r.path for r in plain], pa.string()),
            "sha256": pa.array([r.sha256 or None for r in plain], pa.string()),
            "sha1": pa.array([r.sha1 or None for r in plain], pa.string()),
            "md5": pa.array([r.md5 or None for r in plain], pa.string()),
            "size": pa.array([r.size for r in plain], pa.int64()),
            "filetype": pa.array([r.filetype or None for r in plain], pa.string()),
            "depth": pa.array([r.depth for r in plain], pa.int32()),
            "analyser": pa.array([a for _, a, _ in rows_of], pa.string()),
            "facts": pa.array([f for _, _, f in rows_of], pa.string()),
        }
    )
    recorded = case.now_naive()
    return case.insert_new(
        "file_facts",
        "SELECT ?::VARCHAR AS run_id, ?::VARCHAR AS host, top, path, sha256, sha1, md5, size,"
        " filetype, depth, analyser, facts::JSON AS facts, ?::TIMESTAMP AS recorded FROM rows",
        [run_id, host, recorded],
        inputs={"rows": rows},
        within=("run_id", run_id),
    )


@dataclass(frozen=True, slots=True)
class StoredFacts:
    run_id: str
    top: str
    path: str
    sha256: str | None
    size: int | None
    analyser: str
    facts: dict[str, Any] | None


def file_facts(
    case: Case, *, run_id: str | None = None, top: str | None = None
) -> list[StoredFacts]:
    """Stored facts, optionally of one run and/or one top-level input, in path order."""
    sql = "SELECT run_id, top, path, sha256, size, analyser, facts FROM file_facts_all"
    where: list[str] = []
    params: list[Any] = []
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    if top is not None:
        where.append("top = ?")
        params.append(top)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY path, analyser"
    return [
        StoredFacts(r[0], r[1], r[2], r[3], r[4], r[5], orjson.loads(r[6]) if r[6] else None)
        for r in case.con.execute(sql, params).fetchall()
    ]


class Recorder:
    """Collects results; writes them to the case in batches (one transaction each)."""

    def __init__(
        self,
        case: Case | None,
        run_id: str | None,
        host: str,
        when: datetime,
        cache: ScanCache | None = None,
    ) -> None:
        self.case = case
        self.cache = cache
        self.run_id = run_id
        self.host = host
        self.when = when
        self.findings: list[Finding] = []
        self._pending_records: list[FileRecord] = []
        self._pending_findings: list[Finding] = []
        self._last_flush = time.monotonic()
        self.path_rules = FilenameRules.from_case(case) if case is not None else None

    def stamp(self, finding: Finding) -> Finding:
        changes: dict[str, Any] = {}
        if finding.host is None:
            changes["host"] = self.host
        if finding.time is None:
            changes["time"] = self.when
        return dataclasses.replace(finding, **changes) if changes else finding

    def add(self, records: Sequence[FileRecord], findings: Sequence[Finding]) -> None:
        self._pending_records.extend(records)
        self._pending_findings.extend(self.stamp(f) for f in findings)
        if (
            len(self._pending_records) >= FLUSH_RECORDS
            or time.monotonic() - self._last_flush > FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        records, findings = self._pending_records, self._pending_findings
        self._pending_records, self._pending_findings = [], []
        self._last_flush = time.monotonic()
        if self.case is not None:
            hashed = [r for r in records if r.sha256]
            with self.case.transaction():
                matches = [self.stamp(f) for f in match_hashes(self.case, hashed)]
                if self.path_rules:
                    matches += [
                        self.stamp(f) for f in self.path_rules.match([r.path for r in records])
                    ]
                add_file_facts(self.case, self.run_id or "", self.host, records)
                self.case.add_findings([*findings, *matches], run_id=self.run_id, origin="scan")
                if self.cache is not None:
                    self.cache.flush(self.run_id)
            findings = [*findings, *matches]
        self.findings.extend(findings)
