"""``--engine spark``: the same propagation as :mod:`taintline.graph.cascade`, as iterative
DataFrame joins on PySpark, for graphs that outgrow one machine.

1. Earliest arrival: Bellman-Ford-style rounds. Each round joins the nodes improved in the
   previous round (the frontier) with their arcs, keeps arcs whose window is still open
   (``t <= hi``), takes ``max(t, lo)`` per destination (min over candidates) and keeps the
   destinations that improved. It stops when no node improves.
2. Explanations: breadth-first rounds over tight arcs from the roots, picking per node the
   highest confidence, then the lowest arc number: the same order as the NumPy engine, so
   the results are identical (tested).

Arcs are compiled once (:func:`taintline.graph.cascade.compile_arcs`) and shipped to Spark as
Arrow, so arc numbers agree between engines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from taintline.graph.cascade import I64, NEVER, Arcs, Propagation, roots_of
from taintline.graph.rules import DEFAULT_RULES, Rule
from taintline.sparklocal import local_session

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

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


def propagate(
    arrival: DataFrame, arcs: DataFrame, on_round: Callable[[int], None] | None = None
) -> tuple[DataFrame, int]:
    """Earliest arrival by rounds of relaxation: ``arrival`` (``node``, ``t``: the seeds'
    times) over arcs (``frm``, ``to``, ``lo``, ``hi``: an arc can carry a compromise that
    arrived by ``hi``, and delivers it at ``max(t, lo)``). Each round joins only the nodes
    whose time improved in the previous one. Returns the arrival times and the rounds run.
    Node ids may be any type (integers here, ``kind:key`` strings in the Parquet cascade)."""
    from pyspark.sql import functions as F

    edges = arcs.select("frm", "to", "lo", "hi")
    frontier = arrival
    rounds = 0
    for rounds in range(1, MAX_ROUNDS):
        cand = (
            frontier.join(edges, frontier.node == edges.frm)
            .where(F.col("t") <= F.col("hi"))
            .select(F.col("to").alias("node"), F.greatest(F.col("t"), F.col("lo")).alias("t"))
            .groupBy("node")
            .agg(F.min("t").alias("t"))
        )
        improved = (
            cand.join(arrival.select("node", F.col("t").alias("old")), "node", "left")
            .where(F.col("old").isNull() | (F.col("t") < F.col("old")))
            .select("node", "t")
            .localCheckpoint()
        )
        if improved.isEmpty():
            break
        arrival = (
            arrival.join(improved.select("node", F.col("t").alias("new")), "node", "full_outer")
            .select("node", F.coalesce(F.col("new"), F.col("t")).alias("t"))
            .localCheckpoint()
        )
        frontier = improved
        if on_round is not None:
            on_round(rounds)
    return arrival, rounds


def earliest_arrival_spark(
    spark: SparkSession, arcs_df: DataFrame, n_nodes: int, seeds: I64, seed_times: I64
) -> I64:
    from pyspark.sql import functions as F

    seed_rows = pa.table(
        {"node": pa.array(seeds, pa.int64()), "t": pa.array(seed_times, pa.int64())}
    )
    arrival = spark.createDataFrame(seed_rows).groupBy("node").agg(F.min("t").alias("t"))
    arrival, _rounds = propagate(arrival.localCheckpoint(), arcs_df)
    result: I64 = _to_numpy(arrival, "t", n_nodes, NEVER, np.int64)
    return result


def explain_spark(
    spark: SparkSession,
    arcs_df: DataFrame,
    n_nodes: int,
    arrival: I64,
    roots: I64,
) -> tuple[I64, Any, Any]:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    reached = np.flatnonzero(arrival != NEVER).astype(np.int64)
    arr = spark.createDataFrame(
        pa.table({"node": pa.array(reached), "t": pa.array(arrival[reached])})
    )
    a_src = arr.select(F.col("node").alias("frm"), F.col("t").alias("t_frm"))
    a_dst = arr.select(F.col("node").alias("to"), F.col("t").alias("t_to"))
    tight = (
        arcs_df.join(a_src, "frm")
        .join(a_dst, "to")
        .where((F.col("t_frm") <= F.col("hi")) & (F.greatest("t_frm", "lo") == F.col("t_to")))
        .select("arc", "frm", "to", "factor")
        .localCheckpoint()
    )
    level = spark.createDataFrame(
        pa.table(
            {
                "node": pa.array(roots, pa.int64()),
                "conf": pa.array(np.ones(len(roots))),
                "hops": pa.array(np.zeros(len(roots), np.int32)),
                "parent": pa.array(np.full(len(roots), -1, np.int64)),
            }
        )
    ).localCheckpoint()
    visited = level
    order = Window.partitionBy("node").orderBy(F.col("conf").desc(), F.col("parent").asc())
    for depth in range(1, MAX_ROUNDS):
        cand = (
            level.select(F.col("node").alias("frm"), F.col("conf").alias("c"))
            .join(tight, "frm")
            .select(
                F.col("to").alias("node"),
                (F.col("c") * F.col("factor")).alias("conf"),
                F.col("arc").alias("parent"),
            )
            .join(visited.select("node"), "node", "left_anti")
        )
        picked = (
            cand.withColumn("rank", F.row_number().over(order))
            .where(F.col("rank") == 1)
            .select("node", "conf", F.lit(depth).cast("int").alias("hops"), "parent")
            .localCheckpoint()
        )
        if picked.isEmpty():
            break
        visited = visited.unionByName(picked).localCheckpoint()
        level = picked
    parent = _to_numpy(visited, "parent", n_nodes, -1, np.int64)
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
    arcs_df = _arcs_df(spark, arcs).localCheckpoint()
    arrival = earliest_arrival_spark(spark, arcs_df, n_nodes, seeds, seed_times)
    roots = roots_of(arrival, seeds, seed_times)
    parent, hops, conf = explain_spark(spark, arcs_df, n_nodes, arrival, roots)
    return Propagation(arrival, parent, hops, conf, arcs, rules)
