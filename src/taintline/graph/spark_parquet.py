"""The cascade on a Spark cluster, reading the graph where it lives (Parquet).

:func:`taintline.graph.sparkengine.propagate_spark` pushes arcs compiled on the driver into
Spark; that caps the graph at the driver's memory. Here the cluster reads the edge table
itself (``taintline export --format parquet`` writes ``edges.parquet``; other tools may write
the same columns, see ``docs/cascade.md``), compiles the arcs with the rule table (a join, no
driver arrays), runs the same two steps as the other engines and writes the reached nodes with
their explaining parents back as Parquet. Only that result table comes home, to be stored in
the case.

Nodes are named ``KIND:KEY`` strings (keys lower-cased except build ids, as the case does),
so no global numbering is needed. Ties between equally good explanations are broken in the
same order as the NumPy engine (rule order, then the case's edge order), so the three engines
agree node for node (tested).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taintline.case import Case
from taintline.errors import InputError
from taintline.graph.cascade import ALWAYS, NEVER
from taintline.graph.rules import DEFAULT_RULES, Behaviour, Direction, Rule
from taintline.graph.sparkengine import (
    by_source,
    explain_depths,
    explaining_arcs,
    propagate,
    tight_arcs_df,
)
from taintline.graph.store import Seed, store_reached, to_us

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: At most this many rounds (each round improves a node or stops).

#: The columns an edge table must have (more are ignored).
EDGE_SCHEMA = (
    "kind",
    "src_kind",
    "src_key",
    "dst_kind",
    "dst_key",
    "valid_from",
    "valid_until",
    "confidence",
)

#: The tie-break order of arcs: rule number, then the case's edge order.
_ARC_ORDER = ("rno", "kind", "sk", "skey", "dk", "dkey", "vf_o", "vu_o", "source", "recorded_at")

Stage = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ParquetCascade:
    run_id: str
    reached: int
    rounds: int
    seconds: float
    output: str | None


def _norm(kind: Column, key: Column) -> Column:
    from pyspark.sql import functions as F

    return F.when(kind == "build", key).otherwise(F.lower(key))


def read_edges(spark: SparkSession, uri: str) -> DataFrame:
    """The edge table at ``uri``, checked for the documented columns."""
    try:
        edges = spark.read.parquet(uri)
        names = set(edges.columns)
    except Exception as exc:
        text = str(exc).strip().splitlines()
        raise InputError(
            uri, f"cannot read the edge table: {text[0][:300] if text else exc}"
        ) from exc
    missing = [c for c in EDGE_SCHEMA if c not in names]
    if missing:
        raise InputError(uri, f"not an edge table: missing column(s) {', '.join(missing)}")
    return edges


def compile_arcs_df(edges: DataFrame, rules: Sequence[Rule] = DEFAULT_RULES) -> DataFrame:
    """One arc per (edge, matching rule), as :func:`taintline.graph.cascade.compile_arcs`:
    the edge table joined with the (broadcast) rule table, so it is read once."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    spark = edges.sparkSession
    base = edges.select(
        F.col("kind").cast("string").alias("kind"),
        F.col("src_kind").cast("string").alias("sk"),
        _norm(F.col("src_kind"), F.col("src_key").cast("string")).alias("skey"),
        F.col("dst_kind").cast("string").alias("dk"),
        _norm(F.col("dst_kind"), F.col("dst_key").cast("string")).alias("dkey"),
        F.coalesce(F.unix_micros(F.col("valid_from").cast("timestamp")), F.lit(ALWAYS)).alias("vf"),
        F.coalesce(F.unix_micros(F.col("valid_until").cast("timestamp")), F.lit(NEVER)).alias("vu"),
        F.col("confidence").cast("double").alias("confidence"),
        (F.col("source") if "source" in edges.columns else F.lit(""))
        .cast("string")
        .alias("source"),
        (F.col("recorded_at") if "recorded_at" in edges.columns else F.lit(None))
        .cast("timestamp")
        .alias("recorded_at"),
        F.col("valid_from").cast("timestamp").alias("valid_from"),
        F.col("valid_until").cast("timestamp").alias("valid_until"),
    )
    rule_table = spark.createDataFrame(
        [
            (
                str(rule.edge),
                rno,
                rule.name,
                rule.direction is Direction.FORWARD,
                rule.behaviour is Behaviour.INSTANT,
                float(rule.factor),
            )
            for rno, rule in enumerate(rules)
        ],
        T.StructType(
            [
                T.StructField("_edge", T.StringType()),
                T.StructField("rno", T.IntegerType()),
                T.StructField("rule", T.StringType()),
                T.StructField("_fwd", T.BooleanType()),
                T.StructField("_instant", T.BooleanType()),
                T.StructField("_factor", T.DoubleType()),
            ]
        ),
    )
    src = F.concat_ws(":", "sk", "skey")
    dst = F.concat_ws(":", "dk", "dkey")
    return base.join(F.broadcast(rule_table), F.col("kind") == F.col("_edge")).select(
        F.when(F.col("_fwd"), src).otherwise(dst).alias("frm"),
        F.when(F.col("_fwd"), dst).otherwise(src).alias("to"),
        F.col("vf").alias("lo"),
        F.when(F.col("_instant"), F.col("vf")).otherwise(F.col("vu")).alias("hi"),
        (F.col("confidence") * F.col("_factor")).alias("factor"),
        "rno",
        "rule",
        # NULLS FIRST for valid_from and NULLS LAST for valid_until, as the case orders edges.
        F.col("vf").alias("vf_o"),
        F.col("vu").alias("vu_o"),
        *[c for c in base.columns if c not in ("confidence", "vf", "vu")],
    )


def run_parquet_cascade(
    spark: SparkSession,
    case: Case,
    edges_uri: str,
    seeds: Sequence[Seed],
    *,
    output: str | None = None,
    rules: Sequence[Rule] = DEFAULT_RULES,
    stage: Stage | None = None,
) -> ParquetCascade:
    """Propagate from ``seeds`` over the edge table at ``edges_uri`` on the cluster; write
    the reached nodes to ``output`` (Parquet, when given) and into the case."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    say = stage or (lambda _text: None)
    started = time.monotonic()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    say("reading the edge table")
    # The table is read twice: the arcs' narrow columns are held for the rounds; the whole
    # rows are read again for the final choice of the explaining facts (a read is cheaper
    # than holding every column of every arc in the executors' memory).
    arcs = compile_arcs_df(read_edges(spark, edges_uri), rules)
    narrow = by_source(arcs)
    seed_rows: dict[str, int] = {}
    for s in seeds:
        node = f"{s.ref.kind}:{s.ref.key if str(s.ref.kind) == 'build' else s.ref.key.lower()}"
        t = to_us(s.time, ALWAYS)
        seed_rows[node] = min(t, seed_rows.get(node, t))
    # Seeds that are not in the graph are reported, not silently dropped (one small job).
    names = list(seed_rows)
    ends = F.explode(F.array("frm", "to")).alias("node")
    present = {
        r["node"] for r in narrow.select(ends).where(F.col("node").isin(names)).distinct().collect()
    }
    missing = [n for n in names if n not in present]
    schema = T.StructType([T.StructField("node", T.StringType()), T.StructField("t", T.LongType())])
    seed_df = spark.createDataFrame(
        [(n, t) for n, t in seed_rows.items() if n in present], schema
    ).localCheckpoint()
    say("earliest compromise times")
    arrival, rounds = propagate(
        seed_df, narrow, lambda n: say(f"earliest compromise times: round {n}")
    )
    say("explaining paths")
    # Roots: seeds reached at their own seed time.
    roots = seed_df.join(arrival, ["node", "t"], "left_semi").select("node")
    visited, _depth = explain_depths(
        tight_arcs_df(narrow, arrival),
        roots,
        lambda n: say(f"explaining paths: depth {n}"),
    )
    say("choosing the explaining facts")
    info = visited.join(arrival, "node")
    order = [
        F.col(c).asc_nulls_first() if c == "vf_o" else F.col(c).asc_nulls_last() for c in _ARC_ORDER
    ]
    picked = explaining_arcs(arcs, info, order).withColumnRenamed("to", "node")
    ts = F.timestamp_micros
    reached = info.join(picked.drop("t", "hops", "conf"), "node", "left").select(
        F.split_part("node", F.lit(":"), F.lit(1)).alias("kind"),
        F.expr("substr(node, instr(node, ':') + 1)").alias("key"),
        F.when(F.col("t") == ALWAYS, None).otherwise(ts(F.col("t"))).alias("time"),
        F.col("conf").alias("confidence"),
        F.col("hops").cast("int").alias("hops"),
        (F.col("hops") == 0).alias("is_root"),
        F.split_part("frm", F.lit(":"), F.lit(1)).alias("parent_kind"),
        F.expr("substr(frm, instr(frm, ':') + 1)").alias("parent_key"),
        F.col("rule"),
        F.col("kind").alias("edge_kind"),
        F.col("sk").alias("edge_src_kind"),
        F.col("skey").alias("edge_src_key"),
        F.col("dk").alias("edge_dst_kind"),
        F.col("dkey").alias("edge_dst_key"),
        F.col("valid_from").alias("edge_valid_from"),
        F.col("valid_until").alias("edge_valid_until"),
        F.col("recorded_at").alias("edge_recorded_at"),
        F.col("source").alias("edge_source"),
    )
    table = None
    if output:
        say(f"writing {output}")
        reached.write.mode("overwrite").parquet(output)
        reached = spark.read.parquet(output)
        table = _read_written(output)
    say("storing the result in the case")
    if table is None:
        # No output written (or a filesystem pyarrow cannot open): the rows come home through
        # the driver, which must hold them all at once (about 1.5 KB each: 3 million reached
        # nodes wanted more than a 4 GiB driver heap). --output-parquet avoids that.
        table = reached.toArrow()
    run_id = _store(case, table, seeds, missing, rules, edges_uri)
    return ParquetCascade(run_id, table.num_rows, rounds, time.monotonic() - started, output)


def _read_written(uri: str) -> Any:
    """The reached rows just written as Parquet, read back by pyarrow from the same place
    (local paths, ``file://``, and what pyarrow's filesystems open: ``s3://``, ``hdfs://``,
    ``gs://``, ``abfs://``): the driver JVM never holds them. ``None`` when pyarrow cannot open
    the URI (``s3a://`` is Hadoop's name, for example), so the caller collects through Spark."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowException, ValueError):  # not a URI, or a scheme pyarrow does not know
        if "://" in uri:
            return None
        fs, path = pafs.LocalFileSystem(), str(Path(uri).resolve())
    try:
        return ds.dataset(path, filesystem=fs, format="parquet").to_table()
    except (pa.ArrowException, OSError):
        return None


def _store(
    case: Case,
    table: Any,
    seeds: Sequence[Seed],
    missing: list[str],
    rules: Sequence[Rule],
    edges_uri: str,
) -> str:
    import pyarrow as pa

    # Spark's timestamps come back zoned (UTC): the case stores naive UTC.
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("us"))
        cols[name] = col
    summary = {
        "edges_uri": edges_uri,
        "missing_seeds": [f"seed {m} is not in the graph" for m in missing],
    }
    return store_reached(case, pa.table(cols), seeds, rules, "spark-parquet", summary)
