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
from typing import TYPE_CHECKING, Any

from taintline.case import Case
from taintline.errors import InputError
from taintline.graph.cascade import ALWAYS, NEVER
from taintline.graph.rules import DEFAULT_RULES, Behaviour, Direction, Rule
from taintline.graph.sparkengine import MAX_ROUNDS, propagate
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
    """One arc per (edge, matching rule), as :func:`taintline.graph.cascade.compile_arcs`."""
    from pyspark.sql import functions as F

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
    # NULLS FIRST for valid_from and NULLS LAST for valid_until, as the case orders edges.
    base = base.withColumn("vf_o", F.col("vf")).withColumn("vu_o", F.col("vu"))
    parts = []
    for rno, rule in enumerate(rules):
        sel = base.where(F.col("kind") == str(rule.edge))
        src = F.concat_ws(":", "sk", "skey")
        dst = F.concat_ws(":", "dk", "dkey")
        frm, to = (src, dst) if rule.direction is Direction.FORWARD else (dst, src)
        hi = F.col("vf") if rule.behaviour is Behaviour.INSTANT else F.col("vu")
        parts.append(
            sel.select(
                frm.alias("frm"),
                to.alias("to"),
                F.col("vf").alias("lo"),
                hi.alias("hi"),
                (F.col("confidence") * F.lit(rule.factor)).alias("factor"),
                F.lit(rno).alias("rno"),
                F.lit(rule.name).alias("rule"),
                *[c for c in base.columns if c not in ("confidence", "vf", "vu")],
            )
        )
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


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
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    say = stage or (lambda _text: None)
    started = time.monotonic()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    say("reading the edge table")
    arcs = compile_arcs_df(read_edges(spark, edges_uri), rules).localCheckpoint()
    seed_rows = [
        (
            f"{s.ref.kind}:{s.ref.key if str(s.ref.kind) == 'build' else s.ref.key.lower()}",
            to_us(s.time, ALWAYS),
        )
        for s in seeds
    ]
    schema = T.StructType([T.StructField("node", T.StringType()), T.StructField("t", T.LongType())])
    seed_df = spark.createDataFrame(seed_rows, schema).groupBy("node").agg(F.min("t").alias("t"))
    # Seeds that are not in the graph are reported, not silently dropped.
    known = arcs.select(F.col("frm").alias("node")).union(arcs.select(F.col("to").alias("node")))
    missing = [r["node"] for r in seed_df.join(known.distinct(), "node", "left_anti").collect()]
    arrival = seed_df.join(known.distinct(), "node", "left_semi").localCheckpoint()
    say("earliest compromise times")
    arrival, rounds = propagate(
        arrival, arcs, lambda n: say(f"earliest compromise times: round {n}")
    )
    say("explaining paths")
    # Roots: seeds reached at their own seed time.
    roots = seed_df.join(arrival, ["node", "t"], "left_semi")
    a_frm = arrival.select(F.col("node").alias("frm"), F.col("t").alias("t_frm"))
    a_to = arrival.select(F.col("node").alias("to"), F.col("t").alias("t_to"))
    tight = (
        arcs.join(a_frm, "frm")
        .join(a_to, "to")
        .where((F.col("t_frm") <= F.col("hi")) & (F.greatest("t_frm", "lo") == F.col("t_to")))
        .localCheckpoint()
    )
    level = roots.select(
        "node",
        F.lit(1.0).alias("conf"),
        F.lit(0).alias("hops"),
        F.lit(None).cast("long").alias("arc"),
    ).localCheckpoint()
    visited = level.select("node", "conf", "hops").withColumn("frm", F.lit(None).cast("string"))
    picked_all: list[DataFrame] = []
    order = Window.partitionBy("node").orderBy(
        F.col("conf").desc(),
        *[
            F.col(c).asc_nulls_first() if c in ("vf_o",) else F.col(c).asc_nulls_last()
            for c in _ARC_ORDER
        ],
    )
    for depth in range(1, MAX_ROUNDS):
        cand = (
            level.select(F.col("node").alias("frm"), F.col("conf").alias("c"))
            .join(tight, "frm")
            .withColumn("conf", F.col("c") * F.col("factor"))
            .withColumnRenamed("to", "node")
            .join(visited.select("node"), "node", "left_anti")
        )
        picked = (
            cand.withColumn("rank", F.row_number().over(order))
            .where(F.col("rank") == 1)
            .drop("rank", "c")
            .withColumn("hops", F.lit(depth))
            .localCheckpoint()
        )
        if picked.isEmpty():
            break
        picked_all.append(picked)
        visited = visited.unionByName(
            picked.select("node", "conf", "hops", "frm")
        ).localCheckpoint()
        level = picked.select("node", "conf")
        say(f"explaining paths: depth {depth}")
    ts = F.timestamp_micros
    root_rows = roots.join(arrival, ["node", "t"]).select(
        "node",
        F.when(F.col("t") == ALWAYS, None).otherwise(ts(F.col("t"))).alias("time"),
        F.lit(1.0).alias("confidence"),
        F.lit(0).alias("hops"),
        F.lit(True).alias("is_root"),
        *[F.lit(None).cast(t).alias(c) for c, t in _PARENT_COLUMNS],
    )
    parts = [root_rows]
    times = arrival.select("node", "t")
    for picked in picked_all:
        parts.append(
            picked.join(times, "node").select(
                "node",
                F.when(F.col("t") == ALWAYS, None).otherwise(ts(F.col("t"))).alias("time"),
                F.col("conf").alias("confidence"),
                F.col("hops").cast("int").alias("hops"),
                F.lit(False).alias("is_root"),
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
        )
    reached = parts[0]
    for part in parts[1:]:
        reached = reached.unionByName(part)
    reached = reached.select(
        F.split_part("node", F.lit(":"), F.lit(1)).alias("kind"),
        F.expr("substr(node, instr(node, ':') + 1)").alias("key"),
        *[c for c in reached.columns if c != "node"],
    )
    if output:
        say(f"writing {output}")
        reached.write.mode("overwrite").parquet(output)
        reached = spark.read.parquet(output)
    say("storing the result in the case")
    table = reached.toArrow()
    run_id = _store(case, table, seeds, missing, rules, edges_uri)
    return ParquetCascade(run_id, table.num_rows, rounds, time.monotonic() - started, output)


_PARENT_COLUMNS = (
    ("parent_kind", "string"),
    ("parent_key", "string"),
    ("rule", "string"),
    ("edge_kind", "string"),
    ("edge_src_kind", "string"),
    ("edge_src_key", "string"),
    ("edge_dst_kind", "string"),
    ("edge_dst_key", "string"),
    ("edge_valid_from", "timestamp"),
    ("edge_valid_until", "timestamp"),
    ("edge_recorded_at", "timestamp"),
    ("edge_source", "string"),
)


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
