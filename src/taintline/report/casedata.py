"""What a person's report shows, gathered from the case (or from a list of findings alone).

The HTML and Markdown reports render a :class:`ReportData`: the four answers (are we
affected, where, since when, what did we pass downstream), the cascade picture's nodes, the
hosts' indicator contacts, the inputs, the indicators used and the worst findings. Everything is
read with SQL aggregates, so a case with millions of reached nodes gives a bounded report: at
most :data:`MAX_DRAWN` nodes are drawn (the explaining paths of the earliest nodes of each
kind), the rest is counted per lane and time bucket, and each such cut is written down in
:attr:`ReportData.aggregated` so the page says what it left out.

Long file: one report document whose sections share the bounded SQL aggregates and the
:class:`ReportData` they fill; splitting it per section (answers, picture, contacts) is a
follow-up, listed in the architecture issue's closing note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import orjson

from taintline import __version__
from taintline.case import FINDING_COLUMNS, Case, aware_utc, finding_from_row
from taintline.errors import UsageError
from taintline.model import Finding, FindingSource, Severity, iso

#: Most cascade nodes drawn in the picture; more are aggregated.
MAX_DRAWN = 400
#: Most nodes drawn when not every node is (whole explaining paths only).
AGGREGATED_DRAWN = 200
#: Most nodes read while closing the drawn nodes under their parents.
MAX_CLOSURE = 5000
#: Earliest nodes of each kind, and nodes spread over time per kind, whose explaining paths
#: are drawn when aggregating.
PER_KIND = 6
#: Most findings listed (all are counted).
MAX_FINDINGS = 500
#: Most (host, indicator) contact rows drawn and listed.
MAX_CONTACTS = 60
#: Most rows in the other lists (recipients, inputs, indicator sources).
MAX_ROWS = 50

STRONG = (Severity.HIGH, Severity.CRITICAL)
_SEV_RANK_SQL = (
    "CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2"
    " WHEN 'low' THEN 1 ELSE 0 END"
)


def _short(ref: str, width: int = 40) -> str:
    """A label for a node or subject: long hashes and names cut, the full text kept elsewhere."""
    kind, sep, key = ref.partition(":")
    if sep and kind == "artifact" and len(key) > 16:
        return f"artifact:{key[:12]}…"
    return ref if len(ref) <= width else ref[: width - 1] + "…"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One line of evidence under an answer; ``href`` is an anchor in the page (or empty)."""

    text: str
    href: str = ""
    node: int | None = None  # a cascade node to select in the picture


@dataclass(frozen=True, slots=True)
class Answer:
    key: str  # affected, where, since, downstream
    question: str
    verdict: str  # yes/no/unknown, a count, a time
    sentence: str
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True, slots=True)
class PicFact:
    """The fact (edge) that explains a node's compromise."""

    edge_kind: str
    src: str
    dst: str
    valid_from: datetime | None
    valid_until: datetime | None
    recorded_at: datetime | None
    source: str
    rule: str


@dataclass(frozen=True, slots=True)
class PicNode:
    index: int
    kind: str
    key: str
    time: datetime | None
    confidence: float
    hops: int
    is_root: bool
    parent: int | None  # index of the drawn parent node
    parent_ref: str | None  # the parent as KIND:KEY (even if not drawn)
    fact: PicFact | None

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.key}"


@dataclass(frozen=True, slots=True)
class Bucket:
    kind: str
    start: datetime
    end: datetime
    count: int


@dataclass(frozen=True, slots=True)
class CascadeView:
    run_id: str
    started: datetime | None
    seeds: tuple[str, ...]
    total: int
    by_kind: tuple[tuple[str, int], ...]
    nodes: tuple[PicNode, ...]
    #: Per lane and time bucket counts (filled when not every node is drawn).
    buckets: tuple[Bucket, ...] = ()
    bucket_unit: str = ""
    #: Most common explaining steps: (parent kind, edge kind, kind, count).
    top_steps: tuple[tuple[str, str, str, int], ...] = ()
    #: Most common sources of explaining facts: (source file, count).
    top_sources: tuple[tuple[str, int], ...] = ()

    @property
    def complete(self) -> bool:
        return len(self.nodes) == self.total

    @property
    def edge_count(self) -> int:
        return sum(1 for n in self.nodes if n.parent is not None)


@dataclass(frozen=True, slots=True)
class Contact:
    host: str
    indicator: str
    first: datetime | None
    last: datetime | None
    count: int
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Recipient:
    ref: str
    first: datetime | None
    items: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InputFile:
    stage: str  # scan, hunt, graph, intel
    path: str
    sha256: str  # "" when the case does not record one
    note: str = ""


@dataclass(slots=True)
class ReportData:
    title: str
    generated: datetime
    case_path: str = ""
    version: str = __version__
    answers: list[Answer] = field(default_factory=list)
    cascade: CascadeView | None = None
    contacts: list[Contact] = field(default_factory=list)
    contacts_total: int = 0
    recipients: list[Recipient] = field(default_factory=list)
    recipients_total: int = 0
    notices: list[str] = field(default_factory=list)
    notices_folder: str = ""
    inputs: list[InputFile] = field(default_factory=list)
    inputs_total: int = 0
    indicator_total: int = 0
    indicator_types: list[tuple[str, int]] = field(default_factory=list)
    indicator_sources: list[tuple[str, int]] = field(default_factory=list)
    #: Indicators that findings matched, with the sources that state them.
    matched_indicators: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    findings_total: int = 0
    severity_counts: list[tuple[str, int]] = field(default_factory=list)
    kind_counts: list[tuple[str, int]] = field(default_factory=list)
    #: Plain sentences saying what was aggregated or left out (shown on the page).
    aggregated: list[str] = field(default_factory=list)

    def answer(self, key: str) -> Answer:
        return next(a for a in self.answers if a.key == key)

    def node_index(self, ref: str) -> int | None:
        if self.cascade is None:
            return None
        for node in self.cascade.nodes:
            if node.ref == ref:
                return node.index
        return None


# -- findings ----------------------------------------------------------------------------------


def _finding_filter(
    kind_prefix: str | None, min_severity: Severity | None
) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if kind_prefix:
        where.append("starts_with(kind, ?)")
        params.append(kind_prefix)
    if min_severity is not None:
        where.append(f"{_SEV_RANK_SQL} >= ?")
        params.append(min_severity.rank)
    return (" WHERE " + " AND ".join(where)) if where else "", params


def _load_findings(
    con: duckdb.DuckDBPyConnection,
    data: ReportData,
    kind_prefix: str | None,
    min_severity: Severity | None,
) -> None:
    where, params = _finding_filter(kind_prefix, min_severity)
    rows = con.execute(
        f"SELECT {FINDING_COLUMNS} FROM findings{where}"  # noqa: S608
        f" ORDER BY {_SEV_RANK_SQL} DESC, kind, subject, host"
        f" LIMIT {MAX_FINDINGS}",
        params,
    ).fetchall()
    data.findings = [finding_from_row(r) for r in rows]
    data.severity_counts = [
        (str(r[0]), int(r[1]))
        for r in con.execute(
            f"SELECT severity, count(*) FROM findings{where} GROUP BY severity"  # noqa: S608
            f" ORDER BY max({_SEV_RANK_SQL}) DESC",
            params,
        ).fetchall()
    ]
    data.findings_total = sum(n for _, n in data.severity_counts)
    data.kind_counts = [
        (str(r[0]), int(r[1]))
        for r in con.execute(
            f"SELECT kind, count(*) AS n FROM findings{where} GROUP BY kind"  # noqa: S608
            " ORDER BY n DESC, kind LIMIT 20",
            params,
        ).fetchall()
    ]
    if data.findings_total > len(data.findings):
        data.aggregated.append(
            f"Findings: the {len(data.findings):,} most severe of {data.findings_total:,} are"
            " listed; all are counted by severity and kind (`taintline report --format jsonl`"
            " writes every one)."
        )


# -- cascade -----------------------------------------------------------------------------------

_NODE_COLS = (
    "kind, key, time, confidence, hops, is_root, parent_kind, parent_key, rule, edge_kind,"
    " edge_src_kind, edge_src_key, edge_dst_kind, edge_dst_key, edge_valid_from,"
    " edge_valid_until, edge_recorded_at, edge_source"
)


def _bucket_unit(lo: datetime, hi: datetime) -> str:
    span = hi - lo
    if span > timedelta(days=3 * 365):
        return "year"
    if span > timedelta(days=120):
        return "month"
    if span > timedelta(days=21):
        return "week"
    if span > timedelta(days=2):
        return "day"
    return "hour"


def _bucket_end(start: datetime, unit: str) -> datetime:
    if unit == "year":
        return start.replace(year=start.year + 1)
    if unit == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start + {"week": timedelta(days=7), "day": timedelta(days=1)}.get(
        unit, timedelta(hours=1)
    )


def _pick_rows(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    total: int,
    kinds: Sequence[str],
    spread: Sequence[int] = (),
) -> list[tuple[Any, ...]]:
    """Every reached node if few; else the earliest of each kind, the given ``spread`` rows
    (the first node of each kind in time buckets across the run) and their explaining paths."""
    if total <= MAX_DRAWN:
        return con.execute(
            f"SELECT {_NODE_COLS} FROM cascade_reached WHERE run_id = ?"  # noqa: S608
            " ORDER BY time NULLS FIRST, hops, kind, key",
            [run_id],
        ).fetchall()
    # Row ids only until the end: carrying every column through a sort or join of millions
    # of rows is what costs.
    tops = [
        "(SELECT rowid AS id FROM cascade_reached WHERE run_id = ? AND kind = ?"  # noqa: S608
        f" ORDER BY time NULLS FIRST, hops, key LIMIT {PER_KIND})"
        for _ in kinds
    ]
    tops.append(
        "(SELECT rowid AS id FROM cascade_reached WHERE run_id = ? AND is_root"  # noqa: S608
        f" ORDER BY time NULLS FIRST, key LIMIT {PER_KIND * 2})"
    )
    params: list[Any] = [p for k in kinds for p in (run_id, k)] + [run_id]
    start = con.execute(" UNION ALL ".join(tops), params).fetchnumpy()["id"]
    # Close under parents, one hop level at a time, on the narrow key columns only (a path is
    # a handful of facts; each level is one scan of the keys with a tiny hash table).
    starts = [int(i) for i in start] + [int(i) for i in spread]
    frontier = list(dict.fromkeys(starts))
    known: dict[int, tuple[str, str, str | None, str | None]] = {}
    by_ref: dict[tuple[str, str], int] = {}
    while frontier and len(known) < MAX_CLOSURE:
        ids = ",".join(str(i) for i in sorted(set(frontier) - known.keys()))
        if not ids:
            break
        rows = con.execute(
            "SELECT rowid, kind, key, parent_kind, parent_key FROM cascade_reached"  # noqa: S608
            f" WHERE run_id = ? AND rowid IN ({ids})",
            [run_id],
        ).fetchall()
        wanted: list[tuple[str, str]] = []
        for rowid, kind, key, pkind, pkey in rows:
            known[int(rowid)] = (kind, key, pkind, pkey)
            by_ref[(kind, key)] = int(rowid)
        for _kind, _key, pkind, pkey in (known[int(r[0])] for r in rows):
            if pkind is not None and (pkind, str(pkey)) not in by_ref:
                wanted.append((pkind, str(pkey)))
        if not wanted:
            break
        found = con.execute(
            "SELECT r.rowid FROM cascade_reached r SEMI JOIN"
            " (SELECT unnest(?) AS k, unnest(?) AS v) w ON r.kind = w.k AND r.key = w.v"
            " WHERE r.run_id = ?",
            [[k for k, _ in wanted], [v for _, v in wanted], run_id],
        ).fetchnumpy()["rowid"]
        frontier = [int(i) for i in found]
    # Whole paths only: a start node is drawn with its entire explaining path, in priority
    # order (earliest of each kind first), while the budget lasts.
    picked: set[int] = set()
    for node in starts:
        path: list[int] = []
        current: int | None = node
        while current is not None and current in known and current not in picked:
            path.append(current)
            _, _, pkind, pkey = known[current]
            current = by_ref.get((pkind, str(pkey))) if pkind is not None else None
        if current is not None and current not in picked:
            continue  # the path leaves what was read (closure cap): not drawn
        if len(picked) + len(path) > AGGREGATED_DRAWN:
            continue
        picked.update(path)
    ids = ",".join(str(i) for i in sorted(picked)) or "-1"
    rows = con.execute(
        f"SELECT {_NODE_COLS} FROM cascade_reached"  # noqa: S608
        f" WHERE run_id = ? AND rowid IN ({ids})",
        [run_id],
    ).fetchall()
    rows.sort(key=lambda r: (r[2] is not None, r[2] or datetime.min, r[4], r[0], r[1]))
    return rows


def _pic_nodes(rows: Sequence[tuple[Any, ...]]) -> tuple[PicNode, ...]:
    index: dict[tuple[str, str], int] = {}
    for i, r in enumerate(rows):
        index[(r[0], r[1])] = i
        index.setdefault((r[0], str(r[1]).lower()), i)
    out: list[PicNode] = []
    for i, r in enumerate(rows):
        parent = None
        parent_ref = None
        fact = None
        if r[6] is not None:
            parent_ref = f"{r[6]}:{r[7]}"
            parent = index.get((r[6], r[7]), index.get((r[6], str(r[7]).lower())))
            fact = PicFact(
                edge_kind=str(r[9] or ""),
                src=f"{r[10]}:{r[11]}",
                dst=f"{r[12]}:{r[13]}",
                valid_from=aware_utc(r[14]),
                valid_until=aware_utc(r[15]),
                recorded_at=aware_utc(r[16]),
                source=str(r[17] or ""),
                rule=str(r[8] or ""),
            )
        out.append(
            PicNode(
                index=i,
                kind=str(r[0]),
                key=str(r[1]),
                time=aware_utc(r[2]),
                confidence=float(r[3]),
                hops=int(r[4]),
                is_root=bool(r[5]),
                parent=parent,
                parent_ref=parent_ref,
                fact=fact,
            )
        )
    return tuple(out)


def _cascade_view(con: duckdb.DuckDBPyConnection, run_id: str, data: ReportData) -> CascadeView:
    meta = con.execute(
        "SELECT started, seeds FROM cascade_runs WHERE run_id = ?", [run_id]
    ).fetchone()
    seeds: tuple[str, ...] = ()
    if meta and meta[1]:
        seeds = tuple(
            f"{s.get('node')} @ {s.get('time') or 'any time'} ({s.get('why')})"
            for s in orjson.loads(meta[1])
            if isinstance(s, dict)
        )
    by_kind = [
        (str(r[0]), int(r[1]))
        for r in con.execute(
            "SELECT kind, count(*) AS n FROM cascade_reached WHERE run_id = ?"
            " GROUP BY kind ORDER BY n DESC, kind",
            [run_id],
        ).fetchall()
    ]
    total = sum(n for _, n in by_kind)
    kinds = [k for k, _ in by_kind]
    if total <= MAX_DRAWN:
        return CascadeView(
            run_id=run_id,
            started=aware_utc(meta[0]) if meta else None,
            seeds=seeds,
            total=total,
            by_kind=tuple(by_kind),
            nodes=_pic_nodes(_pick_rows(con, run_id, total, kinds)),
        )
    lo_hi = con.execute(
        "SELECT min(time), max(time) FROM cascade_reached WHERE run_id = ?", [run_id]
    ).fetchone()
    unit = "month"
    buckets: list[Bucket] = []
    firsts: dict[str, list[int]] = {}
    if lo_hi and lo_hi[0] is not None:
        unit = _bucket_unit(lo_hi[0], lo_hi[1])
        for kind, start, n, first in con.execute(
            # per bucket the node with the shortest explaining path (then the earliest): few
            # hop levels to close, and the paths a reader can follow
            f"SELECT kind, date_trunc('{unit}', time) AS b, count(*),"  # noqa: S608
            " arg_min(rowid, hops::BIGINT * 10000000000000000 + epoch_us(time))"
            " FROM cascade_reached WHERE run_id = ? AND time IS NOT NULL"
            " GROUP BY kind, b ORDER BY kind, b",
            [run_id],
        ).fetchall():
            begin = aware_utc(
                datetime.combine(start, datetime.min.time())
                if not isinstance(start, datetime)
                else start
            )
            assert begin is not None
            buckets.append(Bucket(str(kind), begin, _bucket_end(begin, unit), int(n)))
            firsts.setdefault(str(kind), []).append(int(first))
    # Spread the drawn nodes over time: one node of evenly spaced buckets of each kind.
    spread: list[int] = []
    for ids in firsts.values():
        step = max(1, len(ids) // PER_KIND)
        spread.extend(ids[::step][:PER_KIND])
    nodes = _pic_nodes(_pick_rows(con, run_id, total, kinds, spread))
    steps = tuple(
        (str(r[0]), str(r[1]), str(r[2]), int(r[3]))
        for r in con.execute(
            "SELECT parent_kind, edge_kind, kind, count(*) AS n FROM cascade_reached"
            " WHERE run_id = ? AND parent_kind IS NOT NULL GROUP BY ALL ORDER BY n DESC LIMIT 10",
            [run_id],
        ).fetchall()
    )
    sources = tuple(
        (str(r[0]), int(r[1]))
        for r in con.execute(
            "SELECT regexp_replace(edge_source, ':[0-9]+$', '') AS s, count(*) AS n"
            " FROM cascade_reached WHERE run_id = ? AND edge_source IS NOT NULL"
            " GROUP BY s ORDER BY n DESC, s LIMIT 10",
            [run_id],
        ).fetchall()
    )
    data.aggregated.append(
        f"Cascade picture: {len(nodes):,} of {total:,} reached nodes are drawn (the"
        f" {PER_KIND} earliest of each kind, the one with the shortest explaining path of each"
        f" kind in up to {PER_KIND} {unit}s across the run, and the facts that explain them);"
        " every node is"
        f" counted per kind and per {unit} in its lane, and the most common explaining steps"
        " and sources are listed below the picture."
    )
    return CascadeView(
        run_id=run_id,
        started=aware_utc(meta[0]) if meta else None,
        seeds=seeds,
        total=total,
        by_kind=tuple(by_kind),
        nodes=nodes,
        buckets=tuple(buckets),
        bucket_unit=unit,
        top_steps=steps,
        top_sources=sources,
    )


def _recipients(con: duckdb.DuckDBPyConnection, run_id: str, data: ReportData) -> None:
    """Every recipient of an item that was already tainted when it was delivered (the same
    rule as :func:`taintline.graph.downstream.downstream`, as one SQL join)."""
    rows = con.execute(
        """
        WITH hit AS (
            SELECT e.dst_kind || ':' || lower(e.dst_key) AS who, e.valid_from AS delivered,
                   e.src_kind || ':' || r.key AS item, e.source
            FROM edges e
            JOIN cascade_reached r ON r.run_id = ? AND r.kind = e.src_kind
             AND r.kind IN ('release', 'artifact', 'software')
             AND r.key = CASE WHEN e.src_kind = 'build' THEN e.src_key ELSE lower(e.src_key) END
            WHERE e.kind = 'distributed_to'
              AND (r.time IS NULL OR (e.valid_from IS NOT NULL AND r.time <= e.valid_from))
        ), per AS (
            SELECT who, min(delivered) AS first_at FROM hit GROUP BY who
        ), top AS (
            SELECT who, first_at FROM per ORDER BY first_at NULLS FIRST, who LIMIT ?
        )
        -- items and sources only for the recipients listed: list aggregates per group are
        -- what costs with a million recipients
        SELECT top.who, top.first_at, list(DISTINCT hit.item ORDER BY hit.item)[1:10],
               list(DISTINCT hit.source ORDER BY hit.source)[1:10],
               (SELECT count(*) FROM per)
        FROM top JOIN hit USING (who) GROUP BY top.who, top.first_at
        ORDER BY top.first_at NULLS FIRST, top.who
        """,
        [run_id, MAX_ROWS],
    ).fetchall()
    data.recipients = [
        Recipient(str(r[0]), aware_utc(r[1]), tuple(r[2] or ()), tuple(r[3] or ())) for r in rows
    ]
    data.recipients_total = int(rows[0][4]) if rows else 0
    if data.recipients_total > len(rows):
        data.aggregated.append(
            f"Recipients: the {len(rows)} earliest of {data.recipients_total:,} are listed."
        )
    summary = con.execute("SELECT summary FROM cascade_runs WHERE run_id = ?", [run_id]).fetchone()
    info = orjson.loads(summary[0]) if summary and summary[0] else {}
    notices = info.get("notices") if isinstance(info, dict) else None
    if isinstance(notices, dict):
        data.notices_folder = str(notices.get("folder") or "")
        data.notices = [str(p) for p in notices.get("files") or []]


# -- contacts, inputs, indicators -----------------------------------------------------------


def _contacts(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    rows = con.execute(
        """
        WITH per AS (
            SELECT host, indicator_type || ':' || indicator_value AS ind,
                   min(first_seen) AS first_at, max(last_seen) AS last_at, sum(count) AS n,
                   list_sort(list_distinct(flatten(list(sources))))[1:5] AS src
            FROM hunt_sightings GROUP BY host, ind
        ), hosts AS (
            SELECT host, min(first_at) AS h_first FROM per GROUP BY host
        )
        SELECT per.*, count(*) OVER () FROM per JOIN hosts USING (host)
        ORDER BY h_first NULLS LAST, host, first_at NULLS LAST, ind LIMIT ?
        """,
        [MAX_CONTACTS],
    ).fetchall()
    data.contacts = [
        Contact(
            str(r[0]), str(r[1]), aware_utc(r[2]), aware_utc(r[3]), int(r[4]), tuple(r[5] or ())
        )
        for r in rows
    ]
    data.contacts_total = int(rows[0][6]) if rows else 0
    if data.contacts_total > len(rows):
        data.aggregated.append(
            f"Indicator contacts: the {len(rows)} earliest (host, indicator) pairs of"
            f" {data.contacts_total:,} are drawn and listed."
        )


def _inputs(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    rows = con.execute(
        """
        SELECT stage, path, sha256, note, count(*) OVER () FROM (
            SELECT 'scan' AS stage, path, any_value(sha256) AS sha256,
                   coalesce(any_value(filetype), '') AS note, min(recorded) AS t
            FROM file_facts_all WHERE depth = 0 GROUP BY path
            UNION ALL
            SELECT 'hunt', path, '', format || ', ' || lines || ' lines', min(recorded_at)
            FROM hunt_files GROUP BY path, format, lines
            UNION ALL
            SELECT 'graph', regexp_replace(source, ':[0-9]+$', ''), '',
                   count(*) || ' facts', min(recorded_at)
            FROM edges GROUP BY 2
            UNION ALL
            SELECT 'intel', origin, sha256, 'YARA: ' || len(rules) || ' rules', added_at
            FROM yara_sources
        ) ORDER BY stage, t, path LIMIT ?
        """,
        [MAX_ROWS * 2],
    ).fetchall()
    data.inputs = [InputFile(str(r[0]), str(r[1]), str(r[2] or ""), str(r[3] or "")) for r in rows]
    data.inputs_total = int(rows[0][4]) if rows else 0
    if data.inputs_total > len(rows):
        data.aggregated.append(f"Inputs: {len(rows)} of {data.inputs_total:,} are listed.")


def _indicators(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    data.indicator_types = [
        (str(r[0]), int(r[1]))
        for r in con.execute(
            "SELECT type, count(*) AS n FROM indicators GROUP BY type ORDER BY n DESC, type"
        ).fetchall()
    ]
    data.indicator_total = sum(n for _, n in data.indicator_types)
    data.indicator_sources = [
        (str(r[0]), int(r[1]))
        for r in con.execute(
            "SELECT source, count(DISTINCT (type, value)) AS n FROM indicator_sources"
            " GROUP BY source ORDER BY n DESC, source LIMIT ?",
            [MAX_ROWS],
        ).fetchall()
    ]
    data.matched_indicators = [
        (str(r[0]), tuple(r[1] or ()))
        for r in con.execute(
            """
            WITH used AS (SELECT DISTINCT unnest(indicators) AS k FROM findings)
            SELECT used.k, i.sources FROM used
            LEFT JOIN indicators i ON i.type || ':' || i.value = used.k
            ORDER BY used.k LIMIT ?
            """,
            [MAX_ROWS],
        ).fetchall()
    ]


# -- the four answers --------------------------------------------------------------------------


def _strong(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity in STRONG and not f.kind.startswith("error.")]


def _anchor(f: Finding) -> str:
    return f"#f-{f.fingerprint}"


def _answers(data: ReportData, examined: int, errors: int, strong_total: int) -> None:
    strong = _strong(data.findings)
    view = data.cascade
    reached = [n for n in view.nodes if not n.is_root] if view else []
    reached_total = (view.total - sum(1 for n in view.nodes if n.is_root)) if view else 0

    # are we affected?
    ev: list[Evidence] = [
        Evidence(f"{f.severity} {f.kind}: {_short(f.subject, 80)}", _anchor(f)) for f in strong[:5]
    ]
    if view and reached:
        first = min(reached, key=lambda n: (n.time is None, n.time or datetime.min))
        ev.append(
            Evidence(
                f"cascade run {view.run_id}: {reached_total:,} node(s) reached from"
                f" {len(view.seeds)} seed(s)",
                f"#n-{first.index}",
                first.index,
            )
        )
    if strong_total or reached_total:
        parts = []
        if strong_total:
            parts.append(f"{strong_total:,} high or critical finding(s)")
        if reached_total:
            parts.append(f"the cascade reached {reached_total:,} node(s)")
        affected = Answer(
            "affected", "Are we affected?", "yes", "Yes: " + " and ".join(parts) + ".", tuple(ev)
        )
    elif errors or not examined:
        why = (
            f"{errors:,} item(s) could not be read (error.* findings)"
            if errors
            else "nothing was scanned, hunted or traced in this case"
        )
        affected = Answer(
            "affected",
            "Are we affected?",
            "unknown",
            f"Unknown: {why}, and nothing else was found.",
            tuple(
                Evidence(f"{f.kind}: {_short(f.subject, 80)}", _anchor(f))
                for f in data.findings
                if f.kind.startswith("error.")
            )[:5],
        )
    else:
        looked = f"{examined:,} input(s) examined, " if examined > 0 else ""
        affected = Answer(
            "affected",
            "Are we affected?",
            "no",
            f"No: {looked}no finding at high or above and no cascade reached anything.",
        )

    # where?
    hosts: dict[str, Evidence] = {}
    for f in strong:
        if f.host:
            hosts.setdefault(f.host.lower(), Evidence(f"host:{f.host} ({f.kind})", _anchor(f)))
    groups: dict[str, list[Evidence]] = {"host": [], "build": [], "release": [], "org": []}
    for n in reached:
        if n.kind == "host":
            hosts[n.key.lower()] = Evidence(
                f"host:{n.key} (cascade, from {iso(n.time) or 'any time'})",
                f"#n-{n.index}",
                n.index,
            )
        elif n.kind in groups:
            groups[n.kind].append(
                Evidence(f"{n.ref} (from {iso(n.time) or 'any time'})", f"#n-{n.index}", n.index)
            )
    counts = dict(view.by_kind) if view else {}
    n_hosts = max(len(hosts), counts.get("host", 0))
    n_builds = counts.get("build", 0)
    n_releases = counts.get("release", 0)
    where_parts = [f"{n_hosts:,} host(s)", f"{n_builds:,} build(s)", f"{n_releases:,} release(s)"]
    if counts.get("org"):
        where_parts.append(f"{counts['org']:,} organisation(s)")
    where = Answer(
        "where",
        "Where?",
        f"{n_hosts:,} host(s)",
        ("In " + ", ".join(where_parts) + ".")
        if n_hosts or n_builds or n_releases
        else "Nowhere that the case knows of.",
        (*list(hosts.values())[:8], *groups["build"][:5], *groups["release"][:5]),
    )

    # since when?
    since: Answer
    timed = [n for n in reached if n.time is not None and n.fact is not None]
    first_contact = min(
        (c for c in data.contacts if c.first is not None),
        key=lambda c: c.first or datetime.max.replace(tzinfo=UTC),
        default=None,
    )
    if timed:
        first = min(timed, key=lambda n: (n.time, n.hops))
        fact = first.fact
        assert fact is not None
        seed_ev = [
            Evidence(
                f"{n.ref}: seed, known bad from {iso(n.time) or 'any time'}",
                f"#n-{n.index}",
                n.index,
            )
            for n in (view.nodes if view else ())
            if n.is_root
        ][:3]
        since = Answer(
            "since",
            "Since when?",
            iso(first.time) or "",
            f"Since {iso(first.time)}: {_short(first.parent_ref or '')} --{fact.edge_kind}-->"
            f" {_short(first.ref)} ({fact.source or 'no source'}).",
            (
                Evidence(
                    f"the fact: {fact.source or fact.edge_kind}", f"#n-{first.index}", first.index
                ),
                *seed_ev,
            ),
        )
    elif first_contact is not None:
        since = Answer(
            "since",
            "Since when?",
            iso(first_contact.first) or "",
            f"Since {iso(first_contact.first)}: first contact of host {first_contact.host}"
            f" with {first_contact.indicator} (hunt sighting).",
            (Evidence(f"{first_contact.host} → {first_contact.indicator}", "#contacts"),),
        )
    else:
        timed_f = [f for f in strong if f.time is not None and f.source == FindingSource.HUNT]
        if timed_f:
            f0 = min(timed_f, key=lambda f: f.time or datetime.max.replace(tzinfo=UTC))
            since = Answer(
                "since",
                "Since when?",
                iso(f0.time) or "",
                f"Since {iso(f0.time)}: {f0.kind} on {f0.host or f0.subject}.",
                (Evidence(f"{f0.kind}: {_short(f0.subject, 80)}", _anchor(f0)),),
            )
        else:
            since = Answer(
                "since",
                "Since when?",
                "unknown",
                "Unknown: no cascade run and no dated sighting in the case.",
            )

    # what did we pass downstream?
    if view is None:
        down = Answer(
            "downstream",
            "What did we pass downstream?",
            "unknown",
            "Unknown: no cascade run in this case (taintline cascade --downstream).",
        )
    elif data.recipients_total:
        names = ", ".join(_short(r.ref) for r in data.recipients[:3])
        more = f" and {data.recipients_total - 3:,} more" if data.recipients_total > 3 else ""
        notices = (
            f"; {len(data.notices)} notice file(s) written to {data.notices_folder}"
            if data.notices
            else "; no notices written yet (taintline cascade --notices DIR)"
        )
        down = Answer(
            "downstream",
            "What did we pass downstream?",
            f"{data.recipients_total:,} recipient(s)",
            f"Tainted items went to {data.recipients_total:,} recipient(s): {names}{more}{notices}.",
            tuple(
                Evidence(
                    f"{r.ref} from {iso(r.first) or 'any time'}: {', '.join(_short(i) for i in r.items)}",
                    f"#n-{idx}" if (idx := data.node_index(r.ref)) is not None else "#recipients",
                    idx,
                )
                for r in data.recipients[:8]
            ),
        )
    else:
        down = Answer(
            "downstream",
            "What did we pass downstream?",
            "nothing",
            "Nothing: no tainted release or artifact was delivered after it was tainted.",
        )
    data.answers = [affected, where, since, down]


# -- entry points ------------------------------------------------------------------------------


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])


def latest_cascade_run(con: duckdb.DuckDBPyConnection) -> str | None:
    if not _table_exists(con, "cascade_runs"):
        return None
    row = con.execute("SELECT run_id FROM cascade_runs ORDER BY started DESC LIMIT 1").fetchone()
    return str(row[0]) if row else None


def from_case(
    case: Case,
    *,
    title: str = "taintline report",
    case_path: str = "",
    run_id: str | None = None,
    kind_prefix: str | None = None,
    min_severity: Severity | None = None,
    generated: datetime | None = None,
) -> ReportData:
    """Everything the report shows, read from ``case`` (the newest cascade run by default)."""
    con = case.cursor()
    if run_id is not None:
        found = con.execute(
            "SELECT count(*) FROM cascade_runs WHERE run_id = ?", [run_id]
        ).fetchone()
        if not found or not found[0]:
            raise UsageError(f"no cascade run {run_id!r} in this case")
    data = ReportData(title=title, generated=generated or case.now(), case_path=case_path)
    _load_findings(con, data, kind_prefix, min_severity)
    run = run_id or latest_cascade_run(con)
    if run is not None:
        data.cascade = _cascade_view(con, run, data)
        _recipients(con, run, data)
    if _table_exists(con, "hunt_sightings"):
        _contacts(con, data)
    if _table_exists(con, "file_facts") and _table_exists(con, "yara_sources"):
        _inputs(con, data)
    _indicators(con, data)
    strong_row = con.execute(
        "SELECT count(*) FROM findings WHERE severity IN ('high', 'critical')"
        " AND NOT starts_with(kind, 'error.')"
    ).fetchone()
    errors_row = con.execute(
        "SELECT count(*) FROM findings WHERE starts_with(kind, 'error.')"
    ).fetchone()
    runs_row = con.execute("SELECT count(*) FROM runs").fetchone()
    examined = max(data.inputs_total, int(runs_row[0]) if runs_row else 0)
    _answers(
        data,
        examined,
        int(errors_row[0]) if errors_row else 0,
        int(strong_row[0]) if strong_row else 0,
    )
    return data


def from_findings(
    findings: Sequence[Finding],
    *,
    title: str = "taintline findings",
    generated: datetime | None = None,
) -> ReportData:
    """A report of findings alone (``scan --format html``): no cascade, contacts from the
    findings' hosts and indicators."""
    data = ReportData(title=title, generated=generated or datetime.now(UTC))
    ordered = sorted(findings, key=lambda f: (-f.severity.rank, f.kind, f.subject, f.host or ""))
    data.findings = ordered[:MAX_FINDINGS]
    data.findings_total = len(findings)
    sev: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for f in findings:
        sev[str(f.severity)] = sev.get(str(f.severity), 0) + 1
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    data.severity_counts = [
        (str(s), sev[str(s)]) for s in reversed(list(Severity)) if str(s) in sev
    ]
    data.kind_counts = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    per: dict[tuple[str, str], Contact] = {}
    for f in findings:
        if not f.host or not f.indicators:
            continue
        last_text = f.evidence.get("last_seen")
        last = (
            datetime.fromisoformat(last_text.replace("Z", "+00:00"))
            if isinstance(last_text, str)
            else f.time
        )
        count = f.evidence.get("count")
        for ind in f.indicators:
            old = per.get((f.host, ind))
            first = f.time
            if old is not None:
                first = min((t for t in (old.first, f.time) if t), default=None)
                last = max((t for t in (old.last, last) if t), default=None)
            per[(f.host, ind)] = Contact(
                f.host,
                ind,
                first,
                last,
                (old.count if old else 0) + (count if isinstance(count, int) else 1),
                (),
            )
    far = datetime.max.replace(tzinfo=UTC)
    contacts = sorted(per.values(), key=lambda c: (c.first or far, c.host, c.indicator))
    data.contacts = contacts[:MAX_CONTACTS]
    data.contacts_total = len(contacts)
    if data.findings_total > len(data.findings):
        data.aggregated.append(
            f"Findings: the {len(data.findings):,} most severe of {data.findings_total:,} are listed."
        )
    errors = sum(1 for f in findings if f.kind.startswith("error."))
    _answers(data, -1, errors, len(_strong(findings)))  # -1: what was examined is unknown
    return data
