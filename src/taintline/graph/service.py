"""Library entry points the CLI (and the demo, and a later report) call."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from taintline.case import Case
from taintline.errors import UsageError
from taintline.graph.cascade import (
    ALWAYS,
    NEVER,
    Propagation,
    compile_arcs,
    latest_departure,
    propagate,
)
from taintline.graph.rules import DEFAULT_RULES, Rule
from taintline.graph.store import (
    CaseGraph,
    Seed,
    from_us,
    load_graph,
    resolve_seeds,
    save_run,
    seeds_from_findings,
    to_us,
)
from taintline.model import Finding, FindingSource, NodeKind, NodeRef, Severity
from taintline.sparklocal import SparkSettings, session_scope

if TYPE_CHECKING:
    from taintline.graph.spark_parquet import ParquetCascade

ENGINES = ("numpy", "spark")

#: Node kinds that get a ``cascade.compromised`` finding when reached (not the seeds).
FINDING_KINDS = (NodeKind.HOST, NodeKind.BUILD, NodeKind.RELEASE, NodeKind.ORG)
MAX_FINDINGS = 10_000


@dataclass(frozen=True, slots=True)
class CascadeOutcome:
    run_id: str
    graph: CaseGraph
    result: Propagation
    seeds: tuple[Seed, ...]
    missing: tuple[str, ...]


def run_propagation(
    graph: CaseGraph,
    seeds: Sequence[Seed],
    engine: str = "numpy",
    rules: Sequence[Rule] = DEFAULT_RULES,
    spark: SparkSettings | None = None,
) -> tuple[Propagation, list[str]]:
    nodes, times, missing = resolve_seeds(graph, seeds)
    if engine == "numpy":
        return propagate(graph.n_nodes, graph.edges, nodes, times, rules), missing
    if engine == "spark":
        from taintline.graph.sparkengine import CASCADE_CONF, propagate_spark

        with session_scope("taintline-cascade", spark, CASCADE_CONF) as session:
            return propagate_spark(
                graph.n_nodes,
                compile_arcs(graph.edges, rules),
                nodes,
                times,
                tuple(rules),
                spark=session,
            ), missing
    raise UsageError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def run_cascade(
    case: Case,
    seeds: Sequence[Seed] = (),
    *,
    from_findings: bool = False,
    engine: str = "numpy",
    rules: Sequence[Rule] = DEFAULT_RULES,
    record_findings: bool = True,
    spark: SparkSettings | None = None,
) -> CascadeOutcome:
    all_seeds = list(seeds)
    if from_findings:
        all_seeds += seeds_from_findings(case)
    if not all_seeds:
        raise UsageError("no seeds: give --seed KIND:KEY@TIME or --from-findings")
    graph = load_graph(case)
    result, missing = run_propagation(graph, all_seeds, engine, rules, spark)
    run_id = save_run(
        case,
        graph,
        result,
        all_seeds,
        engine,
        {"missing_seeds": missing, "edges": len(graph.edges)},
    )
    if record_findings:
        case.add_findings(_findings(graph, result, run_id), origin="cascade")
    return CascadeOutcome(run_id, graph, result, tuple(all_seeds), tuple(missing))


def _findings(graph: CaseGraph, result: Propagation, run_id: str) -> list[Finding]:
    out: list[Finding] = []
    for node in result.reached.tolist():
        if result.parent[node] < 0:
            continue
        ref = graph.ref(node)
        if ref.kind not in FINDING_KINDS:
            continue
        when = from_us(int(result.arrival[node]))
        root = graph.ref(result.root(node))
        out.append(
            Finding(
                kind="cascade.compromised",
                severity=Severity.HIGH if result.confidence[node] >= 0.5 else Severity.MEDIUM,
                subject=str(ref),
                message=f"{ref} could be compromised from {when or 'always'} via"
                f" {int(result.hops[node])} fact(s) from {root}",
                source=FindingSource.CASCADE,
                host=ref.key if ref.kind is NodeKind.HOST else None,
                time=when,
                evidence={
                    "run_id": run_id,
                    "root": str(root),
                    "confidence": round(float(result.confidence[node]), 4),
                    "hops": int(result.hops[node]),
                },
            )
        )
        if len(out) >= MAX_FINDINGS:
            break
    return out


@dataclass(frozen=True, slots=True)
class UpstreamNode:
    ref: NodeRef
    #: The latest time this node could have been compromised and still explain the target.
    latest: datetime | None
    root_candidate: bool
    flagged: bool
    #: The end-of-life date ``taintline eol`` gave the node (``"yes"`` when not published).
    end_of_life: str | None = None


def upstream(case: Case, target: Seed, rules: Sequence[Rule] = DEFAULT_RULES) -> list[UpstreamNode]:
    """Root-cause candidates for ``target`` (a node compromised by ``target.time``, or at any
    time if no time is given): every node that reaches it over a time-respecting path."""
    graph = load_graph(case)
    idx = graph.index(target.ref)
    if idx is None:
        raise UsageError(f"{target.ref} is not in the case graph")
    arcs = compile_arcs(graph.edges, rules)
    up = latest_departure(
        graph.n_nodes,
        arcs,
        np.array([idx], np.int64),
        np.array([to_us(target.time, NEVER)], np.int64),
    )
    roots = set(up.roots.tolist())
    out: list[UpstreamNode] = []
    for node in np.flatnonzero(up.latest != ALWAYS).tolist():
        ref = graph.ref(node)
        if node == idx or ref.kind is NodeKind.INDICATOR:  # sightings are evidence, not causes
            continue
        out.append(
            UpstreamNode(
                ref, from_us(int(up.latest[node])), node in roots, bool(graph.flagged[node])
            )
        )
    ended = _end_of_life(case)
    out = [
        UpstreamNode(u.ref, u.latest, u.root_candidate, u.flagged, ended.get(u.ref))
        if u.ref in ended
        else u
        for u in out
    ]
    order = {NodeKind.SOFTWARE: 0, NodeKind.ARTIFACT: 1, NodeKind.INDICATOR: 2}
    out.sort(
        key=lambda u: (not u.root_candidate, not u.flagged, order.get(u.ref.kind, 9), str(u.ref))
    )
    return out


def cascade_on_cluster(
    case: Case,
    edges_uri: str,
    seeds: Sequence[Seed],
    spark: SparkSettings | None = None,
    output: str | None = None,
    console: Any = None,
) -> ParquetCascade:
    """The cascade on a Spark cluster over an edge table in Parquet (see
    :mod:`taintline.graph.spark_parquet`); the result is stored in ``case`` as a run.
    ``console`` (rich) shows the stage on a terminal."""
    from taintline.graph.spark_parquet import run_parquet_cascade
    from taintline.graph.sparkengine import CASCADE_CONF

    status = console.status("cascade on Spark") if console is not None else nullcontext()
    with status as shown, session_scope("taintline-cascade", spark, CASCADE_CONF) as session:

        def stage(text: str) -> None:
            if shown is not None:
                shown.update(f"cascade on Spark: {text}")

        return run_parquet_cascade(session, case, edges_uri, seeds, output=output, stage=stage)


def _end_of_life(case: Case) -> dict[NodeRef, str]:
    rows = case.con.execute(
        "SELECT kind, lower(key), json_extract_string(attrs, '$.end_of_life') FROM nodes"
        " WHERE json_extract_string(attrs, '$.end_of_life') IS NOT NULL"
    ).fetchall()
    return {
        NodeRef(NodeKind(kind), key): str(value)
        for kind, key, value in rows
        if kind in {k.value for k in NodeKind}
    }
