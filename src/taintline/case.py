"""The case store: one embedded DuckDB file holding everything a case knows.

Schema changes are versioned migrations, one folder per component under
``taintline/migrations/<component>/NNN_name.sql``; each component keeps its own version, so
stages evolve their tables independently. Every write is a transaction: an interrupted command
never leaves half a batch behind.

Long file: the store is one class whose methods share its connection, transactions and
migrations; the per-stage tables already live in each stage's ``store`` module.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import orjson

from taintline.errors import CaseError
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
    utc,
)

if TYPE_CHECKING:
    import pyarrow as pa
else:
    pa = LazyModule("pyarrow")  # a re-scan that reads nothing never needs it

DEFAULT_CASE_PATH = Path("taintline-case.duckdb")

#: Components whose migrations are applied, in this order (explicit, no discovery by import).
COMPONENTS: tuple[str, ...] = ("core", "intel", "scan", "hunt", "graph")

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

#: The natural key of every table of a case: two rows with equal keys state the same fact, so
#: storing (or importing) a fact twice keeps one row and counts as "0 new". Columns outside the
#: key are bookkeeping (when and by which run a fact was first recorded) or details that follow
#: from the key; a key column may be NULL (NULLs compare equal). ``runs`` and the cascade
#: tables are events: each run is a fact of its own. A scan's ``file_facts`` are what one run
#: saw, hence keyed by run; a hunt's sightings and file statistics are the same facts whichever
#: run read them. Every table a migration creates must be listed here (a test checks).
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "runs": ("run_id",),
    "findings": ("fingerprint",),
    "indicator_sources": ("type", "value", "source"),
    "nodes": ("kind", "key"),
    "edges": (
        "kind",
        "src_kind",
        "src_key",
        "dst_kind",
        "dst_key",
        "valid_from",
        "valid_until",
        "source",
    ),
    "yara_sources": ("sha256",),
    "eol_cycles": ("product", "cycle", "source"),
    "eol_products": ("product", "source"),
    "intel_context": ("type", "value", "source"),
    "file_facts": ("run_id", "top", "path", "analyser"),
    # a re-scan's unchanged file: its rows are those another run stored (scan/carry.py)
    "file_facts_links": ("run_id", "top", "display", "src_run", "src_top"),
    # incremental scans: the latest identity of a path on a host; what one content's analysis
    # (under one analyser version, limits and context) and YARA run (one rule set) computed
    "scan_identities": ("host", "path"),
    "scan_contents": ("sha256", "analysis_key", "name_class"),
    "scan_yara": ("sha256", "rules_key", "place"),
    # a tree as a finished run left it: a re-scan that finds it so links it whole
    "scan_tree_states": ("host", "top", "analysis_key", "rules_key"),
    "hunt_sightings": (
        "host",
        "indicator_type",
        "indicator_value",
        "first_seen",
        "last_seen",
        "locations",
    ),
    "hunt_files": (
        "path",
        "format",
        "kind",
        "lines",
        "records",
        "comments",
        "blank",
        "garbage",
        "hits",
        "problems",
    ),
    "cascade_runs": ("run_id",),
    "cascade_reached": ("run_id", "kind", "key"),
}


#: Views a migration creates, as (view, a table the stand-in reads, the stand-in): a case
#: opened read-only cannot be migrated, and its readers still read the view, so a case from
#: before that migration gets the first stand-in whose table it holds, as a temporary view.
STAND_IN_VIEWS: tuple[tuple[str, str, str], ...] = (
    # scan/005: a re-scan's linked rows; a case without links has its own rows only
    ("file_facts_all", "file_facts", "SELECT * FROM file_facts"),
    # scan/006: the runs with rows (a case of scan/005 has links, one of before none)
    (
        "file_facts_runs",
        "file_facts_links",
        "SELECT DISTINCT run_id FROM file_facts UNION SELECT DISTINCT run_id FROM file_facts_links",
    ),
    ("file_facts_runs", "file_facts", "SELECT DISTINCT run_id FROM file_facts"),
)


def now_utc() -> datetime:
    return datetime.now(UTC)


def naive_utc(value: datetime | None) -> datetime | None:
    """A time as DuckDB's ``TIMESTAMP`` columns hold it: naive UTC (naive input is UTC)."""
    if value is None:
        return None
    return utc(value).replace(tzinfo=None)


def aware_utc(value: datetime | None) -> datetime | None:
    """A stored naive-UTC time as an aware UTC time."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC)


#: The columns :func:`finding_from_row` reads, in its order.
FINDING_COLUMNS = "kind, severity, subject, message, source, host, time, evidence, indicators"


def finding_from_row(r: Sequence[Any]) -> Finding:
    """A row of ``SELECT {FINDING_COLUMNS} FROM findings`` as a :class:`Finding`."""
    return Finding(
        kind=r[0],
        severity=Severity(r[1]),
        subject=r[2],
        message=r[3],
        source=FindingSource(r[4]),
        host=r[5],
        time=aware_utc(r[6]),
        evidence=orjson.loads(r[7]) if r[7] else {},
        indicators=tuple(r[8] or ()),
    )


#: The columns :func:`indicator_from_row` reads, in its order (``indicator_sources`` and
#: ``intel_context`` both have them).
INDICATOR_COLUMNS = (
    "type, value, source, campaign, confidence, valid_from, valid_until, description, labels,"
    " context"
)


def indicator_from_row(r: Sequence[Any]) -> Indicator:
    """A row of ``SELECT {INDICATOR_COLUMNS}`` as an :class:`Indicator` (one statement)."""
    return Indicator(
        type=IndicatorType(r[0]),
        value=r[1],
        source=r[2],
        campaign=r[3],
        confidence=r[4],
        valid_from=aware_utc(r[5]),
        valid_until=aware_utc(r[6]),
        description=r[7],
        labels=tuple(r[8] or ()),
        context=orjson.loads(r[9]) if r[9] else {},
    )


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


@dataclass(frozen=True, slots=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str


def load_migrations(component: str) -> list[Migration]:
    """The migrations shipped for ``component``, in version order."""
    folder = resources.files("taintline.migrations").joinpath(component)
    found: list[Migration] = []
    if not folder.is_dir():
        return found
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(component, int(match.group(1)), entry.name, entry.read_text()))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise CaseError(f"migration numbering gap in {component}: {migration.name}")
    return found


@dataclass(frozen=True, slots=True)
class IndicatorSummary:
    """One indicator as the case knows it: every source that stated it."""

    type: IndicatorType
    value: str
    sources: tuple[str, ...]
    campaign: str | None
    confidence: int | None
    valid_from: datetime | None
    valid_until: datetime | None
    description: str | None


class Case:
    """An open case file. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        path: Path | str = DEFAULT_CASE_PATH,
        *,
        read_only: bool = False,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.path = Path(path)
        #: Where every "recorded at" / "now" of this case comes from; tests inject a fixed one.
        self.clock = clock
        self._depth = 0
        try:
            if read_only and not self.path.exists():
                raise CaseError(f"{self.path}: no such case file")
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise CaseError(f"{self.path}: cannot open case: {exc}") from exc
        self.con.execute("SET TimeZone = 'UTC'")
        self.read_only = read_only
        if not read_only:
            self.migrate()
        else:
            self._stand_in_views(self.con)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own to the case (to read in chunks, or beside the main
        connection's results), which sees what the main connection sees."""
        con = self.con.cursor()
        if self.read_only:
            self._stand_in_views(con)
        return con

    @staticmethod
    def _stand_in_views(con: duckdb.DuckDBPyConnection) -> None:
        """A case opened read-only is not migrated: a view its schema predates is made a
        temporary one (of this connection) over the tables it has (:data:`STAND_IN_VIEWS`)."""
        names = {
            str(r[0])
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
        for view, table, select in STAND_IN_VIEWS:
            if view not in names and table in names:
                con.execute(f"CREATE TEMP VIEW {view} AS {select}")
                names.add(view)

    # -- time ------------------------------------------------------------------------------
    def now(self) -> datetime:
        """The case's clock, as an aware UTC time."""
        return utc(self.clock())

    def now_naive(self) -> datetime:
        """The case's clock as DuckDB stores it (naive UTC)."""
        return utc(self.clock()).replace(tzinfo=None)

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: an exception (or Ctrl-C) inside rolls the whole batch back.

        Re-entrant: a transaction opened inside another joins it, so composite writes (an
        import of findings, indicators and edges) commit or roll back as one.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self.con
            finally:
                self._depth -= 1
            return
        self.con.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield self.con
        except BaseException:
            self._depth = 0
            self.con.execute("ROLLBACK")
            raise
        else:
            self._depth = 0
            self.con.execute("COMMIT")

    # -- schema ----------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations; returns the names applied."""
        applied: list[str] = []
        with self.transaction() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions ("
                " component VARCHAR PRIMARY KEY, version INTEGER NOT NULL, applied TIMESTAMP)"
            )
            current = dict(con.execute("SELECT component, version FROM schema_versions").fetchall())
            for component in COMPONENTS:
                have = int(current.get(component, 0))
                for migration in load_migrations(component):
                    if migration.version <= have:
                        continue
                    try:
                        con.execute(migration.sql)
                    except duckdb.Error as exc:
                        raise CaseError(
                            f"migration {component}/{migration.name} failed: {exc}"
                        ) from exc
                    con.execute(
                        "INSERT OR REPLACE INTO schema_versions VALUES (?, ?, ?)",
                        [component, migration.version, self.now_naive()],
                    )
                    applied.append(f"{component}/{migration.name}")
        return applied

    def tables(self) -> list[str]:
        """The case's tables (not views, not the migration bookkeeping), in name order."""
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            " AND table_type = 'BASE TABLE' AND table_name <> 'schema_versions'"
            " ORDER BY table_name"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def natural_key(self, table: str) -> tuple[str, ...]:
        """The key of ``table`` (:data:`NATURAL_KEYS`); a table not listed there is keyed by
        all of its columns, so an identical row is never stored twice."""
        key = NATURAL_KEYS.get(table)
        if key is not None:
            return key
        rows = self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main'"
            " AND table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        return tuple(str(r[0]) for r in rows)

    def insert_new(
        self,
        table: str,
        select_sql: str,
        params: Sequence[Any] = (),
        *,
        inputs: dict[str, pa.Table] | None = None,
        within: tuple[str, Any] | None = None,
    ) -> int:
        """Insert the rows of ``select_sql`` (a SELECT naming every column of ``table``, in
        order) whose natural key the table does not hold yet; rows repeating a key within the
        batch are stored once. ``inputs`` are Arrow tables the SELECT reads, by name. Returns
        how many rows were new. Runs in the caller's transaction if one is open.

        The key is checked by an anti-join rather than a unique index: NULL key columns (an
        edge without a start time) must compare equal, which DuckDB's indexes do not do, and
        bulk inserts into an indexed table are several times slower.

        ``within`` (a key column and the value every new row has in it, such as a scan's run
        id) limits the anti-join to the stored rows with that value: a scan's batch is then
        checked against the run's rows, not against every run's (0.2 s -> 0.03 s a batch of
        10,000 in a case of 1.1 million rows).
        """
        key = self.natural_key(table)
        cols = ", ".join(f'"{c}"' for c in key)
        match = " AND ".join(f't."{c}" IS NOT DISTINCT FROM b."{c}"' for c in key)
        scope: list[Any] = []
        if within is not None:
            if within[0] not in key:
                raise ValueError(f"{within[0]} is not part of the natural key of {table}")
            match += f' AND t."{within[0]}" = ?'
            scope.append(within[1])
        before = self._count(table)
        for name, data in (inputs or {}).items():
            self.con.register(name, data)
        try:
            self.con.execute(
                f"INSERT INTO {table} SELECT * FROM (SELECT DISTINCT ON ({cols}) *"  # noqa: S608
                f" FROM ({select_sql}) AS n) AS b"
                f" WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {match})",
                [*params, *scope],
            )
        finally:
            for name in inputs or {}:
                self.con.unregister(name)
        return self._count(table) - before

    def schema_version(self, component: str = "core") -> int:
        row = self.con.execute(
            "SELECT version FROM schema_versions WHERE component = ?", [component]
        ).fetchone()
        return int(row[0]) if row else 0

    # -- runs ------------------------------------------------------------------------------
    def start_run(self, command: str) -> str:
        run_id = uuid.uuid4().hex[:16]
        self.con.execute(
            "INSERT INTO runs (run_id, command, started, status) VALUES (?, ?, ?, 'running')",
            [run_id, command, self.now_naive()],
        )
        return run_id

    def finish_run(self, run_id: str, status: str, summary: dict[str, Any] | None = None) -> None:
        self.con.execute(
            "UPDATE runs SET finished = ?, status = ?, summary = ? WHERE run_id = ?",
            [self.now_naive(), status, _json(summary or {}), run_id],
        )

    # -- indicators ------------------------------------------------------------------------
    def indicator_values(self, type_: IndicatorType | str) -> list[str]:
        """The values of one type of indicator, in order (what :meth:`indicators` gives,
        without building a summary of each: every scan asks for signers and serials)."""
        rows = self.con.execute(
            "SELECT DISTINCT value FROM indicator_sources WHERE type = ? ORDER BY value",
            [str(type_)],
        ).fetchall()
        return [str(r[0]) for r in rows]

    def eol_dates(self) -> dict[str, str]:
        """Product -> its end-of-life date (ISO), the latest across its cycles; products with
        a cycle still supported or whose EOL is a flag without a date left out (see
        :func:`taintline.intel.store.eol_map`). Here, one query: every scan asks."""
        rows = self.con.execute(
            "SELECT product, max(eol_date) FROM eol_cycles GROUP BY product"
            " HAVING max(eol_date) IS NOT NULL"
            " AND count(*) FILTER (WHERE eol_date IS NULL AND eol_flag IS DISTINCT FROM TRUE) = 0"
            " ORDER BY product"
        ).fetchall()
        return {str(p): d.isoformat() for p, d in rows}

    def add_indicators(self, indicators: Iterable[Indicator], *, batch_size: int = 200_000) -> int:
        """Add indicator statements; returns how many (indicator, source) pairs were new.

        The whole call is one transaction. The same ``(type, value, source)`` stated twice is
        kept once; the same ``(type, value)`` from two sources is one indicator with two sources.
        """
        added = 0
        added_at = self.now_naive()
        with self.transaction():
            batch: list[Indicator] = []
            for indicator in indicators:
                batch.append(indicator)
                if len(batch) >= batch_size:
                    added += self._insert_indicator_batch(batch, added_at)
                    batch = []
            if batch:
                added += self._insert_indicator_batch(batch, added_at)
        return added

    def add_indicator_table(self, table: pa.Table) -> int:
        """Bulk path for readers that build Arrow columns directly (CSV/STIX fast paths).

        ``table`` needs the columns of ``indicator_sources`` except ``added_at`` (missing
        optional columns are filled with NULL). Runs in the caller's transaction if one is open.
        """
        return self._insert_indicator_arrow(table, self.now_naive())

    def _insert_indicator_batch(self, batch: Sequence[Indicator], added_at: datetime | None) -> int:
        return self._insert_indicator_arrow(self._indicator_table(batch), added_at)

    @staticmethod
    def _indicator_table(batch: Sequence[Indicator]) -> pa.Table:
        return pa.table(
            {
                "type": pa.array([str(i.type) for i in batch], pa.string()),
                "value": pa.array([i.value for i in batch], pa.string()),
                "source": pa.array([i.source for i in batch], pa.string()),
                "campaign": pa.array([i.campaign for i in batch], pa.string()),
                "confidence": pa.array([i.confidence for i in batch], pa.int32()),
                "valid_from": pa.array(
                    [naive_utc(i.valid_from) for i in batch], pa.timestamp("us")
                ),
                "valid_until": pa.array(
                    [naive_utc(i.valid_until) for i in batch], pa.timestamp("us")
                ),
                "description": pa.array([i.description for i in batch], pa.string()),
                "labels": pa.array([list(i.labels) for i in batch], pa.list_(pa.string())),
                "context": pa.array(
                    [_json(dict(i.context)) if i.context else None for i in batch], pa.string()
                ),
            }
        )

    @staticmethod
    def _indicator_column_types() -> tuple[tuple[str, pa.DataType], ...]:
        return (
            ("type", pa.string()),
            ("value", pa.string()),
            ("source", pa.string()),
            ("campaign", pa.string()),
            ("confidence", pa.int32()),
            ("valid_from", pa.timestamp("us")),
            ("valid_until", pa.timestamp("us")),
            ("description", pa.string()),
            ("labels", pa.list_(pa.string())),
            ("context", pa.string()),
        )

    def add_indicator_tables(self, tables: Sequence[pa.Table]) -> int:
        """Several reader tables (any subset of the columns) stored in one statement."""
        return self.store_indicators((), tables)[0]

    def store_indicators(
        self, indicators: Sequence[Indicator], tables: Sequence[pa.Table]
    ) -> tuple[int, int]:
        """Statements as records and as reader tables (any subset of the columns), stored in
        one statement in the caller's transaction; returns (new (type, value, source)
        statements, new (type, value) indicators)."""
        batches = [self._indicator_columns(t) for t in tables]
        if indicators:
            batches.append(self._indicator_table(indicators))
        if not batches:
            return 0, 0
        return self._insert_indicators_counted(pa.concat_tables(batches), self.now_naive())

    def _indicator_columns(self, table: pa.Table) -> pa.Table:
        columns = {}
        for name, dtype in self._indicator_column_types():
            if name in table.column_names:
                column = table.column(name)
                columns[name] = column if column.type == dtype else column.cast(dtype)
            else:
                columns[name] = pa.nulls(table.num_rows, dtype)
        return pa.table(columns)

    def store_indicator_groups(
        self, groups: Sequence[tuple[Sequence[Indicator], Sequence[pa.Table]]]
    ) -> list[tuple[int, int]]:
        """Several small files' statements in one INSERT (caller's transaction); returns
        per file (new statements, new indicators), counted as storing the files one after
        the other would: a statement or an indicator is new for the first file that states
        it. One query fetches what the case already holds of these indicators; the rest is
        set arithmetic here (cheaper than three statements per file when files are small)."""
        tables: list[pa.Table] = []
        owners: list[int] = []
        for number, (indicators, readers) in enumerate(groups):
            parts = [self._indicator_columns(t) for t in readers]
            if indicators:
                parts.append(self._indicator_table(indicators))
            for part in parts:
                tables.append(part)
                owners.extend([number] * part.num_rows)
        counts = [(0, 0)] * len(groups)
        if not tables:
            return counts
        full = pa.concat_tables(tables)
        con = self.con
        con.register("_ind_group", full)
        try:
            held = con.execute(
                "SELECT s.type, s.value, s.source FROM indicator_sources s"
                " SEMI JOIN _ind_group b ON s.type = b.type AND s.value = b.value"
            ).fetchall()
            keys: set[tuple[str, str, str]] = {(t, v, src) for t, v, src in held}
            pairs: set[tuple[str, str]] = {(t, v) for t, v, _ in held}
            new = [0] * len(groups)
            new_pairs = [0] * len(groups)
            keep: list[int] = []
            columns = zip(
                full.column("type").to_pylist(),
                full.column("value").to_pylist(),
                full.column("source").to_pylist(),
                strict=True,
            )
            for row, (kind, value, source) in enumerate(columns):
                if (kind, value, source) in keys:
                    continue
                keys.add((kind, value, source))
                keep.append(row)
                new[owners[row]] += 1
                if (kind, value) not in pairs:
                    pairs.add((kind, value))
                    new_pairs[owners[row]] += 1
        finally:
            con.unregister("_ind_group")
        if keep:
            con.register("_ind_keep", full.take(pa.array(keep, pa.int64())))
            try:
                _one(
                    con,
                    "INSERT INTO indicator_sources SELECT type, value, source, campaign,"
                    " confidence, valid_from, valid_until, description, labels, context::JSON,"
                    " ? FROM _ind_keep",
                    [self.now_naive()],
                )
            finally:
                con.unregister("_ind_keep")
        return list(zip(new, new_pairs, strict=True))

    def _insert_indicator_arrow(self, table: pa.Table, added_at: datetime | None) -> int:
        return self._insert_indicators_counted(self._indicator_columns(table), added_at)[0]

    def _insert_indicators_counted(
        self, full: pa.Table, added_at: datetime | None
    ) -> tuple[int, int]:
        """Insert the statements of ``full`` the case does not hold yet (each
        ``(type, value, source)`` once); returns (rows inserted, new ``(type, value)``).

        One INSERT, no per-row index: duplicates inside the batch are found by grouping a
        64-bit hash of the key (cheap), and only rows whose hash repeats (real duplicates
        and rare collisions) go through an exact ``DISTINCT ON``; the case's rows are
        anti-joined only when it holds any. (Slicing the batch and anti-joining each slice,
        as before, cost more than the insert itself on a million-row list.)"""
        con = self.con
        con.register("_ind_new", full)
        try:
            held = bool(_one(con, "SELECT EXISTS (SELECT 1 FROM indicator_sources)"))
            key = "hash(type, value, source)"
            repeats = _one(
                con,
                f"SELECT count(*) FROM (SELECT {key} AS k FROM _ind_new GROUP BY k"  # noqa: S608
                " HAVING count(*) > 1)",
            )
            rows = "_ind_new"
            if repeats:
                _x(
                    con,
                    f"CREATE OR REPLACE TEMP TABLE _ind_rep AS SELECT {key} AS k FROM _ind_new"  # noqa: S608
                    " GROUP BY k HAVING count(*) > 1",
                )
                rows = (
                    f"(SELECT * FROM _ind_new WHERE {key} NOT IN (SELECT k FROM _ind_rep)"  # noqa: S608
                    " UNION ALL SELECT DISTINCT ON (type, value, source) * FROM _ind_new"
                    f" WHERE {key} IN (SELECT k FROM _ind_rep))"
                )
            if held:
                fresh = (
                    f"(SELECT * FROM {rows} AS b WHERE NOT EXISTS (SELECT 1 FROM"  # noqa: S608
                    " indicator_sources s WHERE s.type = b.type AND s.value = b.value"
                    " AND s.source = b.source))"
                )
                new_keys = (
                    f"(SELECT type, value FROM {fresh} AS b WHERE NOT EXISTS (SELECT 1 FROM"  # noqa: S608
                    " indicator_sources s WHERE s.type = b.type AND s.value = b.value))"
                )
            else:
                fresh, new_keys = rows, f"(SELECT type, value FROM {rows})"  # noqa: S608
            new_indicators = _distinct_pairs(con, new_keys)
            inserted = _one(
                con,
                "INSERT INTO indicator_sources"  # noqa: S608  (constant SQL pieces)
                " SELECT b.type, b.value, b.source, b.campaign, b.confidence, b.valid_from,"
                " b.valid_until, b.description, b.labels, b.context::JSON, ?"
                f" FROM {fresh} AS b",
                [added_at],
            )
        finally:
            con.unregister("_ind_new")
            _x(con, "DROP TABLE IF EXISTS _ind_rep")
        return inserted, new_indicators

    def _count(self, table: str) -> int:
        # fetchall: a half-read result would block the next statement on this connection
        rows = self.con.execute(f"SELECT count(*) FROM {table}").fetchall()  # noqa: S608
        return int(rows[0][0]) if rows else 0

    def indicator_count(self) -> int:
        # Distinct keys directly: counting the ``indicators`` view would build every row's
        # source list (10x slower on a million indicators).
        row = self.con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT type, value FROM indicator_sources)"
        ).fetchone()
        return int(row[0]) if row else 0

    def indicator_counts_by_type(self) -> dict[str, int]:
        rows = self.con.execute(
            "SELECT type, count(DISTINCT value) FROM indicator_sources GROUP BY type ORDER BY type"
        ).fetchall()
        return {str(t): int(n) for t, n in rows}

    def indicators(
        self,
        *,
        types: Iterable[IndicatorType | str] | None = None,
        value: str | None = None,
        limit: int | None = None,
    ) -> list[IndicatorSummary]:
        sql = (
            "SELECT type, value, sources, campaign, confidence, valid_from, valid_until,"
            " description FROM indicators"
        )
        where: list[str] = []
        params: list[Any] = []
        if types is not None:
            wanted = [str(t) for t in types]
            where.append("list_contains(?, type)")
            params.append(wanted)
        if value is not None:
            where.append("value = ?")
            params.append(value)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY type, value"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [
            IndicatorSummary(
                type=IndicatorType(r[0]),
                value=r[1],
                sources=tuple(r[2]),
                campaign=r[3],
                confidence=r[4],
                valid_from=aware_utc(r[5]),
                valid_until=aware_utc(r[6]),
                description=r[7],
            )
            for r in self.con.execute(sql, params).fetchall()
        ]

    def indicator_statements(self, type_: IndicatorType | str, value: str) -> list[Indicator]:
        """Every source's statement about one indicator."""
        rows = self.con.execute(
            f"SELECT {INDICATOR_COLUMNS} FROM indicator_sources"  # noqa: S608  (a constant)
            " WHERE type = ? AND value = ? ORDER BY source",
            [str(type_), value],
        ).fetchall()
        return [indicator_from_row(r) for r in rows]

    # -- findings --------------------------------------------------------------------------
    def add_findings(
        self, findings: Iterable[Finding], *, run_id: str | None = None, origin: str | None = None
    ) -> int:
        """Add or merge findings (by fingerprint) in one transaction; returns how many were new."""
        items = list(findings)
        if not items:
            return 0
        recorded = self.now_naive()
        unique: dict[str, Finding] = {}
        for f in items:
            unique[f.fingerprint] = f
        rows = list(unique.items())
        columns: dict[str, tuple[str, list[Any]]] = {
            "fingerprint": ("VARCHAR", [fp for fp, _ in rows]),
            "kind": ("VARCHAR", [f.kind for _, f in rows]),
            "severity": ("VARCHAR", [str(f.severity) for _, f in rows]),
            "subject": ("VARCHAR", [f.subject for _, f in rows]),
            "message": ("VARCHAR", [f.message for _, f in rows]),
            "source": ("VARCHAR", [str(f.source) for _, f in rows]),
            "host": ("VARCHAR", [f.host for _, f in rows]),
            "time": ("TIMESTAMP", [naive_utc(f.time) for _, f in rows]),
            "evidence": ("VARCHAR", [_json(dict(f.evidence)) for _, f in rows]),
            "indicators": ("VARCHAR[]", [list(f.indicators) for _, f in rows]),
        }
        with self.transaction() as con, rows_relation(con, columns) as (new_rows, new_params):
            before = self._count("findings")
            self._merge_findings(new_rows, [recorded, recorded, run_id, origin, *new_params])
            return self._count("findings") - before

    def _merge_findings(self, new_rows: str, params: list[Any]) -> None:
        """Insert the rows of ``new_rows`` (a FROM clause of :func:`rows_relation`), merging by
        fingerprint."""
        sql = _MERGE_FINDINGS.replace("{new_rows}", new_rows)
        self.con.execute(sql, params)

    def findings(
        self,
        *,
        kinds: Iterable[str] | None = None,
        kind_prefix: str | None = None,
        source: FindingSource | str | None = None,
        min_severity: Severity | None = None,
    ) -> list[Finding]:
        sql = f"SELECT {FINDING_COLUMNS} FROM findings"  # noqa: S608  (a constant)
        where: list[str] = []
        params: list[Any] = []
        if kinds is not None:
            where.append("list_contains(?, kind)")
            params.append(list(kinds))
        if kind_prefix is not None:
            where.append("starts_with(kind, ?)")
            params.append(kind_prefix)
        if source is not None:
            where.append("source = ?")
            params.append(str(source))
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY kind, subject, host"
        out: list[Finding] = []
        for r in self.con.execute(sql, params).fetchall():
            finding = finding_from_row(r)
            if min_severity is None or finding.severity.at_least(min_severity):
                out.append(finding)
        return out

    # -- graph -----------------------------------------------------------------------------
    def add_nodes(self, nodes: Iterable[Node], *, source: str | None = None) -> int:
        items = {(n.kind, n.key): n for n in nodes}
        if not items:
            return 0
        recorded = self.now_naive()
        new_rows = pa.table(  # noqa: F841  (read by DuckDB's replacement scan)
            {
                "kind": pa.array([str(k) for k, _ in items], pa.string()),
                "key": pa.array([key for _, key in items], pa.string()),
                "attrs": pa.array([_json(dict(n.attrs)) for n in items.values()], pa.string()),
            }
        )
        with self.transaction() as con:
            before = self._count("nodes")
            con.execute(
                """
                INSERT INTO nodes SELECT kind, key, attrs::JSON, ?, ? FROM new_rows
                ON CONFLICT (kind, key) DO UPDATE SET
                    attrs = json_merge_patch(nodes.attrs, excluded.attrs)
                """,
                [source, recorded],
            )
            return self._count("nodes") - before

    def add_edges(self, edges: Iterable[Edge]) -> int:
        """Add edges; returns how many were new (an edge already stored with the same
        :data:`NATURAL_KEYS` is kept as first recorded)."""
        items = list(edges)
        if not items:
            return 0
        recorded = self.now_naive()
        new_rows = pa.table(
            {
                "kind": pa.array([str(e.kind) for e in items], pa.string()),
                "src_kind": pa.array([str(e.src.kind) for e in items], pa.string()),
                "src_key": pa.array([e.src.key for e in items], pa.string()),
                "dst_kind": pa.array([str(e.dst.kind) for e in items], pa.string()),
                "dst_key": pa.array([e.dst.key for e in items], pa.string()),
                "valid_from": pa.array(
                    [naive_utc(e.valid_from) for e in items], pa.timestamp("us")
                ),
                "valid_until": pa.array(
                    [naive_utc(e.valid_until) for e in items], pa.timestamp("us")
                ),
                "recorded_at": pa.array(
                    [naive_utc(e.recorded_at) or recorded for e in items], pa.timestamp("us")
                ),
                "source": pa.array([e.source for e in items], pa.string()),
                "confidence": pa.array([float(e.confidence) for e in items], pa.float64()),
                "attrs": pa.array([_json(dict(e.attrs)) for e in items], pa.string()),
            }
        )
        with self.transaction():
            return self.insert_new(
                "edges",
                "SELECT kind, src_kind, src_key, dst_kind, dst_key, valid_from, valid_until,"
                " recorded_at, source, confidence, attrs::JSON AS attrs FROM new_rows",
                inputs={"new_rows": new_rows},
            )

    def nodes(self, kind: NodeKind | str | None = None) -> list[Node]:
        sql = "SELECT kind, key, attrs FROM nodes"
        params: list[Any] = []
        if kind is not None:
            sql += " WHERE kind = ?"
            params.append(str(kind))
        sql += " ORDER BY kind, key"
        return [
            Node(NodeKind(r[0]), r[1], orjson.loads(r[2]) if r[2] else {})
            for r in self.con.execute(sql, params).fetchall()
        ]

    def edges(self, kind: EdgeKind | str | None = None) -> list[Edge]:
        sql = (
            "SELECT kind, src_kind, src_key, dst_kind, dst_key, valid_from, valid_until,"
            " recorded_at, source, confidence, attrs FROM edges"
        )
        params: list[Any] = []
        if kind is not None:
            sql += " WHERE kind = ?"
            params.append(str(kind))
        sql += " ORDER BY kind, src_kind, src_key, dst_kind, dst_key, valid_from NULLS FIRST"
        return [
            Edge(
                kind=EdgeKind(r[0]),
                src=NodeRef(NodeKind(r[1]), r[2]),
                dst=NodeRef(NodeKind(r[3]), r[4]),
                valid_from=aware_utc(r[5]),
                valid_until=aware_utc(r[6]),
                recorded_at=aware_utc(r[7]),
                source=r[8],
                confidence=float(r[9]),
                attrs=orjson.loads(r[10]) if r[10] else {},
            )
            for r in self.con.execute(sql, params).fetchall()
        ]


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> int:
    """The single number a statement returns (fully fetched, so the next one may run)."""
    rows = con.execute(sql, list(params)).fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _x(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    con.execute(sql).fetchall()


def _distinct_pairs(con: duckdb.DuckDBPyConnection, rows: str) -> int:
    """``count(DISTINCT (type, value))`` of ``rows``, exact, at the cost of grouping one
    64-bit hash: pairs whose hash is unique are counted as they are, only the few in
    repeated hash groups are compared as text."""
    return _one(
        con,
        f"WITH c AS (SELECT type, value, hash(type, value) AS k FROM {rows}),"  # noqa: S608
        " g AS (SELECT k, count(*) AS n FROM c GROUP BY k)"
        " SELECT (SELECT count(*) FROM g WHERE n = 1) + (SELECT count(*) FROM"
        " (SELECT DISTINCT type, value FROM c WHERE k IN (SELECT k FROM g WHERE n > 1)))",
    )


_MERGE_FINDINGS = """
    INSERT INTO findings
    SELECT fingerprint, kind, severity, subject, message, source, host, time,
           evidence::JSON, indicators, ?, ?, ?, ?
    FROM {new_rows}
    ON CONFLICT (fingerprint) DO UPDATE SET
        last_recorded = excluded.last_recorded,
        severity = excluded.severity,
        message = excluded.message,
        evidence = excluded.evidence,
        time = CASE WHEN findings.time IS NULL THEN excluded.time
                    WHEN excluded.time IS NULL THEN findings.time
                    ELSE least(findings.time, excluded.time) END
"""

#: Up to this many rows go to DuckDB as list parameters (one ``unnest`` per column), more as
#: an Arrow table: lists need no pyarrow (0.15 s to import), which a re-scan that reads
#: nothing would otherwise import only to store a few findings or match a few hashes, but
#: their cost grows faster than their length: 33 ms for 2,000 files' hashes where Arrow takes
#: 8 ms, 190 ms for 10,000 where Arrow takes 14 ms.
SMALL_ROWS = 500


@contextlib.contextmanager
def rows_relation(
    con: duckdb.DuckDBPyConnection, columns: dict[str, tuple[str, list[Any]]]
) -> Iterator[tuple[str, list[Any]]]:
    """``columns`` (name -> (SQL type, values), all of one length) as rows for one statement:
    yields a FROM clause and the parameters it takes (put them where the clause stands in the
    statement). A few rows go as list parameters (no pyarrow), more as an Arrow table
    registered on ``con`` for the duration."""
    count = len(next(iter(columns.values()))[1])
    if count <= SMALL_ROWS:
        select = ", ".join(
            f'unnest(?::{sql_type}[]) AS "{name}"' for name, (sql_type, _) in columns.items()
        )
        yield f"(SELECT {select})", [values for _, values in columns.values()]
        return
    arrow_type = {
        "VARCHAR": pa.string(),
        "BIGINT": pa.int64(),
        "TIMESTAMP": pa.timestamp("us"),
        "VARCHAR[]": pa.list_(pa.string()),
    }
    table = pa.table(
        {name: pa.array(values, arrow_type[t]) for name, (t, values) in columns.items()}
    )
    name = f"_rows_{id(table):x}"
    con.register(name, table)
    try:
        yield name, []
    finally:
        con.unregister(name)
