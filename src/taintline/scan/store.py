"""The scan component's tables: ``file_facts`` (see ``migrations/scan/001_file_facts.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from taintline.case import Case
from taintline.scan.interface import FileRecord


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
