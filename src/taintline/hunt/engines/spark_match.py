# ruff: noqa: S608  -- Spark SQL text is assembled here; names and values go through lit() quoting.
"""The cluster hunt's matching: one pass over the candidate rows, one broadcast join.

The local Spark engine matches with a dozen joins, each reading its cached rows again. On a
cluster nothing is cached (the input is larger than the executors' memory), so each of those
joins would read and parse the logs again. Here every row turns into a list of lookup keys
(built-in functions only, no Python on the executors):

* ``d``: every suffix of every name the row holds (query or Host, SNI, a URL's host, a
  certificate's CN and SANs), as the domain rule matches parent domains;
* ``u`` / ``q`` / ``p``: the URL key, the key without its query, and (only when an
  indicator is a prefix) every ``/``-ended prefix of it; a prefix indicator always ends in
  ``/``, so ``startswith`` is an equality with one of those;
* ``i``: source and destination addresses; ``c``: for IPv4 networks, the address masked to
  each prefix length in use; ``x``: IPv6 addresses that :meth:`IndicatorSet.match_cidrs`
  found inside a network (the driver checks the few candidates, as the local engines do);
* ``md5`` / ``sha1`` / ``sha256``: the lower-cased hashes;
* ``!``: a garbage line, so the per-file garbage count comes from the same pass.

One broadcast hash join against a table of the same keys gives the hits; only the grouped
sightings and per-file counts come home. The rules are those of
:meth:`~taintline.hunt.engines.spark_engine.SparkEngine._match` (tests compare both with
DuckDB row for row).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from taintline.hunt.certs import CERT_HOST_PREFIX
from taintline.hunt.engines.interface import time_window_sql
from taintline.hunt.engines.spark_engine import _ts_us, _url_host, _url_key, lit
from taintline.hunt.indicators import IndicatorSet
from taintline.hunt.model import Field, HitGroup, HuntOptions

#: The pseudo indicator type a garbage line is counted under.
BAD = "!bad"

_V4 = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: Dotted-quad IPv4 as :mod:`ipaddress` reads it (no leading zeros), inside white space and
#: then brackets (``address.strip().strip("[]")``).
_V4_RE = rf"(?U)^\\s*[\\[\\]]*({_V4}(?:\\.{_V4}){{3}})[\\[\\]]*\\s*$"


def frame(spark: SparkSession, table: pa.Table) -> DataFrame:
    """A small driver table as a local relation sent as Arrow: no Python worker runs on the
    executors (a list of rows would be a Python RDD, one job of Python tasks per use)."""
    return spark.createDataFrame(table)


def _stripped(col: str) -> str:
    """``address.strip().strip("[]")`` as :meth:`IndicatorSet.match_cidrs` reads it."""
    return f"trim(BOTH '[]' FROM regexp_replace({col}, '(?U)^\\\\s+|\\\\s+$', ''))"


def _ip4_text(col: str) -> str:
    """The dotted quad :mod:`ipaddress` would read from ``col`` (after stripping white space,
    then brackets), or ``''``: one regular expression per address."""
    return f"regexp_extract({col}, '{_V4_RE}', 1)"


def _ip4_int(text: str) -> str:
    parts = " + ".join(
        f"CAST(split_part({text}, '.', {i + 1}) AS BIGINT) * {256 ** (3 - i)}" for i in range(4)
    )
    return f"CASE WHEN {text} <> '' THEN {parts} END"


def v4_networks(ind: IndicatorSet) -> tuple[list[int], list[tuple[str, str]]]:
    """The IPv4 prefix lengths in use and the ``len:network`` keys of the networks."""
    lens: set[int] = set()
    keys: list[tuple[str, str]] = []
    for text in ind.cidrs:
        net = ipaddress.ip_network(text, strict=False)
        if net.version == 4:
            lens.add(net.prefixlen)
            keys.append((f"{net.prefixlen}:{int(net.network_address)}", text))
    return sorted(lens), keys


def has_v6_networks(ind: IndicatorSet) -> bool:
    return any(ipaddress.ip_network(t, strict=False).version == 6 for t in ind.cidrs)


def v6_candidates(spark: SparkSession, ind: IndicatorSet, cand: str = "cand") -> list[str]:
    """Distinct IPv6-looking addresses whose first hextet may fall in an IPv6 network (a
    superset: :meth:`IndicatorSet.match_cidrs` decides)."""
    _v4, _all4, labels, all6 = ind.cidr_first_labels()
    keep = "true" if all6 else f"first IN ({', '.join(lit(x) for x in [*labels, ''])})"
    rows = spark.sql(
        f"""
        SELECT DISTINCT a FROM (
            SELECT a, lower(ltrim('0', split_part({_stripped("a")}, ':', 1))) AS first
            FROM (SELECT explode(array(f_src, f_dst)) AS a FROM {cand} WHERE data)
            WHERE contains(a, ':')
        ) WHERE {keep}
        """
    ).collect()
    return [str(r[0]) for r in rows]


def key_table(spark: SparkSession, ind: IndicatorSet, v6_hits: list[tuple[str, str]]) -> DataFrame:
    """Every indicator under the lookup keys the rows produce: ``(k, key, itype, ivalue)``."""
    rows: list[tuple[str, str, str, str]] = [("!", "", BAD, "")]
    rows += [("d", v, "domain", v) for v in ind.domains]
    for key, value in ind.urls:
        rows.append(("u", key, "url", value))
        if "?" not in key:
            rows.append(("q", key, "url", value))
    rows += [("p", prefix, "url", value) for prefix, value in ind.url_prefixes]
    rows += [("i", value, kind, value) for value, kind in ind.ips]
    rows += [(kind, value, kind, value) for value, kind in ind.hashes]
    rows += [("c", key, "cidr", text) for key, text in v4_networks(ind)[1]]
    rows += [("x", addr, "cidr", text) for addr, text in v6_hits]
    cols = list(zip(*rows, strict=True))
    table = pa.table(
        {
            n: pa.array(c, pa.string())
            for n, c in zip(("k", "key", "itype", "ivalue"), cols, strict=True)
        }
    )
    return frame(spark, table)


#: The names a row holds that the domain rule looks at: (field, SQL of the raw value).
_NAMES: tuple[tuple[Field, str], ...] = (
    (
        Field.DOMAIN,
        "CASE WHEN startswith(f_domain, '[') THEN f_domain ELSE split_part(f_domain, ':', 1) END",
    ),
    (Field.SNI, "f_sni"),
    (Field.URL, _url_host("f_url")),
    (Field.URI, f"CASE WHEN contains(f_uri, '://') THEN {_url_host('f_uri')} END"),
    (Field.CERT_SUBJECT, "nullif(regexp_extract(f_cert_subject, 'CN=([^,/]+)', 1), '')"),
)


def _keys(ind: IndicatorSet, v6: bool) -> str:
    """The SQL array of lookup keys of one candidate row (columns of ``cand``)."""

    def st(k: str, key: str, host: str, fld: str, obs: str) -> str:
        return f"named_struct('k', {k}, 'key', {key}, 'h', {host}, 'fld', {fld}, 'obs', {obs})"

    # A suffix can only equal an indicator domain with as many labels: one substring_index
    # per label count in use (built-in, compiled), instead of every suffix of every name.
    counts = sorted({d.count(".") + 1 for d in ind.domains})
    parts: list[str] = []
    if counts:
        domain = []
        for j, (fld, _v) in enumerate(_NAMES):
            for n in counts:
                key = f"substring_index(_m{j}, '.', -{n})"
                domain.append(st(lit("d"), key, "_h", lit(str(fld)), f"_v{j}"))
        parts.append(f"array({', '.join(domain)})")
        san = [
            st(
                lit("d"),
                f"substring_index(lower(trim(TRAILING '.' FROM trim(s))), '.', -{n})",
                "_h",
                lit(str(Field.CERT_SAN)),
                "s",
            )
            for n in counts
        ]
        none = st(lit("d"), "CAST(NULL AS STRING)", "_h", "''", "''")
        parts.append(
            f"CASE WHEN f_cert_san IS NULL THEN array({none}) ELSE"
            f" flatten(transform(split(translate(f_cert_san, '[]\"', ''), ','), s -> array({', '.join(san)}))) END"
        )
    url = [
        st(lit("u"), "_ukey", "_h", "_ufld", "_uobs"),
        st(lit("q"), "_knoq", "_h", "_ufld", "_uobs"),
    ]
    parts.append(f"array({', '.join(url)})")
    if ind.url_prefixes:
        prefix = st(
            lit("p"),
            "concat(array_join(slice(split(_knoq, '/'), 1, i), '/'), '/')",
            "_h",
            "_ufld",
            "_uobs",
        )
        size = "size(split(coalesce(_knoq, ''), '/'))"
        parts.append(f"transform(slice(sequence(1, {size}), 1, {size} - 1), i -> {prefix})")
    src = ("f_src", "_hr", lit(str(Field.SRC)))
    dst = ("f_dst", "_h", lit(str(Field.DST)))
    ips = [st(lit("i"), c, h, f, c) for c, h, f in (src, dst)]
    lens = v4_networks(ind)[0]
    for c, h, f in (src, dst):
        for n in lens:
            net = f"shiftleft(shiftright(_{c}4, {32 - n}), {32 - n})"
            ips.append(st(lit("c"), f"concat('{n}:', CAST({net} AS STRING))", h, f, c))
        if v6:
            ips.append(st(lit("x"), c, h, f, c))
    parts.append(f"array({', '.join(ips)})")
    for fld in (Field.MD5, Field.SHA1, Field.SHA256):
        parts.append(
            f"array({st(lit(str(fld)), f'lower(f_{fld})', '_h', lit(str(fld)), f'f_{fld}')})"
        )
    bad = st(lit("!"), "''", "'-'", "''", "''")
    none = st(lit("-"), "CAST(NULL AS STRING)", "'-'", "''", "''")
    # Comments, blank and header lines give no key. Decided here, not by a filter: Spark
    # would push a filter on bad/data into the offsets join and parse every line again
    # there, once per use of the parsed columns.
    return (
        f"CASE WHEN bad THEN array({bad}) WHEN data THEN concat({', '.join(parts)})"
        f" ELSE array({none}) END"
    )


def hits(
    spark: SparkSession, ind: IndicatorSet, keys: DataFrame, labels: DataFrame, v6: bool
) -> DataFrame:
    """Hit rows ``(path, line, ts, host, itype, ivalue, field, observed)`` of the candidate rows
    in the view ``cand`` (``bad`` or ``data`` rows); garbage lines come as itype ``!bad``."""
    cert = f"{lit(CERT_HOST_PREFIX)} || f_cert_id"
    http_key = "lower(split_part(f_domain, ':', 1)) || CASE WHEN startswith(f_uri, '/') THEN f_uri ELSE '/' || f_uri END"
    lens = v4_networks(ind)[0]
    ip4 = f", {_ip4_text('f_src')} AS _i_src, {_ip4_text('f_dst')} AS _i_dst" if lens else ""
    ints = f", {_ip4_int('_i_src')} AS _f_src4, {_ip4_int('_i_dst')} AS _f_dst4" if lens else ""
    raw = ", ".join(f"{sql} AS _v{j}" for j, (_f, sql) in enumerate(_NAMES))
    norm = ", ".join(
        f"lower(trim(TRAILING '.' FROM trim(_v{j}))) AS _m{j}" for j in range(len(_NAMES))
    )
    prepared = spark.sql(
        f"""
        SELECT *, split_part(_ukey, '?', 1) AS _knoq, {norm}{ints} FROM (
            SELECT path, line, f_ts, bad, data, f_src, f_dst, f_cert_san, f_cert_subject, f_domain, f_sni,
                   f_url, f_uri, f_md5, f_sha1, f_sha256,
                   coalesce(f_host, f_src, {cert}, '-') AS _h,
                   coalesce(f_host, f_dst, {cert}, '-') AS _hr,
                   CASE WHEN f_url IS NOT NULL THEN '{Field.URL}' ELSE '{Field.URI}' END AS _ufld,
                   coalesce(f_url, f_uri) AS _uobs,
                   CASE WHEN f_url IS NOT NULL THEN {_url_key("f_url")}
                        WHEN contains(f_uri, '://') THEN {_url_key("f_uri")}
                        WHEN f_uri IS NOT NULL AND f_domain IS NOT NULL THEN {http_key}
                   END AS _ukey{ip4}, {raw}
            FROM cand
        )
        """
    )
    exploded = prepared.select(
        "path", "line", "f_ts", F.explode(F.expr(_keys(ind, v6))).alias("u")
    ).where(F.col("u.key").isNotNull())
    joined = exploded.join(
        F.broadcast(keys), (F.col("u.k") == F.col("k")) & (F.col("u.key") == F.col("key"))
    )
    out = joined.select(
        "path",
        "line",
        F.col("f_ts").alias("ts"),
        F.col("u.h").alias("host"),
        "itype",
        "ivalue",
        F.col("u.fld").alias("fld"),
        F.col("u.obs").alias("observed"),
    )
    # The observed field's name differs per file (the reader's column name).
    return (
        out.join(F.broadcast(labels), ["path", "fld"], "left")
        .withColumn("field", F.coalesce("label", "fld"))
        .drop("label", "fld")
    )


def label_table(spark: SparkSession, labels: dict[str, dict[str, str]]) -> DataFrame:
    rows = [(p, f, name) for p, m in labels.items() for f, name in m.items() if name != f]
    cols: list[Sequence[str]] = list(zip(*rows, strict=True)) if rows else [(), (), ()]
    return frame(
        spark,
        pa.table(
            {
                n: pa.array(c, pa.string())
                for n, c in zip(("path", "fld", "label"), cols, strict=True)
            }
        ),
    )


def aggregate(
    spark: SparkSession, rows: DataFrame, opts: HuntOptions
) -> tuple[list[HitGroup], dict[str, int], dict[str, int]]:
    """Hit groups, distinct hit lines per file and garbage lines per file, like
    :meth:`SparkEngine._aggregate` (one job for the groups, one small one for the counts)."""
    rows.createOrReplaceTempView("hits")
    cond = time_window_sql(opts)
    # A garbage line has no line number here: all of a file's fall into one row, with n.
    hrows = spark.sql(
        f"""
        SELECT path, line, host, itype, ivalue, min(field) AS field, min(observed) AS observed,
               {_ts_us("min(ts)")} AS us, count(*) AS n
        FROM (SELECT path, CASE WHEN itype = '{BAD}' THEN NULL ELSE line END AS line, ts, host,
                     itype, ivalue, field, observed FROM hits)
        GROUP BY path, line, host, itype, ivalue
        """
    ).persist()
    try:
        hrows.createOrReplaceTempView("hrows")
        got = spark.sql(
            f"""
            SELECT host, itype, ivalue, field, path, min(us), max(us), count(*), min(line), max(line),
                   slice(array_sort(collect_list(line)), 1, {int(opts.max_lines)}), min(observed)
            FROM hrows WHERE itype <> '{BAD}' AND {cond}
            GROUP BY host, itype, ivalue, field, path
            """
        ).collect()
        counts = spark.sql(
            f"""
            SELECT path, size(collect_set(CASE WHEN itype <> '{BAD}' AND {cond} THEN line END)),
                   sum(CASE WHEN itype = '{BAD}' THEN n ELSE 0 END)
            FROM hrows GROUP BY path
            """
        ).collect()
    finally:
        hrows.unpersist()
    groups = [HitGroup.from_row(r) for r in got]
    groups.sort(key=lambda g: (g.host, g.indicator_type, g.indicator_value, g.field, g.path))
    per_file = {str(r[0]): int(r[1]) for r in counts if int(r[1])}
    garbage = {str(r[0]): int(r[2] or 0) for r in counts}
    return groups, per_file, garbage
