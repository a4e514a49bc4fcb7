from __future__ import annotations

import numpy as np
import pytest

from taintline.graph.cascade import NEVER, compile_arcs, latest_departure, propagate
from taintline.graph.rules import DEFAULT_RULES, Rule

from .graphs import EXPECTED, SCENARIO, UNREACHED, build, random_graph, reference_arrival


def _run(specs, seeds):
    edges, names = build(specs)
    index = {n: i for i, n in enumerate(names)}
    s = np.array([index[n] for n, _ in seeds], np.int64)
    t = np.array([t for _, t in seeds], np.int64)
    return propagate(len(names), edges, s, t), names, index


def test_scenario_earliest_times_by_hand():
    result, names, index = _run(SCENARIO, [("X", 10)])
    got = {
        names[i]: int(result.arrival[i]) for i in range(len(names)) if result.arrival[i] != NEVER
    }
    assert got == EXPECTED
    assert {n for n in names if result.arrival[index[n]] == NEVER} == UNREACHED


def test_scenario_explaining_path_fact_by_fact():
    result, names, index = _run(SCENARIO, [("X", 10)])
    arcs = result.arcs
    steps = [
        (names[arcs.frm[a]], names[arcs.to[a]], result.rules[arcs.rule[a]].name)
        for a in result.path(index["C2"])
    ]
    assert steps == [
        ("X", "H1", "installed_on/forward"),
        ("H1", "B2", "built_on/reverse"),
        ("B2", "A2", "produced/forward"),
        ("A2", "R1", "contains/reverse"),
        ("R1", "C2", "distributed_to/forward"),
    ]
    assert result.hops[index["C2"]] == 5
    assert result.root(index["ORG"]) == index["X"]
    # lateral movement costs confidence: two connected_to hops at 0.8
    assert result.confidence[index["H5"]] == pytest.approx(0.64)
    assert result.confidence[index["C2"]] == pytest.approx(1.0)
    assert result.parent[index["X"]] == -1 and result.hops[index["X"]] == 0


def test_cycles_terminate_and_do_not_loop_parents():
    specs = [
        ("connected_to", "a", "b", 1, 100),
        ("connected_to", "b", "c", 1, 100),
        ("connected_to", "c", "a", 1, 100),
        ("connected_to", "c", "d", 5, 5),
    ]
    result, _names, index = _run(specs, [("a", 2)])
    assert [int(result.arrival[index[n]]) for n in "abcd"] == [2, 2, 2, 5]
    assert [int(result.hops[index[n]]) for n in "abcd"] == [0, 1, 2, 3]
    assert len(result.path(index["d"])) == 3


def test_ties_prefer_fewer_facts_then_confidence():
    specs = [
        # two ways to reach h at 5: a long lateral path and a direct install
        ("connected_to", "s", "m", 5, 5),
        ("connected_to", "m", "h", 5, 5),
        ("installed_on", "s", "h", 5, None),
        # same hop count, different confidence: depends_on (0.8) vs contains (1.0)
        ("depends_on", "r", "h2", None, None),
        ("contains", "r", "h2", None, None),
    ]
    result, _names, index = _run(specs, [("s", 1), ("h2", 0)])
    path = result.path(index["h"])
    assert len(path) == 1 and result.rules[result.arcs.rule[path[0]]].name == "installed_on/forward"
    r_path = result.path(index["r"])
    assert result.rules[result.arcs.rule[r_path[0]]].name == "contains/reverse"
    assert result.confidence[index["r"]] == 1.0


def test_seed_reached_earlier_by_another_seed_is_not_a_root():
    specs = [("installed_on", "x", "h", None, None)]
    result, _names, index = _run(specs, [("x", 1), ("h", 7)])
    assert result.arrival[index["h"]] == 1
    assert result.parent[index["h"]] >= 0


@pytest.mark.parametrize("seed", range(25))
def test_random_graphs_match_reference(seed):
    edges = random_graph(seed)
    n = int(max(edges.src.max(), edges.dst.max())) + 1
    seeds = np.array([0, 1], np.int64)
    times = np.array([seed % 7, 20], np.int64)
    result = propagate(n, edges, seeds, times)
    assert result.arrival.tolist() == reference_arrival(n, edges, seeds.tolist(), times.tolist())
    arcs = result.arcs
    for node in result.reached.tolist():
        path = result.path(node)
        # the path is time-respecting and reproduces the earliest time
        t = int(result.arrival[arcs.frm[path[0]]]) if path else int(result.arrival[node])
        for arc in path:
            assert t <= arcs.hi[arc]
            t = max(t, int(arcs.lo[arc]))
        assert t == result.arrival[node]


def test_rules_are_data():
    edges, names = build([("installed_on", "x", "h", None, None)])
    only_lateral = (
        Rule(
            DEFAULT_RULES[7].edge,
            DEFAULT_RULES[7].direction,
            DEFAULT_RULES[7].behaviour,
            0.5,
            "test",
        ),
    )
    result = propagate(len(names), edges, np.array([0]), np.array([0]), only_lateral)
    assert result.arrival[1] == NEVER
    with pytest.raises(ValueError):
        Rule(
            DEFAULT_RULES[0].edge, DEFAULT_RULES[0].direction, DEFAULT_RULES[0].behaviour, 0.0, "x"
        )


def test_upstream_latest_departure():
    edges, names = build(SCENARIO)
    index = {n: i for i, n in enumerate(names)}
    arcs = compile_arcs(edges)
    up = latest_departure(len(names), arcs, np.array([index["C2"]]), np.array([13]))
    latest = {names[i]: int(v) for i, v in enumerate(up.latest) if v != np.iinfo(np.int64).min}
    # A9 sits in the same release: a tainted A9 would explain C2 as well
    assert latest == {"C2": 13, "R1": 13, "A2": 13, "A9": 13, "B2": 13, "H1": 12, "X": 12}
    assert sorted(names[i] for i in up.roots) == ["A9", "X"]
