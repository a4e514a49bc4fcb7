"""Moving a case between machines: export to JSON Lines / Parquet, import JSON Lines.

A fleet is covered by running ``taintline scan --format jsonl`` (or ``export``) on each endpoint
and importing the files on the analyst's machine. Each JSON line is one row of one table of the
case, with a ``record`` field naming it (:data:`RECORDS`: ``finding``, ``indicator``, ``node``,
``edge``, ``sighting``, ``run``...) and one field per column; an export holds every table, so
export -> import is lossless (times keep their microseconds, bookkeeping columns such as
``first_recorded`` and ``run_id`` are kept). ``finding``, ``indicator``, ``node`` and ``edge``
records may also be in the shorter form ``scan --format jsonl`` and older exports write.
Import keeps one row per natural key (``NATURAL_KEYS``): importing a file twice adds nothing.
A file is merged in one transaction; a bad line is reported with its number and the file's
good lines are still merged.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from taintline.case import Case
from taintline.errors import Problem, UsageError
from taintline.lazy import LazyModule
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
    utc,
)

if TYPE_CHECKING:
    import pyarrow as pa
else:
    pa = LazyModule("pyarrow")

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


#: The record name of each table's rows in a JSON Lines export; a table not listed here (a
#: newer component's) uses its table name.
RECORDS: dict[str, str] = {
    "findings": "finding",
    "indicator_sources": "indicator",
    "nodes": "node",
    "edges": "edge",
    "runs": "run",
    "hunt_sightings": "sighting",
    "hunt_files": "hunt_file",
    "file_facts": "file_fact",
    "file_facts_links": "file_facts_link",
    "yara_sources": "yara_source",
    "eol_cycles": "eol_cycle",
    "eol_products": "eol_product",
    "intel_context": "context_statement",
    "cascade_runs": "cascade_run",
    "cascade_reached": "cascade_reached",
}


def record_name(table: str) -> str:
    return RECORDS.get(table, table)


def plural(record: str) -> str:
    return record if record.endswith(("ed", "s")) else f"{record}s"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # DuckDB's type name, e.g. VARCHAR, TIMESTAMP, JSON, VARCHAR[]
    nullable: bool


def table_columns(case: Case, table: str) -> list[Column]:
    rows = case.con.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [Column(str(n), str(t).upper(), str(nl).upper() == "YES") for n, t, nl in rows]


def _to_json_value(value: Any, column: Column) -> Any:
    if value is None:
        return None
    if column.type == "JSON":
        return orjson.loads(value)
    if column.type == "BLOB":
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return iso(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, date):
        return value.isoformat()
    return value


def table_records(case: Case, table: str, chunk: int = 10_000) -> Iterator[dict[str, Any]]:
    """Every row of ``table`` as a JSON-ready record, in natural-key order."""
    columns = table_columns(case, table)
    order = ", ".join(f'"{c}"' for c in case.natural_key(table))
    name = record_name(table)
    cursor = case.con.cursor()  # a cursor of its own: the rows are read in chunks
    result = cursor.execute(f"SELECT * FROM {table} ORDER BY {order}")  # noqa: S608
    while rows := result.fetchmany(chunk):
        for row in rows:
            record: dict[str, Any] = {"record": name}
            for column, value in zip(columns, row, strict=True):
                record[column.name] = _to_json_value(value, column)
            yield record


def iter_case_records(case: Case) -> Iterator[dict[str, Any]]:
    """Every row of every table of the case (see :data:`RECORDS`)."""
    for table in case.tables():
        yield from table_records(case, table)


def write_jsonl(records: Iterator[dict[str, Any]], out: IO[bytes]) -> int:
    count = 0
    for record in records:
        out.write(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
        out.write(b"\n")
        count += 1
    return count


def export_case(case: Case, fmt: str, destination: Path) -> dict[str, int]:
    """Export every table of a case. ``jsonl`` writes one file; ``parquet`` writes one file
    per table into the folder ``destination``. Returns row counts per record type (jsonl) or
    table (parquet)."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(
            f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    counts: dict[str, int] = {}
    if fmt == "jsonl":
        with destination.open("wb") as out:
            for record in iter_case_records(case):
                counts[record["record"]] = counts.get(record["record"], 0) + 1
                out.write(orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n")
        return counts
    destination.mkdir(parents=True, exist_ok=True)
    for table in case.tables():
        target = destination / f"{table}.parquet"
        # DuckDB's COPY takes no bound parameter for the file name; the path is ours (no user
        # SQL), quoted by doubling single quotes.
        quoted = str(target).replace("'", "''")
        case.con.execute(f"COPY {table} TO '{quoted}' (FORMAT parquet)")
        rows = case.con.execute(f"SELECT count(*) FROM {table}").fetchall()  # noqa: S608
        counts[table] = int(rows[0][0]) if rows else 0
    return counts


@dataclass(slots=True)
class ImportResult:
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _arrow_types() -> dict[str, pa.DataType]:
    return {
        "VARCHAR": pa.string(),
        "JSON": pa.string(),
        "TIMESTAMP": pa.timestamp("us"),
        "DATE": pa.date32(),
        "INTEGER": pa.int32(),
        "BIGINT": pa.int64(),
        "DOUBLE": pa.float64(),
        "BOOLEAN": pa.bool_(),
        "VARCHAR[]": pa.list_(pa.string()),
        "BLOB": pa.binary(),
    }


def _from_json_value(value: Any, column: Column) -> Any:
    """A record's field as the column's Python value; ValueError names the field and the
    problem in words."""
    if value is None:
        if not column.nullable:
            raise ValueError(f"field {column.name!r} is missing")
        return None
    kind = column.type
    wrong = f"field {column.name!r} is not {{}}: {str(value)[:40]!r}"
    if kind == "JSON":
        return orjson.dumps(value).decode()
    if kind == "TIMESTAMP":
        if not isinstance(value, str):
            raise ValueError(wrong.format("an ISO 8601 time"))
        try:
            return utc(parse_time(value)).replace(tzinfo=None)
        except ValueError:
            raise ValueError(wrong.format("an ISO 8601 time")) from None
    if kind == "DATE":
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise ValueError(wrong.format("an ISO 8601 date")) from None
    if kind in ("INTEGER", "BIGINT"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(wrong.format("a whole number"))
        return value
    if kind == "DOUBLE":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(wrong.format("a number"))
        return float(value)
    if kind == "BOOLEAN":
        if not isinstance(value, bool):
            raise ValueError(wrong.format("true or false"))
        return value
    if kind == "BLOB":
        if not isinstance(value, str):
            raise ValueError(wrong.format("base64 bytes"))
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:  # binascii.Error
            raise ValueError(wrong.format("base64 bytes")) from None
    if kind == "VARCHAR[]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(wrong.format("a list of text"))
        return value
    if kind == "VARCHAR":
        if not isinstance(value, str):
            raise ValueError(wrong.format("text"))
        return value
    return orjson.dumps(value).decode() if isinstance(value, (dict, list)) else str(value)


def _legacy_row(table: str, d: dict[str, Any], origin: str, now: str) -> dict[str, Any]:
    """A ``finding``/``indicator``/``node``/``edge`` record validated through the model and,
    in the short form, completed to a full table row: the bookkeeping columns it lacks are
    filled in (recorded now, origin the imported file). The full form is kept as it is."""
    if table == "findings":
        f = finding_from_dict(d)
        if "first_recorded" in d:  # the full form an export writes: kept as it is
            return d
        row = finding_to_dict(f)
        row["fingerprint"] = d.get("fingerprint") or f.fingerprint
        row["first_recorded"] = d.get("first_recorded") or now
        row["last_recorded"] = d.get("last_recorded") or now
        row["run_id"] = d.get("run_id")
        row["origin"] = d.get("origin", origin)
        return row
    if table == "indicator_sources":
        indicator = indicator_from_dict(d)
        if "added_at" in d:
            return d
        row = indicator_to_dict(indicator)
        row["added_at"] = d.get("added_at") or now
        return row
    if table == "nodes":
        node = Node(NodeKind(d["kind"]), str(d["key"]), dict(d.get("attrs") or {}))
        if "recorded_at" in d:
            return d
        return {
            "kind": str(node.kind),
            "key": node.key,
            "attrs": dict(node.attrs),
            "source": d.get("source", origin),
            "recorded_at": d.get("recorded_at") or now,
        }
    # edges: the full form names both ends by kind and key, the short one as "kind:key"
    if "src_kind" in d:
        for end in ("src", "dst"):
            NodeKind(d[f"{end}_kind"])
        EdgeKind(d["kind"])
        return {**d, "recorded_at": d.get("recorded_at") or now}
    e = edge_from_dict(d)
    return {
        "kind": str(e.kind),
        "src_kind": str(e.src.kind),
        "src_key": e.src.key,
        "dst_kind": str(e.dst.kind),
        "dst_key": e.dst.key,
        "valid_from": iso(e.valid_from),
        "valid_until": iso(e.valid_until),
        "recorded_at": iso(e.recorded_at) or now,
        "source": e.source,
        "confidence": e.confidence,
        "attrs": dict(e.attrs),
    }


_LEGACY = ("findings", "indicator_sources", "nodes", "edges")


def import_jsonl(case: Case, path: Path) -> ImportResult:
    """Merge a JSON Lines export into ``case``: each row whose natural key the case does not
    hold yet is added (importing a file twice adds nothing). Bad lines are reported, good
    lines merged, all in one transaction per file."""
    result = ImportResult()
    tables = case.tables()
    by_record = {record_name(t): t for t in tables}
    columns = {t: table_columns(case, t) for t in tables}
    rows: dict[str, list[list[Any]]] = {t: [] for t in tables}
    now = iso(case.now()) or ""
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
                name = d.get("record", "finding")
                table = by_record.get(name) if isinstance(name, str) else None
                if table is None:
                    raise ValueError(f"unknown record type {str(name)[:40]!r}")
                if table in _LEGACY:
                    d = _legacy_row(table, d, str(path), now)
                rows[table].append([_from_json_value(d.get(c.name), c) for c in columns[table]])
            except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
                message = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                result.problems.append(Problem(str(path), f"bad record: {message}", number))
    arrow_types = _arrow_types()
    with case.transaction():
        for table in tables:
            if not rows[table] and table not in _LEGACY:
                continue
            cols = columns[table]
            data = pa.table(
                {
                    c.name: pa.array(
                        [r[i] for r in rows[table]], arrow_types.get(c.type, pa.string())
                    )
                    for i, c in enumerate(cols)
                }
            )
            select = ", ".join(f'CAST("{c.name}" AS {c.type}) AS "{c.name}"' for c in cols)
            result.counts[record_name(table)] = case.insert_new(
                # column names and types come from the case's own schema, not from the file
                table,
                f"SELECT {select} FROM batch",  # noqa: S608
                inputs={"batch": data},
            )
    return result
