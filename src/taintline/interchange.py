"""Moving a case between machines: export to JSON Lines / Parquet, import JSON Lines.

A fleet is covered by running ``taintline scan --format jsonl`` (or ``export``) on each endpoint
and importing the files on the analyst's machine. Each JSON line is one record with a
``record`` field: ``finding``, ``indicator``, ``node`` or ``edge``. Import is all-or-nothing per
file: a bad line is reported with its number and the file's good lines are still merged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from taintline.case import Case
from taintline.errors import Problem, UsageError
from taintline.model import (
    Edge,
    EdgeKind,
    Finding,
    FindingSource,
    Indicator,
    IndicatorType,
    Node,
    NodeKind,
    NodeRef,
    Severity,
    iso,
    parse_time,
)

EXPORT_FORMATS = ("jsonl", "parquet")


def finding_to_dict(f: Finding) -> dict[str, Any]:
    return {
        "record": "finding",
        "fingerprint": f.fingerprint,
        "kind": f.kind,
        "severity": str(f.severity),
        "subject": f.subject,
        "message": f.message,
        "source": str(f.source),
        "host": f.host,
        "time": iso(f.time),
        "evidence": dict(f.evidence),
        "indicators": list(f.indicators),
    }


def finding_from_dict(d: dict[str, Any]) -> Finding:
    return Finding(
        kind=str(d["kind"]),
        severity=Severity(d["severity"]),
        subject=str(d["subject"]),
        message=str(d.get("message") or ""),
        source=FindingSource(d.get("source") or "import"),
        host=d.get("host"),
        time=parse_time(d["time"]) if d.get("time") else None,
        evidence=dict(d.get("evidence") or {}),
        indicators=tuple(str(x) for x in d.get("indicators") or ()),
    )


def indicator_to_dict(i: Indicator) -> dict[str, Any]:
    return {
        "record": "indicator",
        "type": str(i.type),
        "value": i.value,
        "source": i.source,
        "campaign": i.campaign,
        "confidence": i.confidence,
        "valid_from": iso(i.valid_from),
        "valid_until": iso(i.valid_until),
        "description": i.description,
        "labels": list(i.labels),
        "context": dict(i.context),
    }


def indicator_from_dict(d: dict[str, Any]) -> Indicator:
    return Indicator(
        type=IndicatorType(d["type"]),
        value=str(d["value"]),
        source=str(d["source"]),
        campaign=d.get("campaign"),
        confidence=int(d["confidence"]) if d.get("confidence") is not None else None,
        valid_from=parse_time(d["valid_from"]) if d.get("valid_from") else None,
        valid_until=parse_time(d["valid_until"]) if d.get("valid_until") else None,
        description=d.get("description"),
        labels=tuple(d.get("labels") or ()),
        context=dict(d.get("context") or {}),
    )


def node_to_dict(n: Node) -> dict[str, Any]:
    return {"record": "node", "kind": str(n.kind), "key": n.key, "attrs": dict(n.attrs)}


def edge_to_dict(e: Edge) -> dict[str, Any]:
    return {
        "record": "edge",
        "kind": str(e.kind),
        "src": str(e.src),
        "dst": str(e.dst),
        "valid_from": iso(e.valid_from),
        "valid_until": iso(e.valid_until),
        "recorded_at": iso(e.recorded_at),
        "source": e.source,
        "confidence": e.confidence,
        "attrs": dict(e.attrs),
    }


def edge_from_dict(d: dict[str, Any]) -> Edge:
    return Edge(
        kind=EdgeKind(d["kind"]),
        src=NodeRef.parse(d["src"]),
        dst=NodeRef.parse(d["dst"]),
        source=str(d["source"]),
        valid_from=parse_time(d["valid_from"]) if d.get("valid_from") else None,
        valid_until=parse_time(d["valid_until"]) if d.get("valid_until") else None,
        recorded_at=parse_time(d["recorded_at"]) if d.get("recorded_at") else None,
        confidence=float(d.get("confidence", 1.0)),
        attrs=dict(d.get("attrs") or {}),
    )


def iter_case_records(case: Case) -> Iterator[dict[str, Any]]:
    for f in case.findings():
        yield finding_to_dict(f)
    for summary in case.indicators():
        for statement in case.indicator_statements(summary.type, summary.value):
            yield indicator_to_dict(statement)
    for n in case.nodes():
        yield node_to_dict(n)
    for e in case.edges():
        yield edge_to_dict(e)


def write_jsonl(records: Iterator[dict[str, Any]], out: IO[bytes]) -> int:
    count = 0
    for record in records:
        out.write(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
        out.write(b"\n")
        count += 1
    return count


def export_case(case: Case, fmt: str, destination: Path) -> dict[str, int]:
    """Export a case. ``jsonl`` writes one file; ``parquet`` writes one file per table into
    the folder ``destination``. Returns row counts per record type."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(
            f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    if fmt == "jsonl":
        counts: dict[str, int] = {}
        with destination.open("wb") as out:
            for record in iter_case_records(case):
                counts[record["record"]] = counts.get(record["record"], 0) + 1
                out.write(orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n")
        return counts
    destination.mkdir(parents=True, exist_ok=True)
    counts = {}
    for table in ("findings", "indicator_sources", "nodes", "edges"):
        target = destination / f"{table}.parquet"
        # DuckDB's COPY takes no bound parameter for the file name; the path is ours (no user
        # SQL), quoted by doubling single quotes.
        quoted = str(target).replace("'", "''")
        case.con.execute(f"COPY {table} TO '{quoted}' (FORMAT parquet)")
        row = case.con.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
        counts[table] = int(row[0]) if row else 0
    return counts


@dataclass(slots=True)
class ImportResult:
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def import_jsonl(case: Case, path: Path) -> ImportResult:
    """Merge a JSON Lines export into ``case``. Bad lines are reported, good lines merged,
    all in one transaction per file."""
    result = ImportResult()
    findings: list[Finding] = []
    indicators: list[Indicator] = []
    nodes: list[Node] = []
    edges: list[Edge] = []
    try:
        handle = path.open("rb")
    except OSError as exc:
        result.problems.append(Problem(str(path), f"cannot read: {exc.strerror or exc}"))
        return result
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                d = orjson.loads(line)
                if not isinstance(d, dict):
                    raise ValueError("not a JSON object")
                kind = d.get("record", "finding")
                if kind == "finding":
                    findings.append(finding_from_dict(d))
                elif kind == "indicator":
                    indicators.append(indicator_from_dict(d))
                elif kind == "node":
                    nodes.append(
                        Node(NodeKind(d["kind"]), str(d["key"]), dict(d.get("attrs") or {}))
                    )
                elif kind == "edge":
                    edges.append(edge_from_dict(d))
                else:
                    raise ValueError(f"unknown record type {kind!r}")
            except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
                result.problems.append(Problem(str(path), f"bad record: {exc}", number))
    with case.transaction():
        result.counts["finding"] = case.add_findings(findings, origin=str(path))
        result.counts["indicator"] = case.add_indicators(indicators)
        result.counts["node"] = case.add_nodes(nodes, source=str(path))
        result.counts["edge"] = case.add_edges(edges)
    return result
