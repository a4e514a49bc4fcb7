"""The cascade engine: earliest possible compromise time of every node, over time-respecting
paths, with the explaining path; and the reverse question (which upstream nodes could explain
a compromise).

Everything here works on NumPy arrays (one entry per node / per arc), never on a Python object
per edge, so ten million facts propagate in seconds.

Times are ``int64`` microseconds since the Unix epoch (UTC). :data:`NEVER` (the largest int64)
means "not reached" / "no end"; :data:`ALWAYS` (the smallest) means "no start" / "since
always" (e.g. an artifact known to be bad, with no known creation time).

Semantics (``docs/cascade.md``):

1. Arcs come from edges and the rule table (:mod:`taintline.graph.rules`): an arc
   ``u -> v`` with ``lo``/``hi`` passes compromise from ``u`` (compromised at ``a``) to ``v``
   if ``a <= hi``, and ``v`` is compromised from ``max(a, lo)``. Intervals are closed: a
   compromise arriving at the very moment a relation ends still passes (conservative for
   defenders, and robust against clocks with second granularity).
2. ``arrival[v]`` is the minimum over all time-respecting paths from any seed. Because every
   arc's arrival function is non-decreasing in ``a``, the minimum is well defined, cycles
   terminate, and label-correcting rounds reach the fixed point.
3. The explaining path of ``v`` uses only *tight* arcs (``max(arrival[u], lo) ==
   arrival[v]``): it is the path with the fewest facts among earliest-arrival paths; among
   those, the one with the highest confidence (product of rule factor x edge confidence along
   the path); remaining ties go to the lowest arc number (edge order, then rule order).
   Seeds reached at their own seed time are roots (no parent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from taintline.graph.rules import DEFAULT_RULES, Behaviour, Direction, Rule
from taintline.model import EdgeKind

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
Bool = npt.NDArray[np.bool_]

NEVER = np.iinfo(np.int64).max
ALWAYS = np.iinfo(np.int64).min

#: Edge kind codes used in :class:`EdgeArrays` (index into this tuple).
EDGE_KINDS: tuple[EdgeKind, ...] = tuple(EdgeKind)
EDGE_CODE: dict[str, int] = {str(k): i for i, k in enumerate(EDGE_KINDS)}


@dataclass(frozen=True, slots=True)
class EdgeArrays:
    """Edges as columns. ``src``/``dst`` are node numbers; times are int64 microseconds with
    :data:`ALWAYS` for an open start and :data:`NEVER` for an open end."""

    kind: npt.NDArray[np.int16]
    src: I64
    dst: I64
    valid_from: I64
    valid_until: I64
    confidence: F64

    def __len__(self) -> int:
        return int(self.kind.shape[0])


@dataclass(frozen=True, slots=True)
class Arcs:
    """Propagation arcs compiled from edges and rules. Arc number ``i`` is its position."""

    frm: I64
    to: I64
    lo: I64
    hi: I64
    factor: F64
    edge: I64  # the edge each arc comes from
    rule: npt.NDArray[np.int16]  # index into the rule table

    def __len__(self) -> int:
        return int(self.frm.shape[0])


@dataclass(frozen=True, slots=True)
class Propagation:
    """The result: one entry per node."""

    arrival: I64  # NEVER = not reached
    parent: I64  # arc number that explains the node, -1 for roots and unreached nodes
    hops: I32  # facts on the explaining path, -1 unreached
    confidence: F64
    arcs: Arcs
    rules: tuple[Rule, ...]

    @property
    def reached(self) -> I64:
        return np.flatnonzero(self.arrival != NEVER).astype(np.int64)

    def path(self, node: int) -> list[int]:
        """The arc numbers explaining ``node``, from the root to ``node``."""
        out: list[int] = []
        seen: set[int] = set()
        while node >= 0 and self.parent[node] >= 0 and node not in seen:
            seen.add(node)
            arc = int(self.parent[node])
            out.append(arc)
            node = int(self.arcs.frm[arc])
        out.reverse()
        return out

    def root(self, node: int) -> int:
        path = self.path(node)
        return int(self.arcs.frm[path[0]]) if path else node


def compile_arcs(edges: EdgeArrays, rules: Sequence[Rule] = DEFAULT_RULES) -> Arcs:
    """One arc per (edge, matching rule), in rule order then edge order."""
    parts: list[tuple[I64, I64, I64, I64, F64, I64, npt.NDArray[np.int16]]] = []
    for rule_no, rule in enumerate(rules):
        sel = np.flatnonzero(edges.kind == EDGE_CODE[str(rule.edge)]).astype(np.int64)
        if rule.direction is Direction.FORWARD:
            frm, to = edges.src[sel], edges.dst[sel]
        else:
            frm, to = edges.dst[sel], edges.src[sel]
        lo = edges.valid_from[sel]
        hi = lo.copy() if rule.behaviour is Behaviour.INSTANT else edges.valid_until[sel]
        factor = edges.confidence[sel] * rule.factor
        parts.append((frm, to, lo, hi, factor, sel, np.full(sel.shape, rule_no, np.int16)))
    if not parts:
        empty = np.empty(0, np.int64)
        return Arcs(empty, empty, empty, empty, np.empty(0), empty, np.empty(0, np.int16))
    return Arcs(
        frm=np.concatenate([p[0] for p in parts]),
        to=np.concatenate([p[1] for p in parts]),
        lo=np.concatenate([p[2] for p in parts]),
        hi=np.concatenate([p[3] for p in parts]),
        factor=np.concatenate([p[4] for p in parts]).astype(np.float64),
        edge=np.concatenate([p[5] for p in parts]),
        rule=np.concatenate([p[6] for p in parts]),
    )


def _csr(keys: I64, n_nodes: int) -> tuple[I64, I64]:
    """(order, indptr): arcs grouped by ``keys`` (stable, so arc order is kept in a group)."""
    order = np.argsort(keys, kind="stable").astype(np.int64)
    counts = np.bincount(keys, minlength=n_nodes)
    indptr = np.zeros(n_nodes + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return order, indptr


def _gather_counts(indptr: I64, nodes: I64) -> tuple[I64, I64]:
    """Positions (into the CSR order) of every arc of ``nodes``, and arcs per node."""
    starts = indptr[nodes]
    counts = indptr[nodes + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64), counts
    ends = np.cumsum(counts)
    pos = np.repeat(starts - ends + counts, counts) + np.arange(total, dtype=np.int64)
    return pos, counts


def _gather(indptr: I64, nodes: I64) -> I64:
    return _gather_counts(indptr, nodes)[0]


def _seed_arrays(n_nodes: int, seeds: I64, times: I64) -> I64:
    arrival = np.full(n_nodes, NEVER, np.int64)
    np.minimum.at(arrival, seeds, times)
    return arrival


def earliest_arrival(n_nodes: int, arcs: Arcs, seeds: I64, seed_times: I64) -> I64:
    """Earliest compromise time per node (label-correcting, vectorised rounds)."""
    order, indptr = _csr(arcs.frm, n_nodes)
    to, lo, hi = arcs.to[order], arcs.lo[order], arcs.hi[order]
    arrival = _seed_arrays(n_nodes, seeds, seed_times)
    frontier = np.unique(seeds)
    while frontier.size:
        pos, counts = _gather_counts(indptr, frontier)
        t = np.repeat(arrival[frontier], counts)
        ok = t <= hi[pos]
        pos, t = pos[ok], t[ok]
        cand = np.maximum(t, lo[pos])
        dst = to[pos]
        better = cand < arrival[dst]
        if not better.any():
            break
        dst, cand = dst[better], cand[better]
        np.minimum.at(arrival, dst, cand)
        frontier = np.unique(dst)
    return arrival


def tight_arcs(arcs: Arcs, arrival: I64) -> Bool:
    """Arcs that achieve the earliest arrival of their destination."""
    a = arrival[arcs.frm]
    tight: Bool = (a != NEVER) & (a <= arcs.hi) & (np.maximum(a, arcs.lo) == arrival[arcs.to])
    return tight


def roots_of(arrival: I64, seeds: I64, seed_times: I64) -> I64:
    """Seeds reached at their own seed time (no earlier path) are the roots of explanations."""
    best = _seed_arrays(arrival.shape[0], seeds, seed_times)
    nodes = np.unique(seeds)
    roots: I64 = nodes[arrival[nodes] == best[nodes]]
    return roots


def explain(
    n_nodes: int, arcs: Arcs, arrival: I64, seeds: I64, seed_times: I64
) -> tuple[I64, I32, F64]:
    """Parent arc, hops and confidence per node (breadth-first over tight arcs)."""
    parent = np.full(n_nodes, -1, np.int64)
    hops = np.full(n_nodes, -1, np.int32)
    conf = np.zeros(n_nodes, np.float64)
    tight = np.flatnonzero(tight_arcs(arcs, arrival)).astype(np.int64)
    order, indptr = _csr(arcs.frm[tight], n_nodes)
    arc_ids = tight[order]
    level = roots_of(arrival, seeds, seed_times)
    hops[level] = 0
    conf[level] = 1.0
    depth = 0
    while level.size:
        depth += 1
        ids = arc_ids[_gather(indptr, level)]
        dst = arcs.to[ids]
        fresh = hops[dst] < 0
        ids, dst = ids[fresh], dst[fresh]
        if not ids.size:
            break
        c = conf[arcs.frm[ids]] * arcs.factor[ids]
        # per destination: highest confidence, then lowest arc number
        pick = np.lexsort((ids, -c, dst))
        dst, ids, c = dst[pick], ids[pick], c[pick]
        first = np.ones(dst.shape, bool)
        first[1:] = dst[1:] != dst[:-1]
        dst, ids, c = dst[first], ids[first], c[first]
        parent[dst] = ids
        hops[dst] = depth
        conf[dst] = c
        level = dst
    return parent, hops, conf


def propagate(
    n_nodes: int,
    edges: EdgeArrays,
    seeds: I64,
    seed_times: I64,
    rules: Sequence[Rule] = DEFAULT_RULES,
    arcs: Arcs | None = None,
) -> Propagation:
    """Full propagation: earliest arrival, then explaining parents for every reached node."""
    if arcs is None:
        arcs = compile_arcs(edges, rules)
    seeds = np.asarray(seeds, np.int64)
    seed_times = np.asarray(seed_times, np.int64)
    arrival = earliest_arrival(n_nodes, arcs, seeds, seed_times)
    parent, hops, conf = explain(n_nodes, arcs, arrival, seeds, seed_times)
    return Propagation(arrival, parent, hops, conf, arcs, tuple(rules))


@dataclass(frozen=True, slots=True)
class Upstream:
    """Reverse reachability: ``latest[u]`` is the latest time ``u`` could have been
    compromised and still explain the targets (:data:`ALWAYS` = not upstream)."""

    latest: I64
    #: Upstream nodes with no upstream of their own: root-cause candidates.
    roots: I64
    targets: I64


def latest_departure(n_nodes: int, arcs: Arcs, targets: I64, target_times: I64) -> Upstream:
    """Which nodes could, over a time-respecting path, have compromised the targets by their
    times (``NEVER`` = at any time)."""
    order, indptr = _csr(arcs.to, n_nodes)
    frm, lo, hi = arcs.frm[order], arcs.lo[order], arcs.hi[order]
    latest = np.full(n_nodes, ALWAYS, np.int64)
    targets = np.asarray(targets, np.int64)
    np.maximum.at(latest, targets, np.asarray(target_times, np.int64))
    frontier = np.unique(targets)
    while frontier.size:
        pos = _gather(indptr, frontier)
        want = latest[arcs.to[order][pos]]
        ok = lo[pos] <= want
        pos, want = pos[ok], want[ok]
        cand = np.minimum(hi[pos], want)
        src = frm[pos]
        better = cand > latest[src]
        if not better.any():
            break
        src, cand = src[better], cand[better]
        np.maximum.at(latest, src, cand)
        frontier = np.unique(src)
    up = latest != ALWAYS
    lf, lt = latest[arcs.frm], latest[arcs.to]
    used = (
        (lf != ALWAYS)
        & (lt != ALWAYS)
        & (arcs.lo <= lt)
        & (lf <= np.minimum(arcs.hi, lt))
        & (arcs.frm != arcs.to)
    )
    has_up = np.zeros(n_nodes, bool)
    has_up[arcs.to[used]] = True
    is_target = np.zeros(n_nodes, bool)
    is_target[targets] = True
    roots = np.flatnonzero(up & ~has_up & ~is_target).astype(np.int64)
    return Upstream(latest, roots, np.unique(targets))
