"""``--engine spark``: the same propagation as :mod:`taintline.graph.cascade`, as iterative
DataFrame joins on PySpark, for graphs that outgrow one machine.

1. Earliest arrival: Bellman-Ford-style rounds. Each round joins the nodes improved in the
   previous round (the frontier) with their arcs, keeps arcs whose window is still open
   (``t <= hi``), takes ``max(t, lo)`` per destination (min over candidates) and keeps the
   destinations that improved. It stops when no node improves.
2. Explanations: breadth-first rounds over the tight arcs from the roots carry only
   (node, confidence) and give every node its hops and best confidence; then one pass over
   the arcs keeps those that explain a node (tight, from the previous depth, with the node's
   confidence) and ranks them per node with one window in the NumPy engine's order (lowest
   arc number), so the results are identical (tested).

Arcs are compiled once (:func:`taintline.graph.cascade.compile_arcs`) and shipped to Spark as
Arrow, so arc numbers agree between engines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from taintline.graph.cascade import I64, NEVER, Arcs, Propagation, roots_of
from taintline.graph.rules import DEFAULT_RULES, Rule
from taintline.sparklocal import local_session

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: At most this many rounds (a guard: each round either improves a node or stops).
MAX_ROUNDS = 100_000


#: The cascade's own Spark settings.
CASCADE_CONF = {"spark.sql.execution.arrow.pyspark.enabled": "true"}


def spark_session(app: str = "taintline-cascade") -> SparkSession:
    return local_session(app, conf=CASCADE_CONF)


def _arcs_df(spark: SparkSession, arcs: Arcs) -> DataFrame:
    table = pa.table(
        {
            "arc": pa.array(np.arange(len(arcs), dtype=np.int64)),
            "frm": pa.array(arcs.frm),
            "to": pa.array(arcs.to),
            "lo": pa.array(arcs.lo),
            "hi": pa.array(arcs.hi),
            "factor": pa.array(arcs.factor),
        }
    )
    return spark.createDataFrame(table)


def _to_numpy(df: DataFrame, column: str, n_nodes: int, fill: Any, dtype: Any) -> Any:
    table = df.toArrow()
    out = np.full(n_nodes, fill, dtype=dtype)
    if table.num_rows:
        nodes = table.column("node").to_numpy()
        out[nodes] = table.column(column).to_numpy()
    return out


def shuffle_partitions(df: DataFrame) -> int:
    """The session's ``spark.sql.shuffle.partitions``: frames that rounds join again and again
    are hash-partitioned to this count once, so each round shuffles only its small side."""
    return int(df.sparkSession.conf.get("spark.sql.shuffle.partitions") or 200)


def by_source(arcs: DataFrame, *keep: str) -> DataFrame:
    """The arcs' columns the rounds need (``frm``, ``to``, ``lo``, ``hi``, ``factor``, and
    ``keep``),
    hash-partitioned by source and checkpointed once: a round that joins them with a frontier
    shuffles the frontier only, and every later use reads them from the executors' memory."""
    n = shuffle_partitions(arcs)
    return (
        arcs.select("frm", "to", "lo", "hi", "factor", *keep)
        .repartition(n, "frm")
        .localCheckpoint()
    )


def propagate(
    arrival: DataFrame, arcs: DataFrame, on_round: Callable[[int], None] | None = None
) -> tuple[DataFrame, int]:
    """Earliest arrival by rounds of relaxation: ``arrival`` (``node``, ``t``: the seeds'
    times) over arcs (``frm``, ``to``, ``lo``, ``hi``: an arc can carry a compromise that
    arrived by ``hi``, and delivers it at ``max(t, lo)``). Each round joins only the nodes
    whose time improved in the previous one. Returns the arrival times and the rounds run.
    Node ids may be any type (integers here, ``kind:key`` strings in the Parquet cascade).

    ``arcs`` come from :func:`by_source`, so a round shuffles its frontier, never the arcs;
    every frame a round keeps is checkpointed, so no round's plan grows with the rounds
    before it."""
    from pyspark.sql import functions as F

    edges = arcs
    frontier = arrival
    rounds = 0
    for rounds in range(1, MAX_ROUNDS):
        cand = (
            frontier.join(edges, frontier.node == edges.frm)
            .where(F.col("t") <= F.col("hi"))
            .select(F.col("to").alias("node"), F.greatest(F.col("t"), F.col("lo")).alias("t"))
            .groupBy("node")
            .agg(F.min("t").alias("new"))
        )
        # One checkpoint per round holds the times and which of them improved: the next
        # frontier and the emptiness test read it, nothing is computed twice.
        state = (
            arrival.select("node", F.col("t").alias("old"))
            .join(cand, "node", "full_outer")
            .select(
                "node",
                F.least("old", "new").alias("t"),
                (F.col("new") < F.coalesce(F.col("old"), F.lit(NEVER))).alias("better"),
            )
            .localCheckpoint()
        )
        arrival = state.select("node", "t")
        frontier = state.where(F.col("better")).select("node", "t")
        if frontier.isEmpty():
            break
        if on_round is not None:
            on_round(rounds)
    return arrival, rounds


def tight_arcs_df(arcs: DataFrame, arrival: DataFrame) -> DataFrame:
    """The arcs that achieve their destination's earliest arrival (``tight`` in
    :func:`taintline.graph.cascade.tight_arcs`), with the ends' times ``t_frm``/``t_to``."""
    from pyspark.sql import functions as F

    a_frm = arrival.select(F.col("node").alias("frm"), F.col("t").alias("t_frm"))
    a_to = arrival.select(F.col("node").alias("to"), F.col("t").alias("t_to"))
    return (
        arcs.join(a_frm, "frm")
        .where(F.col("t_frm") <= F.col("hi"))
        .join(a_to, "to")
        .where(F.greatest("t_frm", "lo") == F.col("t_to"))
    )


def explain_depths(
    tight: DataFrame, roots: DataFrame, on_depth: Callable[[int], None] | None = None
) -> tuple[DataFrame, int]:
    """Hops and confidence of every explained node (``node``, ``hops``, ``conf``), as
    :func:`taintline.graph.cascade.explain` computes them: breadth-first from the roots
    (``node``) over the tight arcs (``frm``, ``to``, ``factor``); a node first reached at
    depth d gets the best ``conf(parent) * factor`` over its parents at depth d - 1.

    Only these three narrow columns go round; which arc explains a node is decided once
    afterwards (:func:`explaining_arcs`). Returns the frame and the deepest depth."""
    from pyspark.sql import functions as F

    n = shuffle_partitions(tight)
    edges = tight.select("frm", "to", "factor").repartition(n, "frm").localCheckpoint()
    visited = roots.select("node", F.lit(0).alias("hops"), F.lit(1.0).alias("conf"))
    visited = visited.localCheckpoint()
    depth = 0
    for step in range(1, MAX_ROUNDS):
        cand = (
            visited.where(F.col("hops") == step - 1)
            .select(F.col("node").alias("frm"), F.col("conf").alias("c"))
            .join(edges, "frm")
            .select(F.col("to").alias("node"), (F.col("c") * F.col("factor")).alias("c"))
            .groupBy("node")
            .agg(F.max("c").alias("c"))
        )
        # Nodes seen before keep their depth and confidence; one checkpoint per depth.
        visited = (
            visited.join(cand, "node", "full_outer")
            .select(
                "node",
                F.coalesce(F.col("hops"), F.lit(step)).alias("hops"),
                F.coalesce(F.col("conf"), F.col("c")).alias("conf"),
            )
            .localCheckpoint()
        )
        if visited.where(F.col("hops") == step).isEmpty():
            break
        depth = step
        if on_depth is not None:
            on_depth(step)
    return visited, depth


def explaining_arcs(arcs: DataFrame, info: DataFrame, order: Sequence[Column]) -> DataFrame:
    """The one arc that explains each non-root node, in one pass: of the arcs (``frm``,
    ``to``, ``lo``, ``hi``, ``factor`` and any payload) keep the tight ones that come from
    the previous depth with the node's confidence (``info``: ``node``, ``t``, ``hops``,
    ``conf``), and take the first per destination in ``order`` (the NumPy engine's
    tie-break: arc number, or the case's edge order). Adds ``t``, ``hops`` and ``conf`` of
    the destination."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    f = info.select(
        F.col("node").alias("frm"),
        F.col("t").alias("_t_frm"),
        F.col("hops").alias("_h_frm"),
        F.col("conf").alias("_c_frm"),
    )
    d = info.select(
        F.col("node").alias("to"),
        F.col("t").alias("t"),
        F.col("hops").alias("hops"),
        F.col("conf").alias("conf"),
    )
    cand = (
        arcs.join(f, "frm")
        .where(F.col("_t_frm") <= F.col("hi"))
        .join(d, "to")
        .where(
            (F.greatest("_t_frm", "lo") == F.col("t"))
            & (F.col("_h_frm") + 1 == F.col("hops"))
            & (F.col("_c_frm") * F.col("factor") == F.col("conf"))
        )
    )
    rank = Window.partitionBy("to").orderBy(*order)
    return (
        cand.withColumn("_rank", F.row_number().over(rank))
        .where(F.col("_rank") == 1)
        .drop("_rank", "_t_frm", "_h_frm", "_c_frm")
    )


def earliest_arrival_spark(
    spark: SparkSession, arcs_df: DataFrame, n_nodes: int, seeds: I64, seed_times: I64
) -> tuple[I64, DataFrame]:
    from pyspark.sql import functions as F

    seed_rows = pa.table(
        {"node": pa.array(seeds, pa.int64()), "t": pa.array(seed_times, pa.int64())}
    )
    arrival = spark.createDataFrame(seed_rows).groupBy("node").agg(F.min("t").alias("t"))
    arrival, _rounds = propagate(arrival.localCheckpoint(), arcs_df)
    result: I64 = _to_numpy(arrival, "t", n_nodes, NEVER, np.int64)
    return result, arrival


def explain_spark(
    spark: SparkSession,
    arcs_df: DataFrame,
    n_nodes: int,
    arrival_df: DataFrame,
    roots: I64,
) -> tuple[I64, Any, Any]:
    from pyspark.sql import functions as F

    root_df = spark.createDataFrame(pa.table({"node": pa.array(roots, pa.int64())}))
    tight = tight_arcs_df(arcs_df, arrival_df)
    visited, _depth = explain_depths(tight, root_df)
    info = visited.join(arrival_df, "node")
    picked = explaining_arcs(arcs_df, info, [F.col("arc").asc()]).select(
        F.col("to").alias("node"), F.col("arc").alias("parent")
    )
    parent = _to_numpy(picked, "parent", n_nodes, -1, np.int64)
    hops = _to_numpy(visited, "hops", n_nodes, -1, np.int32)
    conf = _to_numpy(visited, "conf", n_nodes, 0.0, np.float64)
    return parent, hops, conf


def propagate_spark(
    n_nodes: int,
    arcs: Arcs,
    seeds: I64,
    seed_times: I64,
    rules: tuple[Rule, ...] = DEFAULT_RULES,
    spark: SparkSession | None = None,
) -> Propagation:
    spark = spark or spark_session()
    seeds = np.asarray(seeds, np.int64)
    seed_times = np.asarray(seed_times, np.int64)
    arcs_df = by_source(_arcs_df(spark, arcs), "arc")
    arrival, arrival_df = earliest_arrival_spark(spark, arcs_df, n_nodes, seeds, seed_times)
    roots = roots_of(arrival, seeds, seed_times)
    parent, hops, conf = explain_spark(spark, arcs_df, n_nodes, arrival_df, roots)
    return Propagation(arrival, parent, hops, conf, arcs, rules)
