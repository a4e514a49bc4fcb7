"""Small hand-made graphs (and a random generator) shared by the graph tests."""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections.abc import Sequence

import numpy as np

from taintline.graph.cascade import ALWAYS, EDGE_CODE, NEVER, EdgeArrays, compile_arcs
from taintline.graph.rules import DEFAULT_RULES

N = None  # open time

Spec = tuple[str, str, str, int | None, int | None]


def build(specs: Sequence[Spec], confidence: float = 1.0) -> tuple[EdgeArrays, list[str]]:
    names: list[str] = []
    index: dict[str, int] = {}

    def idx(name: str) -> int:
        if name not in index:
            index[name] = len(names)
            names.append(name)
        return index[name]

    kinds, src, dst, vf, vu = [], [], [], [], []
    for kind, a, b, lo, hi in specs:
        kinds.append(EDGE_CODE[kind])
        src.append(idx(a))
        dst.append(idx(b))
        vf.append(ALWAYS if lo is None else lo)
        vu.append(NEVER if hi is None else hi)
    edges = EdgeArrays(
        kind=np.array(kinds, np.int16),
        src=np.array(src, np.int64),
        dst=np.array(dst, np.int64),
        valid_from=np.array(vf, np.int64),
        valid_until=np.array(vu, np.int64),
        confidence=np.full(len(kinds), confidence),
    )
    return edges, names


#: The scenario of docs/cascade.md: X is a bad artifact seeded at 10.
SCENARIO: list[Spec] = [
    ("installed_on", "X", "H1", 5, N),  # H1 from 10
    ("installed_on", "X", "H2", 1, 8),  # removed at 8, before 10: H2 never
    ("installed_on", "X", "H3", 20, 30),  # installed later: H3 from 20
    ("built_on", "B1", "H1", 0, 9),  # finished before 10: clean
    ("built_on", "B2", "H1", 5, 12),  # running at 10: tainted from 10
    ("built_on", "B3", "H1", 15, 18),  # started later: tainted from 15
    ("built_on", "B4", "H1", 3, 10),  # finished exactly at 10: tainted (closed interval)
    ("produced", "B1", "A1", 9, N),
    ("produced", "B2", "A2", 12, N),  # A2 from 12
    ("produced", "B3", "A3", 18, N),  # A3 from 18
    ("contains", "R1", "A2", N, N),  # R1 from 12
    ("contains", "R1", "A9", N, N),
    ("contains", "R0", "A1", N, N),  # R0 clean
    ("distributed_to", "R1", "C1", 11, 11),  # before R1 was tainted: clean copy
    ("distributed_to", "R1", "C2", 13, 13),  # C2 from 13
    ("distributed_to", "R1", "C3", 12, 12),  # the same moment: tainted
    ("distributed_to", "R0", "C4", 20, 20),
    ("connected_to", "H1", "H4", 14, 14),  # H4 from 14
    ("connected_to", "H4", "H1", 16, 16),  # cycle back: no improvement
    ("connected_to", "H4", "H5", 13, 13),  # before H4 was compromised: nothing
    ("connected_to", "H4", "H5", 17, 17),  # H5 from 17
    ("part_of", "H5", "ORG", N, N),  # ORG from 17
]

EXPECTED = {
    "X": 10,
    "H1": 10,
    "H3": 20,
    "B2": 10,
    "B3": 15,
    "B4": 10,
    "A2": 12,
    "A3": 18,
    "R1": 12,
    "C2": 13,
    "C3": 12,
    "H4": 14,
    "H5": 17,
    "ORG": 17,
}
UNREACHED = {"H2", "B1", "A1", "R0", "A9", "C1", "C4"}


def reference_arrival(
    n: int, edges: EdgeArrays, seeds: Sequence[int], times: Sequence[int]
) -> list[int]:
    """A plain heap-based earliest-arrival over compiled arcs (test oracle)."""
    arcs = compile_arcs(edges, DEFAULT_RULES)
    out: list[list[tuple[int, int, int]]] = [[] for _ in range(n)]
    for f, t, lo, hi in zip(
        arcs.frm.tolist(), arcs.to.tolist(), arcs.lo.tolist(), arcs.hi.tolist(), strict=True
    ):
        out[f].append((t, lo, hi))
    best = [NEVER] * n
    heap: list[tuple[int, int]] = []
    for s, t in zip(seeds, times, strict=True):
        if t < best[s]:
            best[s] = t
            heapq.heappush(heap, (t, s))
    while heap:
        t, u = heapq.heappop(heap)
        if t > best[u]:
            continue
        for v, lo, hi in out[u]:
            if t <= hi:
                c = max(t, lo)
                if c < best[v]:
                    best[v] = c
                    heapq.heappush(heap, (c, v))
    return best


def random_graph(seed: int, n_nodes: int = 40, n_edges: int = 120) -> EdgeArrays:
    rnd = random.Random(seed)
    kinds = [
        str(k)
        for k in (
            "installed_on",
            "built_on",
            "produced",
            "contains",
            "distributed_to",
            "connected_to",
            "part_of",
            "depends_on",
            "uses",
        )
    ]
    specs: list[Spec] = []
    for _ in range(n_edges):
        a, b = rnd.randrange(n_nodes), rnd.randrange(n_nodes)
        lo = rnd.choice([None, rnd.randrange(0, 50)])
        hi = rnd.choice([None, (lo or 0) + rnd.randrange(0, 30)])
        specs.append((rnd.choice(kinds), f"n{a}", f"n{b}", lo, hi))
    edges, _names = build(specs, confidence=rnd.choice([1.0, 0.9]))
    return edges


#: Explanations where the tie-breaks matter (seed X at 10, like :data:`SCENARIO`, so both can
#: share one propagation): every node has several tight parents. The NumPy engine's order is
#: fewest hops, then highest confidence, then lowest arc number; :data:`TIE_PARENTS` says who
#: must win. Confidences are set by :func:`build_ties`.
TIES: list[Spec] = [
    ("installed_on", "X", "T1", N, N),  # T1: hops 1, confidence 1.0
    ("installed_on", "X", "T2", N, N),  # T2: hops 1, confidence 1.0
    ("connected_to", "T2", "T3", N, N),  # T3: two parents at hops 1, both 0.8: the lower arc
    ("connected_to", "T1", "T3", N, N),
    ("built_on", "TB", "T1", N, N),  # a longer path of confidence 1.0 to TV ...
    ("produced", "TB", "TA", N, N),
    ("installed_on", "TA", "TV", N, N),  # ... (hops 4) loses to fewer facts (hops 2, 0.8)
    ("connected_to", "T1", "TV", N, N),
    ("installed_on", "X", "TW", N, N),  # confidence 0.5, the lower arc number ...
    ("installed_on", "X", "TW", 5, N),  # ... loses to confidence 1.0
    ("connected_to", "X", "TU", N, N),  # TU: 0.8
    ("installed_on", "TU", "TY", N, N),  # TY: 0.8 * 1.0 == 1.0 * 0.8: the lower arc wins
    ("connected_to", "T1", "TY", N, N),
]
#: node -> (the spec explaining it, hops, confidence)
TIE_PARENTS = {
    "T3": (("connected_to", "T2", "T3", N, N), 2, 0.8),
    "TV": (("connected_to", "T1", "TV", N, N), 2, 0.8),
    "TW": (("installed_on", "X", "TW", 5, N), 1, 1.0),
    "TY": (("installed_on", "TU", "TY", N, N), 2, 0.8),
}


def build_ties(specs: Sequence[Spec]) -> tuple[EdgeArrays, list[str]]:
    """:func:`build` with the confidence 0.5 that :data:`TIES` gives its first X -> TW fact."""
    edges, names = build(specs)
    conf = edges.confidence.copy()
    conf[list(specs).index(("installed_on", "X", "TW", N, N))] = 0.5
    return dataclasses.replace(edges, confidence=conf), names
