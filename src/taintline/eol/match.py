"""Matching software (inventory rows, SBOM components) to end-of-life products and cycles.

Columnar from end to end (DuckDB over Arrow): the rows are never Python objects.

1. The rows are reduced to their distinct software identities (name, version, purl, cpe): ten
   million inventory rows of a fleet hold a few tens of thousands of identities.
2. Each identity is mapped to a product by the strongest key that matches, in this order and
   with this confidence: its package URL (``purl``, 0.95), its CPE (``cpe``, 0.90), its
   normalised name (``name``, 0.80: lower case, only letters and digits, so ``X_TRADER``,
   ``x-trader`` and ``X Trader`` are one name) and its cleaned name (``name``, 0.60: without
   versions, architectures and parentheses, ``7-Zip 22.01 (x64)`` -> ``7zip``). A name that
   two products claim goes to the first in alphabetical order.
3. Each distinct (product, version) is resolved to a cycle (:mod:`taintline.eol.versions`).
4. The rows are joined back with their identity's product and cycle, and the cycle's dates
   give the status on the ``as_of`` day.

Key normalisation is one set of SQL macros applied to both sides (the catalogue's names and
identifiers, and the rows), so both are always normalised the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow as pa

from taintline.eol.versions import CycleIndex
from taintline.intel.interface import EolProduct, EolRecord

#: The columns of an observations table (a row of an inventory or an SBOM component).
OBSERVATION_SCHEMA = pa.schema(
    [
        ("host", pa.string()),  # null for SBOM components
        ("container", pa.string()),  # the release (SBOM) a component is part of
        ("node", pa.string()),  # the graph node ("software:7-zip@22.01"), when known
        ("name", pa.string()),
        ("version", pa.string()),
        ("purl", pa.string()),
        ("cpe", pa.string()),
        ("installed_at", pa.timestamp("us")),  # naive UTC
        ("removed_at", pa.timestamp("us")),
        ("source", pa.string()),  # where the row was read ("inventory.csv:2")
    ]
)

#: Status of a matched row on the ``as_of`` day.
STATUSES = ("end-of-life", "end-of-support", "supported", "unknown")

_MACROS = r"""
CREATE OR REPLACE TEMP MACRO tl_name_key(s) AS
    nullif(regexp_replace(lower(s), '[^a-z0-9]+', '', 'g'), '');
CREATE OR REPLACE TEMP MACRO tl_clean_key(s) AS nullif(regexp_replace(
    regexp_replace(
        regexp_replace(
            regexp_replace(lower(s), '\([^)]*\)|\[[^\]]*\]', ' ', 'g'),
            '\b(v?\d+([._-]\d+)+[a-z0-9._-]*|v\d+|x64|x86|x86_64|amd64|arm64|aarch64|i[3-6]86|(32|64)[ -]?bit|lts|esr)\b',
            ' ', 'g'),
        '[0-9][0-9._-]*$', '', 'g'),
    '[^a-z0-9]+', '', 'g'), '');
CREATE OR REPLACE TEMP MACRO tl_purl_key(s) AS
    nullif(lower(regexp_replace(trim(s), '[@?#].*$', '')), '');
CREATE OR REPLACE TEMP MACRO tl_purl_version(s) AS
    nullif(regexp_extract(trim(s), '^[^@?#]*@([^?#]+)', 1), '');
CREATE OR REPLACE TEMP MACRO tl_cpe_parts(s) AS CASE
    WHEN starts_with(lower(trim(s)), 'cpe:2.3:') THEN string_split(lower(trim(s)), ':')[3:]
    WHEN starts_with(lower(trim(s)), 'cpe:/') THEN string_split(lower(trim(s))[6:], ':')
    END;
CREATE OR REPLACE TEMP MACRO tl_cpe_key(s) AS CASE WHEN len(tl_cpe_parts(s)) >= 3
    THEN array_to_string(tl_cpe_parts(s)[1:3], ':') END;
CREATE OR REPLACE TEMP MACRO tl_cpe_version(s) AS CASE
    WHEN len(tl_cpe_parts(s)) >= 4 AND tl_cpe_parts(s)[4] NOT IN ('', '*', '-')
    THEN tl_cpe_parts(s)[4] END;
"""

#: Confidence of each way to match, strongest first.
CONFIDENCE = {"purl": 0.95, "cpe": 0.90, "name": 0.80, "cleaned-name": 0.60}


@dataclass(frozen=True, slots=True)
class Catalogue:
    """What the case knows about products: keys to recognise them and their cycles."""

    #: product, how ("purl", "cpe", "name"), key (as published; normalised when matching)
    keys: pa.Table
    #: one row per (product, cycle): the dates used, and which source and file gave them
    cycles: pa.Table

    @property
    def products(self) -> int:
        return len(set(self.keys.column("product").to_pylist()))

    @classmethod
    def build(cls, products: Sequence[EolProduct], records: Sequence[EolRecord]) -> Catalogue:
        """Several sources may describe a product: names and identifiers are merged; for a
        cycle given twice, the one with an end-of-life date wins, then the earlier date (the
        conservative one), then the source name."""
        keys: dict[tuple[str, str, str], None] = {}
        for product in products:
            for name in (product.product, *product.names):
                keys[(product.product, "name", name)] = None
            for purl in product.purls:
                keys[(product.product, "purl", purl)] = None
            for cpe in product.cpes:
                keys[(product.product, "cpe", cpe)] = None
        chosen: dict[tuple[str, str], EolRecord] = {}
        for record in records:
            keys.setdefault((record.product, "name", record.product), None)
            key = (record.product, record.cycle)
            old = chosen.get(key)
            if old is None or _better(record, old):
                chosen[key] = record
        rows = list(chosen.values())
        return cls(
            keys=pa.table(
                {
                    "product": pa.array([k[0] for k in keys], pa.string()),
                    "how": pa.array([k[1] for k in keys], pa.string()),
                    "key": pa.array([k[2] for k in keys], pa.string()),
                }
            ),
            cycles=pa.table(
                {
                    "product": pa.array([r.product for r in rows], pa.string()),
                    "cycle": pa.array([r.cycle for r in rows], pa.string()),
                    "release_date": pa.array([r.release_date for r in rows], pa.date32()),
                    "eol_date": pa.array([r.eol_date for r in rows], pa.date32()),
                    "eol_flag": pa.array([r.eol_flag for r in rows], pa.bool_()),
                    "eoas_date": pa.array([r.eoas_date for r in rows], pa.date32()),
                    "eoas_flag": pa.array([r.eoas_flag for r in rows], pa.bool_()),
                    "latest": pa.array([r.latest for r in rows], pa.string()),
                    "cycle_source": pa.array([r.source for r in rows], pa.string()),
                    "cycle_origin": pa.array([r.origin for r in rows], pa.string()),
                }
            ),
        )


def _better(new: EolRecord, old: EolRecord) -> bool:
    def rank(r: EolRecord) -> tuple[int, date, str]:
        return (0 if r.eol_date else 1, r.eol_date or date.max, r.source)

    return rank(new) < rank(old)


def connect(
    threads: int | None = None, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the key macros; past ``memory_limit`` DuckDB
    spills to its temporary folder instead of growing."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # results are sorted where order matters: DuckDB may stream and spill instead
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute("SET memory_limit = ?", [memory_limit])
    con.execute(_MACROS)
    return con


def _conform(table: pa.Table) -> pa.Table:
    """The observation columns in order; missing ones are nulls, others are cast (dictionary
    encoded text is kept as it is: DuckDB reads it without expanding it)."""
    columns = {}
    for field in OBSERVATION_SCHEMA:
        if field.name in table.column_names:
            column = table.column(field.name)
            keep = column.type == field.type or (
                pa.types.is_dictionary(column.type) and column.type.value_type == field.type
            )
            columns[field.name] = column if keep else column.cast(field.type)
        else:
            columns[field.name] = pa.nulls(table.num_rows, field.type)
    return pa.table(columns)


@dataclass(frozen=True, slots=True)
class Matches:
    """The result of :func:`match`, kept in DuckDB (ten million rows never become Python
    objects): ``tl_matches`` is a view with one row per observation that matched a product."""

    con: duckdb.DuckDBPyConnection

    def count(self) -> int:
        row = self.con.execute("SELECT count(*) FROM tl_matches").fetchone()
        return int(row[0]) if row else 0

    def to_arrow(self) -> pa.Table:
        return self.con.sql("SELECT * FROM tl_matches").to_arrow_table()


def match(
    observations: pa.Table,
    catalogue: Catalogue,
    as_of: date,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Matches:
    """Match every observation: the product, how and how surely, the cycle (or why none), the
    cycle's dates and the status on ``as_of``, and whether it was installed on or after its
    end of life. Rows that match no product are left out."""
    con = con or connect()
    obs = _conform(observations)
    con.register("tl_obs", obs)
    con.register("tl_catalogue_keys", catalogue.keys)
    con.register("tl_catalogue_cycles", catalogue.cycles)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE tl_keys AS
        SELECT DISTINCT product,
               CASE how WHEN 'purl' THEN tl_purl_key(key) WHEN 'cpe' THEN tl_cpe_key(key)
                        ELSE tl_name_key(key) END AS key,
               how
        FROM tl_catalogue_keys WHERE key IS NOT NULL
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE tl_ident AS
        SELECT (row_number() OVER ())::BIGINT AS id, name, version, purl, cpe,
               tl_purl_key(purl) AS pk, tl_cpe_key(cpe) AS ck, tl_name_key(name) AS nk,
               tl_clean_key(name) AS ck2,
               coalesce(nullif(trim(version), ''), tl_purl_version(purl), tl_cpe_version(cpe))
                   AS ver
        FROM (SELECT DISTINCT coalesce(name, '') AS name, coalesce(version, '') AS version,
                              coalesce(purl, '') AS purl, coalesce(cpe, '') AS cpe FROM tl_obs)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE tl_found AS
        SELECT id, product, how, ver FROM (
            SELECT i.id, k.product, 'purl' AS how, 1 AS prio, i.ver FROM tl_ident i
                JOIN tl_keys k ON k.how = 'purl' AND k.key = i.pk
            UNION ALL
            SELECT i.id, k.product, 'cpe', 2, i.ver FROM tl_ident i
                JOIN tl_keys k ON k.how = 'cpe' AND k.key = i.ck
            UNION ALL
            SELECT i.id, k.product, 'name', 3, i.ver FROM tl_ident i
                JOIN tl_keys k ON k.how = 'name' AND k.key = i.nk
            UNION ALL
            SELECT i.id, k.product, 'cleaned-name', 4, i.ver FROM tl_ident i
                JOIN tl_keys k ON k.how = 'name' AND k.key = i.ck2
        )
        QUALIFY row_number() OVER (PARTITION BY id ORDER BY prio, product) = 1
        """
    )
    pairs = con.execute(
        "SELECT DISTINCT product, ver FROM tl_found ORDER BY product, ver NULLS FIRST"
    ).fetchall()
    by_product: dict[str, list[str]] = {}
    for product, cycle in con.execute("SELECT product, cycle FROM tl_catalogue_cycles").fetchall():
        by_product.setdefault(product, []).append(cycle)
    indexes = {p: CycleIndex(c) for p, c in by_product.items()}
    empty = CycleIndex(())
    resolved = [indexes.get(p, empty).resolve(v) for p, v in pairs]
    con.register(
        "tl_resolved",
        pa.table(
            {
                "product": pa.array([p for p, _ in pairs], pa.string()),
                "ver": pa.array([v for _, v in pairs], pa.string()),
                "cycle": pa.array([r.cycle for r in resolved], pa.string()),
                "reason": pa.array([r.reason or None for r in resolved], pa.string()),
            }
        ),
    )
    # one row per matched identity: everything that does not depend on the host
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE tl_ident_match AS
        SELECT f.id, i.name, f.ver AS version, f.product, f.how,
               CASE f.how WHEN 'purl' THEN 0.95 WHEN 'cpe' THEN 0.90 WHEN 'name' THEN 0.80
                          ELSE 0.60 END::DOUBLE AS confidence,
               r.cycle, r.reason, c.release_date, c.eol_date, c.eol_flag, c.eoas_date,
               c.eoas_flag, c.latest, c.cycle_source, c.cycle_origin,
               CASE
                   WHEN r.cycle IS NULL THEN 'unknown'
                   WHEN c.eol_date IS NOT NULL AND c.eol_date <= $as_of THEN 'end-of-life'
                   WHEN c.eol_date IS NULL AND c.eol_flag THEN 'end-of-life'
                   WHEN c.eoas_date IS NOT NULL AND c.eoas_date <= $as_of THEN 'end-of-support'
                   WHEN c.eoas_date IS NULL AND c.eoas_flag THEN 'end-of-support'
                   WHEN c.eol_date IS NOT NULL OR c.eol_flag = false THEN 'supported'
                   ELSE 'unknown'
               END AS status
        FROM tl_found f
        JOIN tl_ident i ON i.id = f.id
        LEFT JOIN tl_resolved r ON r.product = f.product AND r.ver IS NOT DISTINCT FROM f.ver
        LEFT JOIN tl_catalogue_cycles c ON c.product = f.product AND c.cycle = r.cycle
        """,
        {"as_of": as_of},
    )
    # one row per matched observation: only what depends on the host
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE tl_rows AS
        SELECT o.host::VARCHAR AS host, o.container::VARCHAR AS container,
               o.node::VARCHAR AS node, i.id, o.installed_at, o.removed_at,
               o.source::VARCHAR AS source
        FROM tl_obs o
        JOIN tl_ident i ON i.name = coalesce(o.name, '') AND i.version = coalesce(o.version, '')
                       AND i.purl = coalesce(o.purl, '') AND i.cpe = coalesce(o.cpe, '')
        WHERE i.id IN (SELECT id FROM tl_ident_match)
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP VIEW tl_matches AS
        SELECT r.host, r.container, r.node, m.name, m.version, m.product, m.how, m.confidence,
               m.cycle,
               coalesce(m.reason, CASE WHEN m.status = 'unknown'
                   THEN 'no end-of-life date or flag for this cycle' END) AS reason,
               m.status, m.release_date, m.eol_date, m.eol_flag, m.eoas_date, m.eoas_flag,
               m.latest, m.cycle_source, m.cycle_origin, r.installed_at, r.removed_at,
               coalesce(r.installed_at >= m.eol_date::TIMESTAMP, false) AS installed_after_eol,
               r.source
        FROM tl_rows r JOIN tl_ident_match m ON m.id = r.id
        """
    )
    for name in ("tl_obs", "tl_catalogue_keys", "tl_resolved"):
        con.unregister(name)
    return Matches(con)
