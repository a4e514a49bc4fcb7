"""Benchmark: the hunt and the cascade on a real Spark standalone cluster on this machine,
next to the embedded engines on the same data, in one run.

Starts a standalone master + one worker (2 cores) from the installed PySpark with
``.ci/spark-cluster`` (or uses ``--master spark://...`` if one is running), then measures:

* hunt: ``--lines`` Zeek TSV lines (``bench_hunt``'s generator) and 100,000 indicators:
  the DuckDB engine vs :class:`~taintline.hunt.engines.spark_cluster.ClusterHunt` (listing,
  line numbering, accounting and matching on the cluster);
* cascade: ``--edges`` edges (``bench_cascade``'s generator) written as an edge table in
  Parquet: the NumPy engine vs :func:`~taintline.graph.spark_parquet.run_parquet_cascade`
  (arcs compiled, propagated and explained on the cluster, reached nodes written back as
  Parquet and stored in a case).

On one 2-core machine this measures overhead, not speed-up. It prints the per-core
throughput the cluster reached, which ``docs/spark.md`` uses for its sizing estimate.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_cascade  # noqa: E402
import bench_hunt  # noqa: E402
from taintline.case import Case  # noqa: E402
from taintline.graph.cascade import EDGE_KINDS, NEVER  # noqa: E402
from taintline.graph.spark_parquet import run_parquet_cascade  # noqa: E402
from taintline.graph.store import Seed  # noqa: E402
from taintline.hunt.engines.spark_cluster import ClusterHunt  # noqa: E402
from taintline.hunt.model import HuntOptions  # noqa: E402
from taintline.hunt.readers import discover  # noqa: E402
from taintline.hunt.service import hunt_sources  # noqa: E402
from taintline.model import NodeKind, NodeRef  # noqa: E402
from taintline.sparklocal import SparkSettings, session_scope  # noqa: E402

CORES = 2


def start_cluster(state: Path) -> str:
    # No Spark Connect server: it would hold one of the worker's two cores.
    out = subprocess.run(
        ["bash", str(HERE.parent / ".ci" / "spark-cluster"), "start", sys.executable, str(state)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "SPARK_CLUSTER_NO_CONNECT": "1"},
    ).stdout
    for line in out.splitlines():
        if "TAINTLINE_TEST_SPARK_MASTER=" in line:
            return line.split("=", 1)[1].strip()
    raise SystemExit("the cluster did not start")


def bench_hunt_on(master: str, lines: int, folder: Path) -> None:
    print(f"== hunt: {lines:,} Zeek lines, 100,000 indicators ==", flush=True)
    if folder.exists():
        shutil.rmtree(folder)
    bench_hunt.generate(folder, lines, 4)
    ind = bench_hunt.indicators(100_000)
    found = discover([folder])
    t = time.perf_counter()
    sightings, stats = hunt_sources(found.sources, ind, HuntOptions(threads=CORES))
    duck = time.perf_counter() - t
    duck_lines = sum(s.lines for s in stats)
    print(
        f"duckdb (embedded): {duck_lines:,} lines in {duck:.1f} s ="
        f" {duck_lines / duck:,.0f} lines/s; {len(sightings):,} sightings"
    )
    settings = SparkSettings(
        master=master,
        conf={"spark.sql.shuffle.partitions": str(2 * CORES), "spark.executor.memory": "2g"},
    )
    t = time.perf_counter()
    with session_scope("bench-hunt", settings) as spark:
        started = time.perf_counter() - t
        run = ClusterHunt(spark).run([str(folder)], ind, HuntOptions(threads=CORES))
    total = time.perf_counter() - t
    spark_lines = sum(s.lines for s in run.result.stats)
    rate = spark_lines / (total - started)
    print(
        f"spark standalone cluster ({CORES} cores): {spark_lines:,} lines in {total:.1f} s"
        f" (session {started:.1f} s) = {rate:,.0f} lines/s after the session start;"
        f" {len(run.result.groups):,} hit groups; per core {rate / CORES:,.0f} lines/s"
    )
    print(f"ratio cluster/embedded time: {total / duck:.1f}x (overhead on one machine)")
    print(
        f"estimate for 10 billion lines in 1 hour at that per-core rate:"
        f" {10e9 / (rate / CORES) / 3600:,.0f} cores"
    )
    shutil.rmtree(folder, ignore_errors=True)


def bench_cascade_on(master: str, edges_n: int, folder: Path) -> None:
    print(f"== cascade: {edges_n:,} edges from Parquet ==", flush=True)
    n_nodes, edges, seeds, seed_times = bench_cascade.generate(edges_n)
    t = time.perf_counter()
    _times, arrival, _parent = bench_cascade.run_numpy(n_nodes, edges, seeds, seed_times)
    numpy_s = time.perf_counter() - t
    reached = int((arrival != NEVER).sum())
    print(f"numpy (embedded): {numpy_s:.1f} s, {reached:,} nodes reached")
    folder.mkdir(parents=True, exist_ok=True)
    table_path = folder / "edges.parquet"

    def ts(values: np.ndarray) -> pa.Array:
        mask = (values == NEVER) | (values == np.iinfo(np.int64).min)
        return pa.array(values, pa.timestamp("us"), mask=mask)

    keys = pa.array(np.arange(n_nodes).astype(str))
    table = pa.table(
        {
            "kind": pa.array([str(k) for k in EDGE_KINDS]).take(pa.array(edges.kind)),
            "src_kind": pa.array(["host"] * len(edges)),
            "src_key": keys.take(pa.array(edges.src)),
            "dst_kind": pa.array(["host"] * len(edges)),
            "dst_key": keys.take(pa.array(edges.dst)),
            "valid_from": ts(edges.valid_from),
            "valid_until": ts(edges.valid_until),
            "confidence": pa.array(edges.confidence),
            "source": pa.array(["bench"] * len(edges)),
        }
    )
    pq.write_table(table, table_path, row_group_size=1_000_000)
    del table
    seed_list = [
        Seed(NodeRef(NodeKind.HOST, str(int(s))), _dt(int(t)))
        for s, t in zip(seeds.tolist(), seed_times.tolist(), strict=True)
    ]
    settings = SparkSettings(
        master=master,
        conf={
            "spark.sql.shuffle.partitions": str(4 * CORES),
            "spark.executor.memory": "3g",
            # The reached rows come home once, to be stored in the case.
            "spark.driver.memory": "4g",
        },
    )
    t = time.perf_counter()
    last = [t, "session start"]

    def stage(text: str) -> None:
        # Time per stage (a round or depth is one line): where the cluster spends its time.
        now = time.perf_counter()
        print(f"  {now - last[0]:7.1f} s  {last[1]}", flush=True)
        last[:] = [now, text]

    with Case(folder / "case.duckdb") as case, session_scope("bench-cascade", settings) as spark:
        result = run_parquet_cascade(
            spark,
            case,
            f"file://{table_path}",
            seed_list,
            output=f"file://{folder / 'reached.parquet'}",
            stage=stage,
        )
    stage("done")
    total = time.perf_counter() - t
    print(
        f"spark standalone cluster ({CORES} cores): {total:.1f} s, {result.reached:,} nodes"
        f" reached, {result.rounds} rounds; {edges_n / total:,.0f} edges/s;"
        f" same count as numpy: {result.reached == reached}"
    )
    print(f"ratio cluster/embedded time: {total / numpy_s:.1f}x (overhead on one machine)")
    shutil.rmtree(folder, ignore_errors=True)


def _dt(us: int) -> object:
    from datetime import UTC, datetime, timedelta

    if us == np.iinfo(np.int64).min:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 M lines and 500,000 edges")
    parser.add_argument("--lines", type=int, default=20_000_000)
    parser.add_argument("--edges", type=int, default=10_000_000)
    parser.add_argument("--master", help="use this running cluster instead of starting one")
    parser.add_argument("--only", choices=("hunt", "cascade"))
    args = parser.parse_args(argv)
    lines = 1_000_000 if args.quick else args.lines
    edges = 500_000 if args.quick else args.edges
    # A kill (SIGTERM) unwinds like Ctrl-C, so the cluster started below is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    state = Path(tempfile.mkdtemp(prefix="taintline-bench-spark-"))
    master = args.master or os.environ.get("TAINTLINE_TEST_SPARK_MASTER")
    started = False
    if not master:
        master = start_cluster(state)
        started = True
    print(f"cluster: {master}")
    try:
        if args.only in (None, "hunt"):
            bench_hunt_on(master, lines, state / "logs")
        if args.only in (None, "cascade"):
            bench_cascade_on(master, edges, state / "graph")
    finally:
        if started:
            subprocess.run(
                ["bash", str(HERE.parent / ".ci" / "spark-cluster"), "stop", str(state)],
                check=False,
            )
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
