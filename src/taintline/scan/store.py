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
import pyarrow as pa

from taintline.case import Case
from taintline.model import Finding
from taintline.scan.filenames import FilenameRules
from taintline.scan.hashes import HashedFile, match_hashes
from taintline.scan.interface import FileRecord

if TYPE_CHECKING:
    from taintline.scan.cache import ScanCache

#: Records and findings are written to the case at least this often.
FLUSH_RECORDS = 2000
FLUSH_SECONDS = 2.0


def add_file_facts(case: Case, run_id: str, host: str, records: Sequence[FileRecord]) -> int:
    """One row per (record, analyser with facts), or one row with analyser ``''`` for a file
    no analyser recognised; returns how many rows were new (a row already stored for the
    same run, top, path and analyser is kept). Runs in the caller's transaction when one is
    open."""
    if not records:
        return 0
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "top",
            "path",
            "sha256",
            "sha1",
            "md5",
            "size",
            "filetype",
            "depth",
            "analyser",
            "facts",
        )
    }
    for r in records:
        items: list[tuple[str, str | None]] = list(r.facts_json.items()) or [("", None)]
        for analyser, facts in items:
            cols["top"].append(r.top)
            cols["path"].append(r.path)
            cols["sha256"].append(r.sha256 or None)
            cols["sha1"].append(r.sha1 or None)
            cols["md5"].append(r.md5 or None)
            cols["size"].append(r.size)
            cols["filetype"].append(r.filetype or None)
            cols["depth"].append(r.depth)
            cols["analyser"].append(analyser)
            cols["facts"].append(facts)
    rows = pa.table(
        {
            "top": pa.array(cols["top"], pa.string()),
            "path": pa.array(cols["path"], pa.string()),
            "sha256": pa.array(cols["sha256"], pa.string()),
            "sha1": pa.array(cols["sha1"], pa.string()),
            "md5": pa.array(cols["md5"], pa.string()),
            "size": pa.array(cols["size"], pa.int64()),
            "filetype": pa.array(cols["filetype"], pa.string()),
            "depth": pa.array(cols["depth"], pa.int32()),
            "analyser": pa.array(cols["analyser"], pa.string()),
            "facts": pa.array(cols["facts"], pa.string()),
        }
    )
    recorded = case.now_naive()
    return case.insert_new(
        "file_facts",
        "SELECT ?::VARCHAR AS run_id, ?::VARCHAR AS host, top, path, sha256, sha1, md5, size,"
        " filetype, depth, analyser, facts::JSON AS facts, ?::TIMESTAMP AS recorded FROM rows",
        [run_id, host, recorded],
        inputs={"rows": rows},
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
    sql = "SELECT run_id, top, path, sha256, size, analyser, facts FROM file_facts"
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
            hashed = [
                HashedFile(r.path, r.md5, r.sha1, r.sha256, r.size) for r in records if r.sha256
            ]
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
