# ruff: noqa: S608  -- SQL text is assembled here; every file path, column name and value goes through lit()/ident() quoting.
"""The default engine: DuckDB reading the log files directly, one streaming pass per file.

Per file, one query reads the file with explicit columns (never the CSV sniffer, which
misreads Zeek headers), numbers the rows, and keeps only *candidates*: records with a field
that can match (an 8-character domain tail, an IP or hash in the indicator tables, ...).
Those few rows are matched exactly (parent-domain suffixes, URLs, CIDRs) into a hits table;
at the end the hits are grouped per (host, indicator, field, file). Memory stays bounded by
``memory_limit`` (DuckDB spills to its temporary folder).

Line numbers: DuckDB numbers rows, not lines; it skips blank lines and rejects unparsable
ones (reported with their line numbers). The counting pass (:mod:`..readers.textio`) knows
the blank lines, so ``line = row + (skipped lines before it)``, computed with an ASOF join.

Long file: one engine whose SQL builders (per log shape) share the candidate and hit tables'
column layout; split apart, each piece would need the others to be read.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from taintline.errors import Problem
from taintline.hunt import prefilter
from taintline.hunt.certs import CERT_HOST_PREFIX
from taintline.hunt.engines.interface import (
    EngineResult,
    Progress,
    count_records,
    time_window_sql,
)
from taintline.hunt.indicators import TAIL, IndicatorSet
from taintline.hunt.model import (
    Field,
    FileStats,
    HitGroup,
    HuntOptions,
    LogFormat,
    LogSource,
)
from taintline.hunt.readers.textio import LineScan, iter_lines, scan_file

NAME = "duckdb"

#: The candidate relation's columns, in order (``f_<field>``).
CAND_FIELDS: tuple[Field, ...] = tuple(Field)

_HITS_DDL = """
CREATE OR REPLACE TEMP TABLE _hits (
    path VARCHAR, line BIGINT, ts VARCHAR, host VARCHAR,
    itype VARCHAR, ivalue VARCHAR, field VARCHAR, observed VARCHAR
)
"""


def _x(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Run a statement to completion (DuckDB 2 refuses new work while a result is open)."""
    con.execute(sql).fetchall()


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def json_path(keys: Sequence[str]) -> str:
    return "$." + ".".join('"' + k.replace('"', '\\"') + '"' for k in keys)


def ts_us_sql(col: str) -> str:
    """Epoch seconds (``1680082800.123456``), epoch milliseconds, or ISO 8601 -> microseconds."""
    dec = f"TRY_CAST({col} AS DECIMAL(38,6))"
    return (
        f"CASE WHEN {dec} IS NOT NULL THEN CAST(CASE WHEN {dec} > 100000000000"
        f" THEN {dec} * 1000 ELSE {dec} * 1000000 END AS BIGINT)"
        f" ELSE epoch_us(TRY_CAST({col} AS TIMESTAMPTZ)) END"
    )


class DuckDBEngine:
    NAME = NAME

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        self._external = con

    # -- setup ---------------------------------------------------------------------------
    def _connect(self, options: HuntOptions, tmp: str) -> duckdb.DuckDBPyConnection:
        con = self._external or duckdb.connect()
        _x(con, "SET TimeZone = 'UTC'")
        _x(con, f"SET memory_limit = {lit(options.memory_limit)}")
        _x(con, f"SET threads = {int(options.threads)}")
        _x(con, f"SET temp_directory = {lit(tmp)}")
        _x(con, "SET preserve_insertion_order = true")
        return con

    def _load_indicators(self, con: duckdb.DuckDBPyConnection, ind: IndicatorSet) -> None:
        tails, short = ind.tail_keys()
        tables: dict[str, pa.Table] = {
            "_dom": ind.domain_table(),
            "_tail": pa.table({"k": pa.array(tails, pa.string())}),
            "_short": pa.table(
                {
                    "n": pa.array([n for n, vs in short.items() for _ in vs], pa.int32()),
                    "k": pa.array([v for vs in short.values() for v in vs], pa.string()),
                }
            ),
            "_url": ind.url_table(),
            "_urlpre": ind.url_prefix_table(),
            "_ip": ind.ip_table(),
            "_hash": ind.hash_table(),
        }
        for name, table in tables.items():
            con.register(f"{name}_arrow", table)
            _x(con, f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
            con.unregister(f"{name}_arrow")
        self._short_lengths = sorted(short)
        self._cidr = ind.cidr_first_labels() if ind.cidrs else None
        _x(con, _HITS_DDL)

    # -- literal pre-filter (Zeek TSV) ---------------------------------------------------
    _prefiltering = False

    def _fast(self, src: LogSource) -> bool:
        return self._prefiltering and src.format is LogFormat.ZEEK_TSV and bool(src.columns)

    def _prefilter_results(
        self, sources: Sequence[LogSource], ind: IndicatorSet, opts: HuntOptions
    ) -> Iterator[prefilter.PrefilterResult]:
        self._prefiltering = False
        if not (opts.prefilter and prefilter.available()) or ind.empty:
            return iter(())
        patterns = prefilter.literals(
            ind.domains,
            ind.url_hosts(),
            (v for v, _ in ind.ips),
            ind.cidrs,
            (v for v, _ in ind.hashes),
        )
        if not patterns:
            return iter(())
        self._prefiltering = True
        jobs = [(s.path, len(s.columns)) for s in sources if self._fast(s)]
        return prefilter.prefilter_many(
            jobs, patterns, opts.max_line_bytes, max(1, int(opts.threads)), opts.expansion
        )

    def _run_file_fast(
        self,
        con: duckdb.DuckDBPyConnection,
        src: LogSource,
        pre: prefilter.PrefilterResult,
        opts: HuntOptions,
        tmp: str,
    ) -> FileStats:
        """The file's line accounting from the pre-filter pass; DuckDB reads only the
        candidate lines (same SQL as the full path), numbered with their true line numbers."""
        if pre.flooded:
            return self._run_file(con, src, opts, tmp)
        stats = FileStats(path=src.path, format=str(src.format), kind=str(src.kind))
        if pre.error is not None:
            stats.problems.append(Problem(src.path, pre.error))
            return stats
        stats.lines, stats.blank, stats.comments = pre.lines, pre.blank, pre.comments
        stats.garbage = pre.garbage
        if pre.damage:
            stats.problems.append(
                Problem(src.path, f"{pre.damage}; the {pre.lines} line(s) before it were read")
            )
        for line, why in pre.garbage_lines:
            stats.problems.append(Problem(src.path, why, line=line))
        if pre.cut_line:
            stats.problems.append(Problem(src.path, "last line cut short", line=pre.lines))
        stats.records = max(0, stats.lines - stats.blank - stats.comments - stats.garbage)
        if pre.candidates:
            key = _signature(src)
            batch = self._batches.setdefault(key, _Batch(src))
            batch.add(src, pre)
            if batch.size >= BATCH_BYTES:
                self._flush(con, key, opts, tmp)
        return stats

    def _flush(
        self, con: duckdb.DuckDBPyConnection, key: tuple[Any, ...], opts: HuntOptions, tmp: str
    ) -> None:
        """Match a batch; if that fails, read its files in full, each on its own."""
        batch = self._batches[key]
        try:
            self._flush_batch(con, key, opts, tmp)
        except duckdb.Error:
            for src in batch.sources:
                with contextlib.suppress(duckdb.Error):
                    _x(con, f"DELETE FROM _hits WHERE path = {lit(src.path)}")
                self._guarded(con, src, None, opts, tmp)

    def _flush_batch(
        self, con: duckdb.DuckDBPyConnection, key: tuple[Any, ...], opts: HuntOptions, tmp: str
    ) -> None:
        """Match the candidate lines of all files of one layout in one DuckDB pass (the
        per-statement cost, not the few lines, is what a file would otherwise pay)."""
        batch = self._batches.pop(key)
        fd, name = tempfile.mkstemp(prefix="taintline-cand-", suffix=".log", dir=tmp)
        cand_path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(b"\n".join(batch.lines) + b"\n")
            scratch = FileStats(path=batch.src.path)
            skipped = self._candidates(
                con,
                batch.src,
                str(cand_path),
                None,
                opts,
                LineScan(lines=len(batch.lines)),
                scratch,
            )
            self._number_lines(con, skipped)
        except duckdb.Error:
            for src in batch.sources:  # read those files in full instead
                self._guarded(con, src, None, opts, tmp)
            return
        finally:
            cand_path.unlink(missing_ok=True)
        mapping = pa.table(
            {
                "t": pa.array(range(1, len(batch.lines) + 1), pa.int64()),
                "l": pa.array(batch.numbers, pa.int64()),
                "p": pa.array(batch.paths, pa.string()),
            }
        )
        con.register("_linemap", mapping)
        _x(
            con,
            "CREATE OR REPLACE TEMP TABLE _cand AS SELECT c.* REPLACE (m.l AS line),"
            " m.p AS src_path FROM _cand c JOIN _linemap m ON c.line = m.t",
        )
        con.unregister("_linemap")
        self._match(con, batch.src, path_sql="src_path")

    # -- per file ------------------------------------------------------------------------
    def _reader_sql(
        self, src: LogSource, read_path: str, compression: str | None, opts: HuntOptions
    ) -> str:
        common = (
            f"header=false, auto_detect=false, store_rejects=true, rejects_table='_rej',"
            f" rejects_scan='_rej_scan', max_line_size={int(opts.max_line_bytes)},"
            f" compression={lit(compression or 'none')}, strict_mode=true"
        )
        if src.format in (LogFormat.ZEEK_TSV, LogFormat.CSV):
            cols = ", ".join(f"{lit(c)}: 'VARCHAR'" for c in src.columns)
            nulls = ", ".join(lit(v) for v in src.null_values)
            if src.format is LogFormat.ZEEK_TSV:
                quoting = "quote='', escape=''"
            else:
                quoting = "quote='\"', escape='\"'"
            skip = f", skip={src.header_lines}" if src.header_lines else ""
            return (
                f"read_csv({lit(read_path)}, columns={{{cols}}}, delim={lit(src.delimiter)},"
                f" {quoting}, nullstr=[{nulls}]{skip}, {common})"
            )
        # JSON: one VARCHAR per line. The delimiter is a raw control character, which valid
        # JSON cannot contain unescaped: a line holding one is garbage anyway.
        return (
            f"read_csv({lit(read_path)}, columns={{'l': 'VARCHAR'}}, delim={lit(chr(1))},"
            f" quote='', escape='', {common})"
        )

    def _field_exprs(self, src: LogSource) -> tuple[str, str, str]:
        """(select list of f_* columns, 'bad record' expression, first-column expression)."""
        if src.format in (LogFormat.ZEEK_TSV, LogFormat.CSV):
            exprs = [
                f"{ident(src.fields[f][0])} AS f_{f}"
                if f in src.fields
                else f"NULL::VARCHAR AS f_{f}"
                for f in CAND_FIELDS
            ]
            first = ident(src.columns[0]) if src.columns else "NULL"
            return ", ".join(exprs), "false", first
        present = [f for f in CAND_FIELDS if f in src.fields]
        paths = ", ".join(lit(json_path(src.fields[f])) for f in present)
        exprs = []
        for f in CAND_FIELDS:
            if f in present:
                exprs.append(
                    f"CASE WHEN ok THEN nullif(v[{present.index(f) + 1}], '') END AS f_{f}"
                )
            else:
                exprs.append(f"NULL::VARCHAR AS f_{f}")
        inner = (
            f"(SELECT rn0, ok, CASE WHEN ok THEN json_extract_string(l, [{paths or lit('$.__none')}])"
            f" END AS v FROM (SELECT rn0, l, json_valid(l) AND starts_with(ltrim(l), '{{') AS ok"
            f" FROM _src))"
        )
        return ", ".join(exprs), inner, "NULL"

    def _prefilter(self, src: LogSource) -> str:
        conds: list[str] = []
        has = src.fields.__contains__

        def domain_conds(expr: str) -> None:
            conds.append(f"lower(right({expr}, {TAIL})) IN (SELECT k FROM _tail)")
            for n in self._short_lengths:
                conds.append(f"lower(right({expr}, {n})) IN (SELECT k FROM _short WHERE n = {n})")

        if has(Field.DOMAIN):
            domain_conds("f_domain")
            # "host:port" (HTTP Host, proxy logs) and "[v6]" hosts are rare: let them through.
            conds.append("contains(f_domain, ':')")
        if has(Field.SNI):
            domain_conds("f_sni")
        if has(Field.URL):
            conds.append("f_url IS NOT NULL")
        if has(Field.URI):
            conds.append("contains(f_uri, '://')")
        if has(Field.CERT_SUBJECT):
            conds.append("f_cert_subject IS NOT NULL")
        if has(Field.CERT_SAN):
            conds.append("f_cert_san IS NOT NULL")
        for f in (Field.SRC, Field.DST):
            if not has(f):
                continue
            col = f"f_{f}"
            conds.append(f"{col} IN (SELECT value FROM _ip)")
            if self._cidr is not None:
                v4, all4, v6, all6 = self._cidr
                if all4:
                    conds.append(f"contains({col}, '.')")
                elif len(v4) <= 16:
                    # starts_with is far cheaper than splitting every address.
                    conds.extend(f"starts_with({col}, {lit(x + '.')})" for x in v4)
                else:
                    conds.append(f"split_part({col}, '.', 1) IN ({', '.join(lit(x) for x in v4)})")
                if all6:
                    conds.append(f"contains({col}, ':')")
                elif v6:
                    conds.append(
                        f"(contains({col}, ':') AND lower(split_part({col}, ':', 1))"
                        f" IN ({', '.join(lit(x) for x in v6)}))"
                    )
        for f in (Field.MD5, Field.SHA1, Field.SHA256):
            if has(f):
                conds.append(f"lower(f_{f}) IN (SELECT value FROM _hash)")
        return "(" + " OR ".join(conds) + ")" if conds else "false"

    def _run_file(
        self, con: duckdb.DuckDBPyConnection, src: LogSource, opts: HuntOptions, tmp: str
    ) -> FileStats:
        stats = FileStats(path=src.path, format=str(src.format), kind=str(src.kind))
        path = Path(src.path)
        try:
            scan = scan_file(path, Path(tmp), opts.expansion)
        except OSError as exc:
            stats.problems.append(Problem(src.path, f"cannot read: {exc.strerror or exc}"))
            return stats
        stats.lines = scan.lines
        stats.blank = scan.blank_count
        if scan.blank_count > len(scan.blank):
            stats.problems.append(
                Problem(src.path, "too many blank lines: line numbers after them may be off")
            )
        read_path = str(scan.salvaged or path)
        # gzip and zstd are read by DuckDB itself; a bzip2 file (or a damaged one) from the
        # plain copy the counting pass wrote
        compression = src.compression if scan.salvaged is None else None
        if scan.damage:
            stats.problems.append(
                Problem(src.path, f"{scan.damage}; the {scan.lines} line(s) before it were read")
            )
        try:
            skipped = self._candidates(con, src, read_path, compression, opts, scan, stats)
        except duckdb.Error as exc:
            # The reader gave up on the whole file (a stray carriage return breaks DuckDB's
            # strict CSV state machine, for one): clean a copy line by line and read that.
            stats.problems.append(
                Problem(src.path, f"irregular file, read line by line ({str(exc).splitlines()[0]})")
            )
            cleaned, garbage = _clean_copy(Path(read_path), src, opts, tmp)
            try:
                skipped = self._candidates(
                    con, src, str(cleaned), None, opts, scan, stats, extra_skipped=garbage
                )
                stats.garbage += len(garbage)
            finally:
                cleaned.unlink(missing_ok=True)
        finally:
            if scan.salvaged is not None:
                scan.salvaged.unlink(missing_ok=True)
        if scan.cut_line:
            stats.garbage += 1
            stats.problems.append(Problem(src.path, "last line cut short", line=scan.lines))
        self._number_lines(con, skipped)
        self._match(con, src)
        if src.format in (LogFormat.ZEEK_TSV,):
            stats.comments = scan.hash_lines
        count_records(stats, src.header_lines)
        return stats

    def _candidates(
        self,
        con: duckdb.DuckDBPyConnection,
        src: LogSource,
        read_path: str,
        compression: str | None,
        opts: HuntOptions,
        scan: LineScan,
        stats: FileStats,
        extra_skipped: Sequence[int] = (),
    ) -> list[int]:
        """Fill ``_cand`` with the file's candidate rows; returns the skipped line numbers."""
        _x(con, "DROP TABLE IF EXISTS _rej")
        _x(con, "DROP TABLE IF EXISTS _rej_scan")
        reader = self._reader_sql(src, read_path, compression, opts)
        exprs, json_inner, first = self._field_exprs(src)
        pf = self._prefilter(src)
        if src.format in (LogFormat.ZEEK_TSV, LogFormat.CSV):
            not_comment = (
                f"NOT coalesce(starts_with({first}, '#'), false)"
                if src.format is LogFormat.ZEEK_TSV
                else "true"
            )
            sql = f"""
                CREATE OR REPLACE TEMP TABLE _cand AS
                SELECT * FROM (
                    SELECT row_number() OVER () AS rn, false AS bad, {exprs}, {not_comment} AS data
                    FROM {reader}
                ) WHERE data AND {pf}
            """
        else:
            sql = f"""
                CREATE OR REPLACE TEMP TABLE _cand AS
                WITH _src AS (SELECT row_number() OVER () AS rn0, l FROM {reader})
                SELECT * FROM (
                    SELECT rn0 AS rn, NOT ok AS bad, {exprs} FROM {json_inner}
                ) WHERE bad OR {pf}
            """
        _x(con, sql)
        # DuckDB creates the rejects table only when the reader ran: a file without a column
        # that can match (loaded_scripts.log, capture_loss.log) has the filter ``false``, the
        # planner drops the read, and there is no ``_rej`` (a CatalogException before).
        rejects = (
            con.execute(
                "SELECT line, any_value(csv_line), bool_or(error_type = 'INVALID ENCODING')"
                " FROM _rej GROUP BY line ORDER BY line"
            ).fetchall()
            if _temp_table_exists(con, "_rej")
            else []
        )
        # DuckDB's line numbers for encoding errors can be off by one; the counting pass
        # found those lines exactly. A one-column (JSON) read keeps such a line as a NULL
        # row, a delimited read drops it.
        skipped = [int(line) for line, _, enc in rejects if not enc]
        bad_text = sorted(set(scan.bad_utf8))
        if src.format in (LogFormat.ZEEK_TSV, LogFormat.CSV):
            skipped.extend(bad_text)
        for line, text, enc in rejects:
            body = (text or "").lstrip("\r\n")
            if enc or (src.format is LogFormat.ZEEK_TSV and body.startswith("#")):
                continue
            stats.garbage += 1
            if len(stats.problems) < 20:
                stats.problems.append(Problem(src.path, "unparsable line", line=int(line)))
        stats.garbage += len(bad_text)
        for line in bad_text[:5]:
            stats.problems.append(Problem(src.path, "not valid UTF-8", line=line))
        skipped.extend(scan.blank)
        skipped.extend(extra_skipped)
        skipped.extend(range(1, src.header_lines + 1))
        if src.format not in (LogFormat.ZEEK_TSV, LogFormat.CSV):
            rows = con.execute("SELECT count(*) FROM _cand WHERE bad").fetchall()
            stats.garbage += int(rows[0][0])
        return skipped

    def _number_lines(self, con: duckdb.DuckDBPyConnection, skipped: list[int]) -> None:
        skip = pa.table({"s": pa.array(sorted(set(skipped)), pa.int64())})
        con.register("_skip_arrow", skip)
        _x(
            con,
            """
            CREATE OR REPLACE TEMP TABLE _skipb AS
            SELECT b, max(j) AS j FROM (
                SELECT s - row_number() OVER (ORDER BY s) AS b, row_number() OVER (ORDER BY s) AS j
                FROM _skip_arrow
            ) GROUP BY b
            """,
        )
        con.unregister("_skip_arrow")
        _x(
            con,
            """
            CREATE OR REPLACE TEMP TABLE _cand AS
            SELECT c.*, c.rn + coalesce(k.j, 0) AS line
            FROM _cand c ASOF LEFT JOIN _skipb k ON c.rn > k.b
            """,
        )

    def _match(
        self, con: duckdb.DuckDBPyConnection, src: LogSource, path_sql: str | None = None
    ) -> None:
        """Exact matching of ``_cand`` into ``_hits``; ``path_sql`` names the column holding
        each row's file (batched candidates), else every row is from ``src.path``."""
        path = path_sql or lit(src.path)
        label = {f: lit(".".join(src.fields[f])) for f in src.fields}

        def lab(f: Field) -> str:
            return label.get(f, lit(str(f)))

        # A certificate (x509.log) has no host column: its id, resolved by hunt.certs.
        cert = f"{lit(CERT_HOST_PREFIX)} || f_cert_id"
        host = f"coalesce(f_host, f_src, {cert}, '-')"
        host_rev = f"coalesce(f_host, f_dst, {cert}, '-')"
        base = "SELECT * FROM _cand WHERE NOT bad"
        # Domain-like names.
        names = [
            f"struct_pack(fld := {lab(Field.DOMAIN)}, v := CASE WHEN starts_with(f_domain, '[') THEN f_domain ELSE split_part(f_domain, ':', 1) END)",
            f"struct_pack(fld := {lab(Field.SNI)}, v := f_sni)",
            f"struct_pack(fld := {lab(Field.URL)}, v := {_url_host('f_url')})",
            f"struct_pack(fld := {lab(Field.URI)}, v := CASE WHEN contains(f_uri, '://') THEN {_url_host('f_uri')} END)",
            f"struct_pack(fld := {lab(Field.CERT_SUBJECT)}, v := regexp_extract(f_cert_subject, 'CN=([^,/]+)', 1))",
        ]
        sep = lit(src.set_separator)
        _x(
            con,
            f"""
            INSERT INTO _hits
            WITH n AS (
                SELECT {path} AS p, line, f_ts, {host} AS host, u.fld AS field, u.v AS observed,
                       lower(rtrim(trim(u.v), '.')) AS name
                FROM (
                    SELECT *, unnest([{", ".join(names)}]) AS u FROM ({base})
                    UNION ALL
                    SELECT *, struct_pack(fld := {lab(Field.CERT_SAN)}, v := unnest(string_split(translate(f_cert_san, '[]"', ''), {sep}))) AS u
                    FROM ({base}) WHERE f_cert_san IS NOT NULL
                ) WHERE u.v IS NOT NULL AND u.v <> ''
            ), s AS (
                SELECT *, unnest(list_transform(range(1, len(string_split(name, '.')) + 1),
                    lambda i: array_to_string(string_split(name, '.')[i:], '.'))) AS suffix
                FROM n
            )
            SELECT p, line, f_ts, host, 'domain', d.value, field, observed
            FROM s JOIN _dom d ON s.suffix = d.value
            """,
        )
        # URLs.
        http_key = (
            "lower(split_part(f_domain, ':', 1)) || CASE WHEN starts_with(f_uri, '/') THEN f_uri"
            " ELSE '/' || f_uri END"
        )
        _x(
            con,
            f"""
            INSERT INTO _hits
            WITH k AS (
                SELECT {path} AS p, line, f_ts, {host} AS host, field, observed, key, split_part(key, '?', 1) AS key_noq
                FROM (
                    SELECT *, CASE
                        WHEN f_url IS NOT NULL THEN {lab(Field.URL)}
                        ELSE {lab(Field.URI)} END AS field,
                      coalesce(f_url, f_uri) AS observed,
                      CASE
                        WHEN f_url IS NOT NULL THEN {_url_key("f_url")}
                        WHEN contains(f_uri, '://') THEN {_url_key("f_uri")}
                        WHEN f_uri IS NOT NULL AND f_domain IS NOT NULL THEN {http_key}
                      END AS key
                    FROM ({base})
                ) WHERE key IS NOT NULL
            )
            SELECT DISTINCT p, line, f_ts, host, 'url', value, field, observed FROM (
                SELECT k.*, u.value FROM k JOIN _url u ON k.key = u.key
                UNION ALL
                SELECT k.*, u.value FROM k JOIN _url u ON k.key_noq = u.key AND NOT u.has_query
                UNION ALL
                SELECT k.*, p.value FROM k JOIN _urlpre p ON starts_with(k.key_noq, p.prefix)
            )
            """,
        )
        # IPs, either side; CIDR networks through the distinct candidate addresses.
        cidr_rows: list[tuple[str, str]] = []
        if self._cidr is not None and self._indicators is not None:
            addrs = con.execute(
                f"SELECT DISTINCT a FROM (SELECT f_src AS a FROM ({base}) UNION SELECT f_dst FROM ({base})) WHERE a IS NOT NULL"
            ).fetchall()
            cidr_rows = self._indicators.match_cidrs(a for (a,) in addrs)
        cidr = pa.table(
            {
                "addr": pa.array([a for a, _ in cidr_rows], pa.string()),
                "value": pa.array([c for _, c in cidr_rows], pa.string()),
            }
        )
        con.register("_cidrhit", cidr)
        _x(
            con,
            f"""
            INSERT INTO _hits
            SELECT {path}, line, f_ts, {host_rev}, i.type, i.value, {lab(Field.SRC)}, f_src FROM ({base}) c JOIN _ip i ON c.f_src = i.value
            UNION ALL
            SELECT {path}, line, f_ts, {host}, i.type, i.value, {lab(Field.DST)}, f_dst FROM ({base}) c JOIN _ip i ON c.f_dst = i.value
            UNION ALL
            SELECT {path}, line, f_ts, {host_rev}, 'cidr', i.value, {lab(Field.SRC)}, f_src FROM ({base}) c JOIN _cidrhit i ON c.f_src = i.addr
            UNION ALL
            SELECT {path}, line, f_ts, {host}, 'cidr', i.value, {lab(Field.DST)}, f_dst FROM ({base}) c JOIN _cidrhit i ON c.f_dst = i.addr
            UNION ALL
            SELECT {path}, line, f_ts, {host}, h.type, h.value, {lab(Field.MD5)}, f_md5 FROM ({base}) c JOIN _hash h ON lower(c.f_md5) = h.value AND h.type = 'md5'
            UNION ALL
            SELECT {path}, line, f_ts, {host}, h.type, h.value, {lab(Field.SHA1)}, f_sha1 FROM ({base}) c JOIN _hash h ON lower(c.f_sha1) = h.value AND h.type = 'sha1'
            UNION ALL
            SELECT {path}, line, f_ts, {host}, h.type, h.value, {lab(Field.SHA256)}, f_sha256 FROM ({base}) c JOIN _hash h ON lower(c.f_sha256) = h.value AND h.type = 'sha256'
            """,
        )
        con.unregister("_cidrhit")

    def _aggregate(
        self, con: duckdb.DuckDBPyConnection, opts: HuntOptions
    ) -> tuple[list[HitGroup], dict[str, int]]:
        cond = time_window_sql(opts)
        _x(
            con,
            f"""
            CREATE OR REPLACE TEMP TABLE _rows AS
            SELECT * FROM (
                SELECT path, line, host, itype, ivalue, min(field) AS field, min(observed) AS observed,
                       {ts_us_sql("min(ts)")} AS us
                FROM _hits GROUP BY path, line, host, itype, ivalue
            ) WHERE {cond}
            """,
        )
        rows = con.execute(
            f"""
            SELECT host, itype, ivalue, field, path, min(us), max(us), count(*), min(line), max(line),
                   list(line ORDER BY line)[1:{int(opts.max_lines)}], min(observed)
            FROM _rows GROUP BY host, itype, ivalue, field, path
            ORDER BY host, itype, ivalue, field, path
            """
        ).fetchall()
        per_file = dict(
            con.execute("SELECT path, count(DISTINCT line) FROM _rows GROUP BY path").fetchall()
        )
        groups = [HitGroup.from_row(r) for r in rows]
        return groups, {str(k): int(v) for k, v in per_file.items()}

    def _guarded(
        self,
        con: duckdb.DuckDBPyConnection,
        src: LogSource,
        found: prefilter.PrefilterResult | None,
        opts: HuntOptions,
        tmp: str,
    ) -> FileStats:
        """One file; whatever goes wrong in it is that file's problem, not the run's end
        (its partial hits are dropped, the other files' stay)."""
        try:
            if found is not None:
                return self._run_file_fast(con, src, found, opts, tmp)
            return self._run_file(con, src, opts, tmp)
        except (duckdb.Error, OSError, ValueError, UnicodeError) as exc:
            with contextlib.suppress(duckdb.Error):
                _x(con, f"DELETE FROM _hits WHERE path = {lit(src.path)}")
            stats = FileStats(path=src.path, format=str(src.format), kind=str(src.kind))
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            stats.problems.append(
                Problem(src.path, f"not hunted: the reader failed ({type(exc).__name__}: {first})")
            )
            return stats

    # -- the whole run -------------------------------------------------------------------
    def run(
        self,
        sources: Sequence[LogSource],
        indicators: IndicatorSet,
        options: HuntOptions,
        progress: Progress | None = None,
    ) -> EngineResult:
        result = EngineResult()
        self._indicators: IndicatorSet | None = indicators
        with tempfile.TemporaryDirectory(prefix="taintline-hunt-") as tmp:
            con = self._connect(options, tmp)
            try:
                self._load_indicators(con, indicators)
                self._batches: dict[tuple[Any, ...], _Batch] = {}
                pre = self._prefilter_results(sources, indicators, options)
                for src in sources:
                    found = next(pre) if self._fast(src) else None
                    stats = self._guarded(con, src, found, options, tmp)
                    result.stats.append(stats)
                    if progress is not None:
                        progress(src, stats)
                for key in list(self._batches):
                    self._flush(con, key, options, tmp)
                result.groups, per_file = self._aggregate(con, options)
                for stats in result.stats:
                    stats.hits = per_file.get(stats.path, 0)
            finally:
                if self._external is None:
                    con.close()
        return result


def _temp_table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND temporary", [name]
    ).fetchall()
    return bool(rows and rows[0][0])


def _url_rest(col: str) -> str:
    return f"CASE WHEN contains({col}, '://') THEN substr(split_part({col}, '#', 1), strpos({col}, '://') + 3) ELSE split_part({col}, '#', 1) END"


def _url_host(col: str) -> str:
    host = f"split_part({_url_rest(col)}, '/', 1)"
    return f"CASE WHEN starts_with({host}, '[') THEN {host} ELSE split_part({host}, ':', 1) END"


def _url_key(col: str) -> str:
    rest = _url_rest(col)
    host = f"split_part({rest}, '/', 1)"
    clean_host = f"regexp_replace(lower({host}), ':(80|443)$', '')"
    path = f"substr({rest}, length({host}) + 1)"
    return f"{clean_host} || CASE WHEN {path} = '' THEN '/' ELSE {path} END"


def _clean_copy(path: Path, src: LogSource, opts: HuntOptions, tmp: str) -> tuple[Path, list[int]]:
    """A plain copy of ``path`` (plain or compressed) where every line DuckDB could trip on is
    left empty (so line numbers stay the same); returns it and the numbers of the emptied
    (garbage) lines."""
    expected = len(src.columns)
    garbage: list[int] = []
    out_path = Path(tempfile.mkstemp(prefix="taintline-clean-", suffix=".log", dir=tmp)[1])
    try:
        with out_path.open("wb") as out:
            for number, raw in enumerate(iter_lines(path, opts.expansion), start=1):
                line = raw.rstrip(b"\n").rstrip(b"\r")
                ok = True
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError:
                    ok = False
                    text = ""
                if ok and "\r" in text:
                    ok = False
                if ok and expected and text and not text.startswith("#"):
                    ok = text.count(src.delimiter) == expected - 1 or src.format is LogFormat.CSV
                if not ok:
                    garbage.append(number)
                    line = b""
                out.write(line + b"\n")
    except (OSError, EOFError) as exc:
        del exc  # a damaged tail: what was copied stays
    return out_path, garbage


#: Candidate lines are matched in batches of about this many bytes.
BATCH_BYTES = 32 << 20


class _Batch:
    """Candidate lines of several files with the same layout, with their files and lines."""

    def __init__(self, src: LogSource) -> None:
        self.src = src
        self.sources: list[LogSource] = []
        self.lines: list[bytes] = []
        self.numbers: list[int] = []
        self.paths: list[str] = []
        self.size = 0

    def add(self, src: LogSource, pre: prefilter.PrefilterResult) -> None:
        self.sources.append(src)
        self.lines.extend(pre.candidates)
        self.numbers.extend(pre.candidate_lines)
        self.paths.extend([src.path] * len(pre.candidates))
        self.size += sum(len(x) + 1 for x in pre.candidates)


def _signature(src: LogSource) -> tuple[Any, ...]:
    """Files with the same signature are read and matched by the same SQL."""
    return (
        src.format,
        src.kind,
        src.columns,
        tuple(sorted((str(k), v) for k, v in src.fields.items())),
        src.null_values,
        src.set_separator,
        src.delimiter,
        src.header_lines,
    )
