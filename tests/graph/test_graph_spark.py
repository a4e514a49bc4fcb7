from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from taintline.graph.cascade import compile_arcs, propagate

from .graphs import SCENARIO, TIE_PARENTS, TIES, build_ties, random_graph

pytestmark = [
    pytest.mark.spark,
    pytest.mark.xdist_group("spark"),  # one worker, one shared session (tests/conftest.py)
    pytest.mark.skipif(shutil.which("java") is None, reason="no java: Spark cannot run"),
]


def _same(a, b):
    assert a.arrival.tolist() == b.arrival.tolist()
    assert a.parent.tolist() == b.parent.tolist()
    assert a.hops.tolist() == b.hops.tolist()
    assert a.confidence.tolist() == b.confidence.tolist()


def test_spark_equals_numpy_on_the_scenario_and_random_graphs(spark):
    from taintline.graph.sparkengine import propagate_spark

    # The scenario and the tie-breaks share one propagation (one Spark run is many jobs).
    specs = SCENARIO + TIES
    edges, names = build_ties(specs)
    seeds, times = np.array([names.index("X")]), np.array([10])
    want = propagate(len(names), edges, seeds, times)
    got = propagate_spark(len(names), compile_arcs(edges), seeds, times, spark=spark)
    _same(want, got)
    arcs = got.arcs
    for node, (spec, hops, conf) in TIE_PARENTS.items():
        v = names.index(node)
        assert int(arcs.edge[got.parent[v]]) == specs.index(spec), node
        assert (int(got.hops[v]), float(got.confidence[v])) == (hops, conf), node
    for seed in (3,):
        edges = random_graph(seed, n_nodes=30, n_edges=90)
        n = int(max(edges.src.max(), edges.dst.max())) + 1
        seeds, times = np.array([0, 1]), np.array([seed, 20])
        _same(
            propagate(n, edges, seeds, times),
            propagate_spark(n, compile_arcs(edges), seeds, times, spark=spark),
        )


def test_cli_engine_spark(spark, tmp_path: Path, capsys):
    from taintline.cli.main import main
    from taintline.demo import graph as demo

    files = demo.write_story(tmp_path / "in")
    case = str(tmp_path / "case.duckdb")
    assert main(["graph", "add", *map(str, files.all()), "--case", case]) == 0
    seed = f"artifact:{demo.XTRADER_SHA}@2022-02-03T10:00:00Z"
    outputs = []
    for engine in ("numpy", "spark"):
        capsys.readouterr()
        assert (
            main(
                ["cascade", "--seed", seed, "--engine", engine, "--format", "jsonl", "--case", case]
            )
            == 0
        )
        lines = capsys.readouterr().out.splitlines()
        outputs.append(sorted(line.split('"run_id"')[0] + line.split(",", 2)[2] for line in lines))
    assert outputs[0] == outputs[1] and len(outputs[0]) == 17
