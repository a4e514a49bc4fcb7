# ruff: noqa: S608  -- Spark SQL text is assembled here; names and values go through lit() quoting.
"""The same hunt on Apache Spark (PySpark), for log volumes beyond one machine.

Each file is read as text lines numbered with ``zipWithIndex`` (exact line numbers), parsed
with the layout its reader described (``split`` for Zeek TSV, ``from_csv`` for CSV,
``get_json_object`` for JSON), and matched with DataFrame joins that follow the rules of
:mod:`taintline.hunt.engines.interface`, written to agree row for row with the DuckDB engine
(tests compare them). Counting (lines, blank, ``#`` lines, invalid UTF-8, damaged gzip) is
the same byte-level pass both engines share.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from taintline import sparklocal
from taintline.errors import Problem
from taintline.hunt.certs import CERT_HOST_PREFIX
from taintline.hunt.engines.interface import (
    EngineResult,
    Progress,
    count_records,
    time_window_sql,
)
from taintline.hunt.indicators import IndicatorSet
from taintline.hunt.model import (
    Field,
    FileStats,
    HitGroup,
    HuntOptions,
    LogFormat,
    LogSource,
)
from taintline.hunt.readers.textio import scan_file

NAME = "spark"
CAND_FIELDS: tuple[Field, ...] = tuple(Field)


def lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


#: The hunt's settings: times in UTC, SQL casts that give NULL rather than fail.
HUNT_CONF = {"spark.sql.session.timeZone": "UTC", "spark.sql.ansi.enabled": "false"}


def local_session(cores: int = 2) -> SparkSession:
    """The hunt's local session."""
    return sparklocal.local_session("taintline-hunt", cores, HUNT_CONF)


def _needs_copy(src: LogSource) -> bool:
    """Whether Spark's text source would not decompress this file by itself."""
    native = {"gzip": (".gz",), "bzip2": (".bz2",)}
    return src.compression is not None and not src.path.lower().endswith(
        native.get(src.compression, ("\0",))
    )


def _ts_us(col: str) -> str:
    dec = f"CAST({col} AS DECIMAL(38,6))"
    return (
        f"CASE WHEN {dec} IS NOT NULL THEN CAST(CASE WHEN {dec} > 100000000000 THEN {dec} * 1000"
        f" ELSE {dec} * 1000000 END AS BIGINT) ELSE unix_micros(to_timestamp({col})) END"
    )


def _url_rest(c: str) -> str:
    return (
        f"CASE WHEN contains({c}, '://') THEN substr(split_part({c}, '#', 1), instr({c}, '://') + 3)"
        f" ELSE split_part({c}, '#', 1) END"
    )


def _url_host(c: str) -> str:
    host = f"split_part({_url_rest(c)}, '/', 1)"
    return f"CASE WHEN startswith({host}, '[') THEN {host} ELSE split_part({host}, ':', 1) END"


def _url_key(c: str) -> str:
    rest = _url_rest(c)
    host = f"split_part({rest}, '/', 1)"
    clean = f"regexp_replace(lower({host}), ':(80|443)$', '')"
    path = f"substr({rest}, length({host}) + 1)"
    return f"{clean} || CASE WHEN {path} = '' THEN '/' ELSE {path} END"


def parsed_input(src: LogSource, value: Column) -> Column | None:
    """What a line is split into before its fields are picked: the Zeek TSV columns, a CSV
    record; nothing for JSON (fields are read by path)."""
    if src.format is LogFormat.ZEEK_TSV:
        return F.split(value, "\t", -1)
    if src.format is LogFormat.CSV:
        schema = ", ".join(f"`{c.replace('`', '')}` STRING" for c in src.columns)
        return F.expr(
            f"from_csv(value, {lit(schema)}, map('sep', {lit(src.delimiter)}, 'mode', 'PERMISSIVE'))"
        )
    return None


def layout_columns(
    src: LogSource, line: Column, blank: Column, skip: Column, parsed: Column | None
) -> tuple[Column, Column, list[Column]]:
    """``bad`` (garbage) and ``data`` flags and the candidate fields (in
    :data:`CAND_FIELDS` order) of a line of ``src``'s layout; ``parsed`` is
    :func:`parsed_input`'s column, ``skip`` marks lines that are garbage whatever they hold."""
    value = F.col("value")
    cols: list[Column] = []
    if src.format is LogFormat.ZEEK_TSV and parsed is not None:
        nulls = list(src.null_values)
        for f in CAND_FIELDS:
            if f in src.fields:
                raw = parsed.getItem(src.columns.index(src.fields[f][0]))
                cols.append(F.when(raw.isin(nulls), None).otherwise(raw))
            else:
                cols.append(F.lit(None).cast("string"))
        comment = value.startswith("#")
        bad = ~comment & ~blank & ((F.size(parsed) != len(src.columns)) | skip)
        return bad, ~comment & ~blank & ~bad, cols
    if src.format is LogFormat.CSV and parsed is not None:
        for f in CAND_FIELDS:
            if f in src.fields:
                raw = parsed.getField(src.fields[f][0])
                cols.append(F.when(raw.isin(list(src.null_values)), None).otherwise(raw))
            else:
                cols.append(F.lit(None).cast("string"))
        header = line <= src.header_lines
        bad = ~header & ~blank & skip
        return bad, ~header & ~blank & ~bad, cols
    # JSON
    ok = F.expr("get_json_object(value, '$') IS NOT NULL AND startswith(ltrim(value), '{')")
    for f in CAND_FIELDS:
        if f in src.fields:
            path = "$" + "".join(f"['{k}']" for k in src.fields[f])
            raw = F.get_json_object(value, path)
            cols.append(F.when(raw == "", None).otherwise(raw))
        else:
            cols.append(F.lit(None).cast("string"))
    bad = ~blank & (~ok | skip)
    return bad, ~blank & ~bad, cols


class SparkEngine:
    NAME = NAME

    def __init__(self, spark: SparkSession | None = None) -> None:
        self._spark = spark

    # -- reading -------------------------------------------------------------------------
    def _lines(self, spark: SparkSession, path: str) -> DataFrame:
        text = spark.read.option("lineSep", "\n").text(path)
        numbered = text.rdd.zipWithIndex().map(lambda pair: (pair[1] + 1, pair[0][0]))
        schema = T.StructType(
            [T.StructField("line", T.LongType()), T.StructField("value", T.StringType())]
        )
        return spark.createDataFrame(numbered, schema).withColumn(
            "value", F.regexp_replace("value", "\r$", "")
        )

    def _parse(self, df: DataFrame, src: LogSource, skip: Sequence[int] | Column) -> DataFrame:
        """Candidate columns f_* plus ``bad`` (garbage) and ``data`` flags. ``skip`` marks lines
        that are garbage whatever they hold (invalid UTF-8, over-long): line numbers, or a
        column expression when the cluster decides."""
        keep = [c for c in ("path",) if c in df.columns]  # the cluster path carries it
        df = df.withColumn("blank", F.col("value") == "")
        if isinstance(skip, Column):
            df = df.withColumn("skip", skip)
        elif skip:
            df = df.withColumn("skip", F.col("line").isin(list(skip)))
        else:
            df = df.withColumn("skip", F.lit(False))
        parsed = parsed_input(src, F.col("value"))
        if parsed is not None:
            df = df.withColumn("_parsed", parsed)
        bad, data, cols = layout_columns(
            src,
            F.col("line"),
            F.col("blank"),
            F.col("skip"),
            None if parsed is None else F.col("_parsed"),
        )
        return df.select(
            *keep,
            "line",
            bad.alias("bad"),
            data.alias("data"),
            *[c.alias(f"f_{f}") for f, c in zip(CAND_FIELDS, cols, strict=True)],
        )

    # -- matching ------------------------------------------------------------------------
    def _match(
        self, spark: SparkSession, ind: IndicatorSet, labels: dict[str, dict[str, str]]
    ) -> DataFrame:
        def lab(f: Field) -> str:
            # The observed field's name differs per file: look it up by path.
            cases = " ".join(
                f"WHEN path = {lit(p)} THEN {lit(m[str(f)])}"
                for p, m in labels.items()
                if str(f) in m
            )
            return f"CASE {cases} ELSE {lit(str(f))} END" if cases else lit(str(f))

        # A certificate (x509.log) has no host column: its id, resolved by hunt.certs.
        cert = f"{lit(CERT_HOST_PREFIX)} || f_cert_id"
        host = f"coalesce(f_host, f_src, {cert}, '-')"
        host_rev = f"coalesce(f_host, f_dst, {cert}, '-')"
        names = [
            f"named_struct('fld', {lab(Field.DOMAIN)}, 'v', CASE WHEN startswith(f_domain, '[') THEN f_domain ELSE split_part(f_domain, ':', 1) END)",
            f"named_struct('fld', {lab(Field.SNI)}, 'v', f_sni)",
            f"named_struct('fld', {lab(Field.URL)}, 'v', {_url_host('f_url')})",
            f"named_struct('fld', {lab(Field.URI)}, 'v', CASE WHEN contains(f_uri, '://') THEN {_url_host('f_uri')} END)",
            f"named_struct('fld', {lab(Field.CERT_SUBJECT)}, 'v', nullif(regexp_extract(f_cert_subject, 'CN=([^,/]+)', 1), ''))",
        ]
        out = []
        out.append(
            spark.sql(
                f"""
                WITH n AS (
                    SELECT path, line, f_ts, {host} AS host, u.fld AS field, u.v AS observed,
                           lower(trim(TRAILING '.' FROM trim(u.v))) AS name
                    FROM (
                        SELECT path, line, f_ts, f_host, f_src, f_cert_id, explode(array({", ".join(names)})) AS u FROM cand
                        UNION ALL
                        SELECT path, line, f_ts, f_host, f_src, f_cert_id, named_struct('fld', {lab(Field.CERT_SAN)}, 'v', s) AS u
                        FROM (SELECT *, explode(split(translate(f_cert_san, '[]"', ''), ',')) AS s FROM cand WHERE f_cert_san IS NOT NULL)
                    ) WHERE u.v IS NOT NULL AND u.v <> ''
                ), s AS (
                    SELECT *, explode(transform(sequence(1, size(split(name, '[.]'))),
                        i -> array_join(slice(split(name, '[.]'), i, size(split(name, '[.]')) - i + 1), '.'))) AS suffix
                    FROM n
                )
                SELECT path, line, f_ts AS ts, host, 'domain' AS itype, d.value AS ivalue, field, observed
                FROM s JOIN dom d ON s.suffix = d.value
                """
            )
        )
        http_key = "lower(split_part(f_domain, ':', 1)) || CASE WHEN startswith(f_uri, '/') THEN f_uri ELSE '/' || f_uri END"
        spark.sql(
            f"""
            SELECT path, line, f_ts, {host} AS host, field, observed, key, split_part(key, '?', 1) AS key_noq
            FROM (
                SELECT *, CASE WHEN f_url IS NOT NULL THEN {lab(Field.URL)} ELSE {lab(Field.URI)} END AS field,
                       coalesce(f_url, f_uri) AS observed,
                       CASE WHEN f_url IS NOT NULL THEN {_url_key("f_url")}
                            WHEN contains(f_uri, '://') THEN {_url_key("f_uri")}
                            WHEN f_uri IS NOT NULL AND f_domain IS NOT NULL THEN {http_key}
                       END AS key
                FROM cand
            ) WHERE key IS NOT NULL
            """
        ).createOrReplaceTempView("ukeys")
        out.append(
            spark.sql(
                """
                SELECT DISTINCT path, line, f_ts AS ts, host, 'url' AS itype, value AS ivalue, field, observed FROM (
                    SELECT k.*, u.value FROM ukeys k JOIN url u ON k.key = u.key
                    UNION ALL
                    SELECT k.*, u.value FROM ukeys k JOIN url u ON k.key_noq = u.key AND NOT u.has_query
                    UNION ALL
                    SELECT k.*, p.value FROM ukeys k JOIN urlpre p ON startswith(k.key_noq, p.prefix)
                )
                """
            )
        )
        cidr_rows: list[tuple[str, str]] = []
        if ind.cidrs:
            addrs = spark.sql(
                "SELECT DISTINCT a FROM (SELECT f_src AS a FROM cand UNION SELECT f_dst FROM cand) WHERE a IS NOT NULL"
            ).collect()
            cidr_rows = ind.match_cidrs(r[0] for r in addrs)
        spark.createDataFrame(
            cidr_rows,
            T.StructType(
                [T.StructField("addr", T.StringType()), T.StructField("value", T.StringType())]
            ),
        ).createOrReplaceTempView("cidrhit")
        out.append(
            spark.sql(
                f"""
                SELECT path, line, f_ts AS ts, {host_rev} AS host, i.type AS itype, i.value AS ivalue, {lab(Field.SRC)} AS field, f_src AS observed FROM cand c JOIN ip i ON c.f_src = i.value
                UNION ALL
                SELECT path, line, f_ts, {host}, i.type, i.value, {lab(Field.DST)}, f_dst FROM cand c JOIN ip i ON c.f_dst = i.value
                UNION ALL
                SELECT path, line, f_ts, {host_rev}, 'cidr', i.value, {lab(Field.SRC)}, f_src FROM cand c JOIN cidrhit i ON c.f_src = i.addr
                UNION ALL
                SELECT path, line, f_ts, {host}, 'cidr', i.value, {lab(Field.DST)}, f_dst FROM cand c JOIN cidrhit i ON c.f_dst = i.addr
                UNION ALL
                SELECT path, line, f_ts, {host}, h.type, h.value, {lab(Field.MD5)}, f_md5 FROM cand c JOIN hash h ON lower(c.f_md5) = h.value AND h.type = 'md5'
                UNION ALL
                SELECT path, line, f_ts, {host}, h.type, h.value, {lab(Field.SHA1)}, f_sha1 FROM cand c JOIN hash h ON lower(c.f_sha1) = h.value AND h.type = 'sha1'
                UNION ALL
                SELECT path, line, f_ts, {host}, h.type, h.value, {lab(Field.SHA256)}, f_sha256 FROM cand c JOIN hash h ON lower(c.f_sha256) = h.value AND h.type = 'sha256'
                """
            )
        )
        hits = out[0]
        for df in out[1:]:
            hits = hits.unionByName(df.toDF(*hits.columns))
        return hits

    # -- the whole run -------------------------------------------------------------------
    def run(
        self,
        sources: Sequence[LogSource],
        indicators: IndicatorSet,
        options: HuntOptions,
        progress: Progress | None = None,
    ) -> EngineResult:
        with sparklocal.session_scope(
            "taintline-hunt", options.spark, HUNT_CONF, max(1, options.threads), self._spark
        ) as spark:
            return self._run(spark, sources, indicators, options, progress)

    def _run(
        self,
        spark: SparkSession,
        sources: Sequence[LogSource],
        indicators: IndicatorSet,
        options: HuntOptions,
        progress: Progress | None = None,
    ) -> EngineResult:
        result = EngineResult()
        frames: list[DataFrame] = []
        labels: dict[str, dict[str, str]] = {}
        parsed_by_path: dict[str, DataFrame] = {}
        cleanup: list[Path] = []
        header: dict[str, int] = {}
        for src in sources:
            stats = FileStats(path=src.path, format=str(src.format), kind=str(src.kind))
            try:
                # Spark picks its codec by the name ending: any other compressed file
                # (a gzip log named dns.log, zstd without a native codec) is read from a
                # plain copy the counting pass writes.
                scan = scan_file(
                    Path(src.path), limit=options.expansion, plain_copy=_needs_copy(src)
                )
            except OSError as exc:
                stats.problems.append(Problem(src.path, f"cannot read: {exc.strerror or exc}"))
                result.stats.append(stats)
                continue
            stats.lines, stats.blank = scan.lines, scan.blank_count
            if scan.damage:
                stats.problems.append(
                    Problem(
                        src.path, f"{scan.damage}; the {scan.lines} line(s) before it were read"
                    )
                )
            if scan.salvaged is not None:
                cleanup.append(scan.salvaged)
            read_path = str(scan.salvaged or src.path)
            parsed = self._parse(self._lines(spark, read_path), src, sorted(set(scan.bad_utf8)))
            frames.append(parsed.withColumn("path", F.lit(src.path)))
            stats.garbage = 1 if scan.cut_line else 0
            if src.format is LogFormat.ZEEK_TSV:
                stats.comments = scan.hash_lines
            labels[src.path] = {str(f): ".".join(v) for f, v in src.fields.items()}
            result.stats.append(stats)
            header[src.path] = src.header_lines
        all_rows: DataFrame | None = None
        for df in frames:
            all_rows = df if all_rows is None else all_rows.unionByName(df)
        if all_rows is not None:
            all_rows = all_rows.cache()
            parsed_by_path["*"] = all_rows
            counts = {
                r["path"]: int(r["bad"] or 0)
                for r in all_rows.groupBy("path")
                .agg(F.sum(F.col("bad").cast("long")).alias("bad"))
                .collect()
            }
            for stats in result.stats:
                stats.garbage += counts.get(stats.path, 0)
                count_records(stats, header.get(stats.path, 0))
                if progress is not None:
                    progress(next(s for s in sources if s.path == stats.path), stats)
        try:
            self._register(spark, indicators)
            if all_rows is not None:
                all_rows.where("data").createOrReplaceTempView("cand")
                result.groups, per_file = self._aggregate(
                    spark, self._match(spark, indicators, labels), options
                )
                for stats in result.stats:
                    stats.hits = per_file.get(stats.path, 0)
        finally:
            for df in parsed_by_path.values():
                df.unpersist()
            for path in cleanup:
                path.unlink(missing_ok=True)
        return result

    def _register(self, spark: SparkSession, ind: IndicatorSet) -> None:
        tables: dict[str, Any] = {
            "dom": ind.domain_table(),
            "url": ind.url_table(),
            "urlpre": ind.url_prefix_table(),
            "ip": ind.ip_table(),
            "hash": ind.hash_table(),
        }
        for name, table in tables.items():
            # Sent as Arrow (a local relation): a list of rows would run Python on the executors.
            spark.createDataFrame(table).createOrReplaceTempView(name)

    def _aggregate(
        self, spark: SparkSession, hits: DataFrame, opts: HuntOptions
    ) -> tuple[list[HitGroup], dict[str, int]]:
        hits.createOrReplaceTempView("hits")
        cond = time_window_sql(opts)
        spark.sql(
            f"""
            SELECT * FROM (
                SELECT path, line, host, itype, ivalue, min(field) AS field, min(observed) AS observed,
                       {_ts_us("min(ts)")} AS us
                FROM hits GROUP BY path, line, host, itype, ivalue
            ) WHERE {cond}
            """
        ).cache().createOrReplaceTempView("hrows")
        rows = spark.sql(
            f"""
            SELECT host, itype, ivalue, field, path, min(us), max(us), count(*), min(line), max(line),
                   slice(array_sort(collect_list(line)), 1, {int(opts.max_lines)}), min(observed)
            FROM hrows GROUP BY host, itype, ivalue, field, path
            """
        ).collect()
        per_file = {
            r[0]: int(r[1])
            for r in spark.sql(
                "SELECT path, count(DISTINCT line) FROM hrows GROUP BY path"
            ).collect()
        }
        groups = [HitGroup.from_row(r) for r in rows]
        groups.sort(key=lambda g: (g.host, g.indicator_type, g.indicator_value, g.field, g.path))
        spark.catalog.uncacheTable("hrows")
        return groups, per_file
