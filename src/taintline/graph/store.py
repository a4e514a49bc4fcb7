"""Graph and cascade storage: load the case's nodes/edges as columns, save cascade runs.

Nodes are numbered by ``(kind, key)`` order; edges are read in a fixed order (kind, ends,
times, source) so arc numbers, and therefore tie-breaks between equally good explanations,
are the same on every run and every engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from taintline.case import Case, aware_utc
from taintline.errors import UsageError
from taintline.graph.cascade import (
    ALWAYS,
    EDGE_CODE,
    I64,
    NEVER,
    EdgeArrays,
    Propagation,
)
from taintline.graph.rules import Rule, rules_as_rows
from taintline.model import NodeKind, NodeRef, Severity, iso, parse_time, utc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The edge facts a loaded graph keeps beside its arrays (and writes with each stored path).
EDGE_COLUMNS = (
    "kind",
    "src_kind",
    "src_key",
    "dst_kind",
    "dst_key",
    "valid_from",
    "valid_until",
    "recorded_at",
    "source",
)


def to_us(value: datetime | None, default: int) -> int:
    if value is None:
        return default
    return int((utc(value) - EPOCH) // timedelta(microseconds=1))


def from_us(value: int) -> datetime | None:
    if value in (ALWAYS, NEVER):
        return None
    return EPOCH + timedelta(microseconds=int(value))


@dataclass(frozen=True, slots=True)
class Seed:
    ref: NodeRef
    time: datetime | None  # None: compromised since always (no known start)
    why: str = "seed"

    def __str__(self) -> str:
        when = iso(self.time) or "always"
        return f"{self.ref}@{when}"


def parse_seed(text: str) -> Seed:
    """``KIND:KEY@TIME`` (TIME ISO 8601; may be left out). Keys may contain ``@``: the part
    after the last ``@`` is a time only if it parses as one."""
    body, sep, when = text.rpartition("@")
    time: datetime | None = None
    if sep:
        try:
            time = parse_time(when)
        except ValueError:
            body = text
    else:
        body = text
    try:
        ref = NodeRef.parse(body)
    except ValueError as exc:
        kinds = ", ".join(k.value for k in NodeKind)
        raise UsageError(f"bad seed {text!r}: {exc} (KIND is one of {kinds})") from None
    return Seed(ref, time, "seed")


# Keys are compared case-insensitively (hunt, scan and the readers may spell a host
# differently); build ids are kept as they are.
_NORM = "CASE WHEN {k} = 'build' THEN {v} ELSE lower({v}) END"
_NUMBERED = f"""
WITH allnodes AS (
    SELECT kind, {_NORM.format(k="kind", v="key")} AS key FROM nodes
    UNION SELECT src_kind, {_NORM.format(k="src_kind", v="src_key")} FROM edges
    UNION SELECT dst_kind, {_NORM.format(k="dst_kind", v="dst_key")} FROM edges
), numbered AS (
    SELECT kind, key, (row_number() OVER (ORDER BY kind, key) - 1)::BIGINT AS id FROM allnodes
)
"""  # noqa: S608  (constant SQL built from literals, no input)
_NODES_SQL = (
    _NUMBERED
    + f"""
SELECT n.id, n.kind, n.key,
       coalesce(bool_or(coalesce(try_cast(json_extract(g.attrs, '$.flagged') AS BOOLEAN), false)
                        OR json_extract(g.attrs, '$.end_of_life') IS NOT NULL), false)
FROM numbered n
LEFT JOIN nodes g ON g.kind = n.kind AND {_NORM.format(k="g.kind", v="g.key")} = n.key
GROUP BY n.id, n.kind, n.key ORDER BY n.id
"""  # noqa: S608
)
_EDGES_SQL = (
    _NUMBERED
    + f"""
SELECT e.kind, s.id AS src, d.id AS dst,
       epoch_us(e.valid_from) AS vf, epoch_us(e.valid_until) AS vu,
       e.confidence, e.src_kind, s.key AS src_key, e.dst_kind, d.key AS dst_key,
       e.valid_from, e.valid_until, e.recorded_at, e.source
FROM edges e
JOIN numbered s ON s.kind = e.src_kind AND s.key = {_NORM.format(k="e.src_kind", v="e.src_key")}
JOIN numbered d ON d.kind = e.dst_kind AND d.key = {_NORM.format(k="e.dst_kind", v="e.dst_key")}
ORDER BY e.kind, s.id, d.id, e.valid_from NULLS FIRST, e.valid_until NULLS LAST,
         e.source, e.recorded_at
"""  # noqa: S608
)


@dataclass(slots=True)
class CaseGraph:
    """The case's graph as columns."""

    kinds: pa.Array
    keys: pa.Array
    flagged: np.ndarray
    edges: EdgeArrays
    #: kind, src_kind, src_key, dst_kind, dst_key, valid_from, valid_until, recorded_at, source
    edge_table: pa.Table
    _index: dict[tuple[str, str], int] | None = field(default=None)

    @property
    def n_nodes(self) -> int:
        return len(self.keys)

    def ref(self, node: int) -> NodeRef:
        return NodeRef(NodeKind(self.kinds[node].as_py()), str(self.keys[node].as_py()))

    def index(self, ref: NodeRef) -> int | None:
        if self._index is None:
            self._index = {
                (k, v): i
                for i, (k, v) in enumerate(
                    zip(self.kinds.to_pylist(), self.keys.to_pylist(), strict=True)
                )
            }
        found = self._index.get((str(ref.kind), ref.key))
        if found is None:
            found = self._index.get((str(ref.kind), ref.key.lower()))
        return found


def _fill(col: pa.ChunkedArray, default: int) -> I64:
    return np.asarray(pc.fill_null(col, default).to_numpy(), dtype=np.int64)


def load_graph(case: Case) -> CaseGraph:
    # A cursor of its own: DuckDB refuses relation queries while another result on the main
    # connection is unfinished (``execute(...).fetchone()`` leaves one behind).
    con = case.con.cursor()
    nodes = con.sql(_NODES_SQL).to_arrow_table()
    table = con.sql(_EDGES_SQL).to_arrow_table()
    kind_codes = np.array(
        [EDGE_CODE.get(k, -1) for k in table.column("kind").to_pylist()], dtype=np.int16
    )
    edges = EdgeArrays(
        kind=kind_codes,
        src=np.asarray(table.column("src").to_numpy(), np.int64),
        dst=np.asarray(table.column("dst").to_numpy(), np.int64),
        valid_from=_fill(table.column("vf"), ALWAYS),
        valid_until=_fill(table.column("vu"), NEVER),
        confidence=np.asarray(table.column("confidence").to_numpy(), np.float64),
    )
    edge_table = table.select(list(EDGE_COLUMNS))
    return CaseGraph(
        kinds=nodes.column(1).combine_chunks(),
        keys=nodes.column(2).combine_chunks(),
        flagged=np.asarray(nodes.column(3).to_numpy(zero_copy_only=False), bool),
        edges=edges,
        edge_table=edge_table,
    )


def resolve_seeds(graph: CaseGraph, seeds: Sequence[Seed]) -> tuple[I64, I64, list[str]]:
    """Node numbers and times of the seeds found in the graph, and messages for the others."""
    nodes: list[int] = []
    times: list[int] = []
    missing: list[str] = []
    for seed in seeds:
        idx = graph.index(seed.ref)
        if idx is None:
            missing.append(f"seed {seed.ref} is not in the case graph")
            continue
        nodes.append(idx)
        times.append(to_us(seed.time, ALWAYS))
    return np.array(nodes, np.int64), np.array(times, np.int64), missing


def seeds_from_findings(case: Case) -> list[Seed]:
    """Seeds from what scan and hunt recorded.

    - ``ioc.hash`` (and other hash) findings whose evidence has a ``sha256``: that artifact,
      bad since always (its own taint has no start; hosts get it from their install time);
    - ``release.*`` findings (``verify``) of high or critical severity: the candidate file
      they name (its ``sha256``), likewise;
    - graph nodes flagged by ``graph add --from-findings``;
    - hunt sightings: every ``observed_on`` edge seeds its host at the sighting time, and
      hunt findings with a host and a time seed that host.
    """
    seeds: dict[tuple[NodeRef, str], Seed] = {}

    def add(seed: Seed) -> None:
        key = (seed.ref, seed.why)
        old = seeds.get(key)
        if old is None or (old.time is not None and (seed.time is None or seed.time < old.time)):
            seeds[key] = seed

    for finding in case.findings():
        sha = finding.evidence.get("sha256") if isinstance(finding.evidence, dict) else None
        if (finding.kind.startswith("ioc.hash") and isinstance(sha, str) and sha) or (
            finding.source == "release"
            and finding.severity.at_least(Severity.HIGH)
            and isinstance(sha, str)
            and len(sha) == 64
        ):
            add(Seed(NodeRef(NodeKind.ARTIFACT, sha.lower()), None, f"finding {finding.kind}"))
        elif finding.source == "hunt" and finding.host and finding.time:
            add(Seed(NodeRef(NodeKind.HOST, finding.host.lower()), finding.time, "hunt sighting"))
    rows = case.con.execute(
        "SELECT kind, key FROM nodes WHERE try_cast(json_extract(attrs, '$.flagged') AS BOOLEAN)"
    ).fetchall()
    for kind, key in rows:
        if kind in {k.value for k in NodeKind}:
            add(Seed(NodeRef(NodeKind(kind), key), None, "flagged node"))
    rows = case.con.execute(
        "SELECT dst_kind, dst_key, min(valid_from) FROM edges WHERE kind = 'observed_on'"
        " GROUP BY dst_kind, dst_key"
    ).fetchall()
    for kind, key, when in rows:
        if kind in {k.value for k in NodeKind}:
            add(Seed(NodeRef(NodeKind(kind), key), utc(when) if when else None, "sighting"))
    return sorted(seeds.values(), key=lambda s: (str(s.ref), s.why))


# -- results -----------------------------------------------------------------------------------


def _ts(values: I64) -> pa.Array:
    mask = (values == ALWAYS) | (values == NEVER)
    return pa.array(np.where(mask, 0, values), type=pa.timestamp("us"), mask=mask)


def reached_table(graph: CaseGraph, result: Propagation) -> pa.Table:
    """One row per reached node, with the explaining fact (columnar, any size)."""
    reached = result.reached
    parent_arc = result.parent[reached]
    has_parent = parent_arc >= 0
    safe_arc = np.where(has_parent, parent_arc, 0)
    arcs = result.arcs
    if len(arcs):
        parent_node = np.where(has_parent, arcs.frm[safe_arc], -1)
        edge_no = np.where(has_parent, arcs.edge[safe_arc], -1)
        rule_names = np.array([r.name for r in result.rules] or [""], dtype=object)
        names = rule_names[arcs.rule[safe_arc]]
        rule_col = pa.array(names, type=pa.string(), mask=~has_parent)
    else:
        parent_node = np.full(reached.shape, -1)
        edge_no = np.full(reached.shape, -1)
        rule_col = pa.nulls(len(reached), pa.string())
    mask_p = pa.array(~has_parent)
    pn = pa.array(np.where(has_parent, parent_node, 0))
    en = pa.array(np.where(has_parent, edge_no, 0))
    cols: dict[str, Any] = {
        "kind": graph.kinds.take(pa.array(reached)),
        "key": graph.keys.take(pa.array(reached)),
        "time": _ts(result.arrival[reached]),
        "confidence": pa.array(result.confidence[reached], pa.float64()),
        "hops": pa.array(result.hops[reached], pa.int32()),
        "is_root": pa.array(~has_parent),
        "parent_kind": pc.if_else(mask_p, None, graph.kinds.take(pn)),
        "parent_key": pc.if_else(mask_p, None, graph.keys.take(pn)),
        "rule": rule_col,
    }
    et = graph.edge_table
    for name in EDGE_COLUMNS:
        col = et.column(name).combine_chunks()
        if len(col):
            cols[f"edge_{name}"] = pc.if_else(mask_p, None, col.take(en))
        else:
            cols[f"edge_{name}"] = pa.nulls(len(reached), col.type)
    return pa.table(cols)


def save_run(
    case: Case,
    graph: CaseGraph,
    result: Propagation,
    seeds: Iterable[Seed],
    engine: str,
    summary: dict[str, Any] | None = None,
) -> str:
    return store_reached(case, reached_table(graph, result), seeds, result.rules, engine, summary)


def store_reached(
    case: Case,
    rows: pa.Table,
    seeds: Iterable[Seed],
    rules: Sequence[Rule],
    engine: str,
    summary: dict[str, Any] | None = None,
) -> str:
    """Record one cascade run and its reached nodes (``rows`` in :func:`reached_table`'s
    columns, naive UTC times) in one transaction; every engine stores through here."""
    run_id = uuid.uuid4().hex[:16]
    seed_rows = [
        {"node": str(s.ref), "time": s.time and utc(s.time).isoformat(), "why": s.why}
        for s in seeds
    ]
    with case.transaction() as con:
        con.execute(
            "INSERT INTO cascade_runs VALUES (?, ?, ?, ?::JSON, ?::JSON, ?, ?::JSON)",
            [
                run_id,
                case.now_naive(),
                engine,
                orjson.dumps(seed_rows).decode(),
                orjson.dumps(rules_as_rows(tuple(rules))).decode(),
                int(rows.num_rows),
                orjson.dumps(summary or {}).decode(),
            ],
        )
        con.register("reached_rows", rows)
        try:
            con.execute(
                "INSERT INTO cascade_reached SELECT ?, kind, key, time, confidence, hops,"
                " is_root, parent_kind, parent_key, rule, edge_kind, edge_src_kind,"
                " edge_src_key, edge_dst_kind, edge_dst_key, edge_valid_from, edge_valid_until,"
                " edge_recorded_at, edge_source FROM reached_rows",
                [run_id],
            )
        finally:
            con.unregister("reached_rows")
    return run_id


def record_notices(case: Case, run_id: str, folder: Path, files: Sequence[Path]) -> None:
    """Note in the run's summary which notice files were written (the report lists them)."""
    patch = {"notices": {"folder": str(folder), "files": [str(p) for p in files]}}
    with case.transaction() as con:
        con.execute(
            "UPDATE cascade_runs SET summary = json_merge_patch(coalesce(summary, '{}'), ?::JSON)"
            " WHERE run_id = ?",
            [orjson.dumps(patch).decode(), run_id],
        )


def latest_run(case: Case) -> str | None:
    row = case.con.execute(
        "SELECT run_id FROM cascade_runs ORDER BY started DESC LIMIT 1"
    ).fetchone()
    return str(row[0]) if row else None


@dataclass(frozen=True, slots=True)
class Reached:
    ref: NodeRef
    time: datetime | None
    confidence: float
    hops: int
    is_root: bool


@dataclass(frozen=True, slots=True)
class Fact:
    """One step of an explaining path: ``frm`` passed compromise to ``to`` over this edge."""

    rule: str
    edge_kind: str
    edge_src: NodeRef
    edge_dst: NodeRef
    valid_from: datetime | None
    valid_until: datetime | None
    recorded_at: datetime | None
    source: str
    frm: NodeRef
    to: NodeRef
    to_time: datetime | None
    confidence: float


def reached_nodes(case: Case, run_id: str, limit: int | None = None) -> list[Reached]:
    sql = (
        "SELECT kind, key, time, confidence, hops, is_root FROM cascade_reached"
        " WHERE run_id = ? ORDER BY time NULLS FIRST, hops, kind, key"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [
        Reached(NodeRef(NodeKind(r[0]), r[1]), aware_utc(r[2]), float(r[3]), int(r[4]), bool(r[5]))
        for r in case.con.execute(sql, [run_id]).fetchall()
    ]


def explain_path(case: Case, run_id: str, ref: NodeRef) -> list[Fact] | None:
    """The chain of facts from a root to ``ref`` (``None`` if the run did not reach it)."""
    facts: list[Fact] = []
    current: NodeRef | None = ref
    seen: set[NodeRef] = set()
    first = True
    while current is not None and current not in seen:
        seen.add(current)
        row = case.con.execute(
            "SELECT time, confidence, parent_kind, parent_key, rule, edge_kind, edge_src_kind,"
            " edge_src_key, edge_dst_kind, edge_dst_key, edge_valid_from, edge_valid_until,"
            " edge_recorded_at, edge_source FROM cascade_reached"
            " WHERE run_id = ? AND kind = ? AND (key = ? OR key = lower(?))",
            [run_id, str(current.kind), current.key, current.key],
        ).fetchone()
        if row is None:
            return None if first else facts
        first = False
        if row[2] is None:
            break
        parent = NodeRef(NodeKind(row[2]), row[3])
        facts.append(
            Fact(
                rule=row[4],
                edge_kind=row[5],
                edge_src=NodeRef(NodeKind(row[6]), row[7]),
                edge_dst=NodeRef(NodeKind(row[8]), row[9]),
                valid_from=aware_utc(row[10]),
                valid_until=aware_utc(row[11]),
                recorded_at=aware_utc(row[12]),
                source=row[13],
                frm=parent,
                to=current,
                to_time=aware_utc(row[0]),
                confidence=float(row[1]),
            )
        )
        current = parent
    facts.reverse()
    return facts


def root_of(case: Case, run_id: str, ref: NodeRef) -> tuple[NodeRef, datetime | None] | None:
    path = explain_path(case, run_id, ref)
    if path is None:
        return None
    start = path[0].frm if path else ref
    row = case.con.execute(
        "SELECT time FROM cascade_reached WHERE run_id = ? AND kind = ? AND key = ?",
        [run_id, str(start.kind), start.key],
    ).fetchone()
    return start, aware_utc(row[0]) if row else None


def report_rows(
    case: Case, limit: int = 500, run_id: str | None = None
) -> list[tuple[str, str, str, list[str]]]:
    """The newest (or given) cascade run as report rows: node, earliest time, confidence and
    the explaining path, one readable step per fact (for the HTML report)."""
    run = run_id or latest_run(case)
    if run is None:
        return []
    rows: list[tuple[str, str, str, list[str]]] = []
    for node in reached_nodes(case, run, limit=limit):
        steps = [
            f"{f.frm} --{f.edge_kind}--> {f.to}"
            + (f" from {f.to_time.isoformat()}" if f.to_time else "")
            + (f" [{f.source}]" if f.source else "")
            for f in explain_path(case, run, node.ref) or []
        ]
        when = node.time.isoformat() if node.time else "seed (any time)"
        rows.append((str(node.ref), when, f"{node.confidence:.2f}", steps))
    return rows
