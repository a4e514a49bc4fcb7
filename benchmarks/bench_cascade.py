"""Benchmark the cascade engine.

1. Generates a temporal supply-chain graph with NumPy into /tmp (default: 10.5 million edges:
   internal hosts and installed software, lateral movement, build hosts, builds, artifacts,
   releases, 2 million customer hosts in 1 million customer organisations), then runs the full
   propagation with explanations (parent pointer, hop count and confidence for every reached
   node) and reports time and peak memory.
2. On a smaller graph from the same generator, runs a straightforward NetworkX
   implementation of the same semantics (a MultiDiGraph with one edge per propagation arc and
   a heap-based earliest-arrival search with parent pointers) and the NumPy engine on the
   same input in the same process, checks that both give identical earliest times, and
   prints the speed-up.

Usage: python benchmarks/bench_cascade.py [--quick] [--edges N] [--small-edges N]
"""

from __future__ import annotations

import argparse
import gc
import heapq
import os
import resource
import threading
import time
from pathlib import Path

import numpy as np

from taintline.graph.cascade import (
    ALWAYS,
    EDGE_CODE,
    NEVER,
    EdgeArrays,
    compile_arcs,
    earliest_arrival,
    explain,
)
from taintline.graph.rules import DEFAULT_RULES, Behaviour, Direction

HOUR = 3_600_000_000
DAY = 24 * HOUR
SPAN = 730 * DAY
OUT = Path("/tmp/taintline-bench-cascade")


class PeakRss:
    """Samples this process's resident memory every 20 ms (peak of a phase)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def generate(total_edges: int, seed: int = 7) -> tuple[int, EdgeArrays, np.ndarray, np.ndarray]:
    """A graph with about ``total_edges`` edges. Sizes scale with it (10.5 M -> 1 M customers)."""
    rng = np.random.default_rng(seed)
    scale = total_edges / 10_500_000
    n_soft = max(50, int(50_000 * scale))
    n_hosts = max(100, int(20_000 * scale))
    n_build_hosts = max(5, int(500 * scale))
    n_builds = max(20, int(200_000 * scale))
    n_releases = max(5, int(20_000 * scale))
    n_orgs = max(10, int(1_000_000 * scale))
    n_chosts = 2 * n_orgs
    base = np.cumsum([0, n_soft, n_hosts, n_builds, 2 * n_builds, n_releases, n_orgs])
    soft0, host0, build0, art0, rel0, org0, chost0 = (int(x) for x in base)
    n_nodes = chost0 + n_chosts

    parts: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(kind: str, src: np.ndarray, dst: np.ndarray, vf: np.ndarray, vu: np.ndarray) -> None:
        parts.append((kind, src.astype(np.int64), dst.astype(np.int64), vf, vu))

    def times(n: int) -> np.ndarray:
        return rng.integers(0, SPAN, n, dtype=np.int64)

    # installed software on internal hosts; 30% removed later
    n = int(1_000_000 * scale)
    vf = times(n)
    vu = np.where(rng.random(n) < 0.3, vf + rng.integers(DAY, 200 * DAY, n), NEVER)
    add(
        "installed_on",
        soft0 + rng.integers(0, n_soft, n),
        host0 + rng.integers(0, n_hosts, n),
        vf,
        vu,
    )
    # lateral movement inside the company (instant logins)
    n = int(1_000_000 * scale)
    t = times(n)
    add(
        "connected_to",
        host0 + rng.integers(0, n_hosts, n),
        host0 + rng.integers(0, n_hosts, n),
        t,
        t,
    )
    # builds on build hosts
    b = np.arange(n_builds)
    started = times(n_builds)
    finished = started + rng.integers(HOUR // 6, 3 * HOUR, n_builds)
    add("built_on", build0 + b, host0 + rng.integers(0, n_build_hosts, n_builds), started, finished)
    # two outputs per build, each in the build's release
    outs = np.repeat(b, 2)
    art = art0 + np.arange(2 * n_builds)
    add("produced", build0 + outs, art, finished[outs], np.full(2 * n_builds, NEVER))
    add(
        "contains",
        rel0 + outs % n_releases,
        art,
        np.full(2 * n_builds, ALWAYS),
        np.full(2 * n_builds, NEVER),
    )
    # customer hosts belong to customers and download releases
    ch = np.arange(n_chosts)
    add("part_of", chost0 + ch, org0 + ch // 2, np.full(n_chosts, ALWAYS), np.full(n_chosts, NEVER))
    n = int(3_500_000 * scale)
    t = times(n)
    add(
        "distributed_to",
        rel0 + rng.integers(0, n_releases, n),
        chost0 + rng.integers(0, n_chosts, n),
        t,
        t,
    )
    # connections between customer hosts
    used = sum(len(p[1]) for p in parts)
    n = max(0, total_edges - used)
    t = times(n)
    add(
        "connected_to",
        chost0 + rng.integers(0, n_chosts, n),
        chost0 + rng.integers(0, n_chosts, n),
        t,
        t,
    )

    edges = EdgeArrays(
        kind=np.concatenate([np.full(len(p[1]), EDGE_CODE[p[0]], np.int16) for p in parts]),
        src=np.concatenate([p[1] for p in parts]),
        dst=np.concatenate([p[2] for p in parts]),
        valid_from=np.concatenate([p[3] for p in parts]),
        valid_until=np.concatenate([p[4] for p in parts]),
        confidence=np.ones(sum(len(p[1]) for p in parts)),
    )
    seeds = soft0 + rng.choice(n_soft, 3, replace=False)
    seed_times = rng.integers(0, SPAN // 4, 3, dtype=np.int64)
    return n_nodes, edges, seeds.astype(np.int64), seed_times


def save(folder: Path, edges: EdgeArrays) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("kind", "src", "dst", "valid_from", "valid_until", "confidence"):
        np.save(folder / f"{name}.npy", getattr(edges, name))


def load(folder: Path) -> EdgeArrays:
    cols = {
        name: np.load(folder / f"{name}.npy")
        for name in ("kind", "src", "dst", "valid_from", "valid_until", "confidence")
    }
    return EdgeArrays(**cols)


def run_numpy(
    n_nodes: int, edges: EdgeArrays, seeds: np.ndarray, seed_times: np.ndarray
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    t0 = time.perf_counter()
    arcs = compile_arcs(edges)
    t1 = time.perf_counter()
    arrival = earliest_arrival(n_nodes, arcs, seeds, seed_times)
    t2 = time.perf_counter()
    parent, hops, _conf = explain(n_nodes, arcs, arrival, seeds, seed_times)
    t3 = time.perf_counter()
    # every reached node but the roots has a parent pointer: its full path is recoverable
    reached = arrival != NEVER
    assert bool(np.all((parent[reached] >= 0) | (hops[reached] == 0)))
    times = {"compile": t1 - t0, "earliest": t2 - t1, "explain": t3 - t2, "total": t3 - t0}
    return times, arrival, parent


def run_networkx(
    n_nodes: int, edges: EdgeArrays, seeds: np.ndarray, seed_times: np.ndarray
) -> tuple[float, list[int]]:
    """The straightforward implementation: a Python object per arc, a heap per node visit."""
    import networkx as nx

    t0 = time.perf_counter()
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(range(n_nodes))
    kinds = edges.kind.tolist()
    src, dst = edges.src.tolist(), edges.dst.tolist()
    vf, vu = edges.valid_from.tolist(), edges.valid_until.tolist()
    conf = edges.confidence.tolist()
    for rule in DEFAULT_RULES:
        code = EDGE_CODE[str(rule.edge)]
        for i, k in enumerate(kinds):
            if k != code:
                continue
            a, b = (src[i], dst[i]) if rule.direction is Direction.FORWARD else (dst[i], src[i])
            hi = vf[i] if rule.behaviour is Behaviour.INSTANT else vu[i]
            graph.add_edge(a, b, lo=vf[i], hi=hi, factor=conf[i] * rule.factor, edge=i)
    best = dict.fromkeys(graph.nodes, NEVER)
    parent: dict[int, tuple[int, int]] = {}
    heap: list[tuple[int, int]] = []
    for s, t in zip(seeds.tolist(), seed_times.tolist(), strict=True):
        if t < best[s]:
            best[s] = t
            heapq.heappush(heap, (t, s))
    while heap:
        t, u = heapq.heappop(heap)
        if t > best[u]:
            continue
        for _, v, data in graph.out_edges(u, data=True):
            if t <= data["hi"]:
                c = max(t, data["lo"])
                if c < best[v]:
                    best[v] = c
                    parent[v] = (u, data["edge"])
                    heapq.heappush(heap, (c, v))
    elapsed = time.perf_counter() - t0
    return elapsed, [best[i] for i in range(n_nodes)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    ap.add_argument("--edges", type=int, default=None)
    ap.add_argument("--small-edges", type=int, default=None)
    args = ap.parse_args()
    big = args.edges or (500_000 if args.quick else 10_500_000)
    small = args.small_edges or (100_000 if args.quick else 300_000)

    print(f"== baseline: NetworkX vs NumPy engine on {small:,} edges (same process) ==")
    n_nodes, edges, seeds, seed_times = generate(small, seed=3)
    nx_time, nx_arrival = run_networkx(n_nodes, edges, seeds, seed_times)
    np_runs = [run_numpy(n_nodes, edges, seeds, seed_times) for _ in range(3)]
    np_time = min(r[0]["total"] for r in np_runs)
    identical = np_runs[0][1].tolist() == nx_arrival
    reached_small = int((np_runs[0][1] != NEVER).sum())
    print(f"nodes {n_nodes:,}  reached {reached_small:,}")
    print(
        f"networkx: {nx_time:.3f} s   numpy engine: {np_time:.3f} s (best of 3)   "
        f"speed-up {nx_time / np_time:.1f}x   identical earliest times: {identical}"
    )
    del edges, nx_arrival, np_runs
    gc.collect()

    print(f"== full propagation with paths on {big:,} edges ==")
    t0 = time.perf_counter()
    n_nodes, edges, seeds, seed_times = generate(big)
    gen = time.perf_counter() - t0
    folder = OUT / f"e{big}"
    save(folder, edges)
    del edges
    gc.collect()
    edges = load(folder)
    print(f"generated {len(edges):,} edges, {n_nodes:,} nodes in {gen:.1f} s -> {folder}")
    before = PeakRss.rss()
    with PeakRss() as mem:
        times, arrival, parent = run_numpy(n_nodes, edges, seeds, seed_times)
    reached = int((arrival != NEVER).sum())
    with_parent = int((parent >= 0).sum())
    print(f"reached {reached:,} nodes ({with_parent:,} with a parent pointer = full path)")
    print("times: " + "  ".join(f"{k} {v:.2f} s" for k, v in times.items()))
    print(f"edges/s: {len(edges) / times['total']:,.0f}")
    print(
        f"memory: RSS before {before / 2**30:.2f} GiB, peak during propagation "
        f"{mem.peak / 2**30:.2f} GiB, process max RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    )
    ok_time = times["total"] < 30
    ok_mem = mem.peak < 4 * 2**30
    print(
        f"target <30 s: {'met' if ok_time else 'MISSED'}; target <4 GB: "
        f"{'met' if ok_mem else 'MISSED'}; target >=20x vs networkx: "
        f"{'met' if nx_time / np_time >= 20 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
