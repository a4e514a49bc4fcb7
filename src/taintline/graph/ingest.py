"""``graph add``: detect each file's format, parse it, write its nodes and edges to the case.

Readers are listed explicitly in :data:`READERS` (detection order: the most specific first).
Each file is one transaction: a file that cannot be read leaves the case as it was, and the
other files are still added.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from taintline.case import Case
from taintline.compressed import CompressedInputError, read_input
from taintline.errors import Problem, UsageError
from taintline.graph.interface import GraphFacts, GraphReader, ReadContext
from taintline.graph.readers.intoto import InToto
from taintline.graph.readers.osquery import Osquery
from taintline.graph.readers.sbom import CycloneDx, Spdx
from taintline.graph.readers.spdx3 import Spdx3
from taintline.graph.readers.tables import (
    AuthCsv,
    BuildsCsv,
    DistributionCsv,
    DistributionJson,
    InventoryCsv,
)
from taintline.graph.readers.zeek import ZeekConn
from taintline.model import Edge, EdgeKind, Node, NodeKind, NodeRef

READERS: tuple[GraphReader, ...] = (
    CycloneDx(),
    Spdx(),
    Spdx3(),
    InToto(),
    Osquery(),
    ZeekConn(),
    DistributionJson(),
    BuildsCsv(),
    AuthCsv(),
    DistributionCsv(),
    InventoryCsv(),
)

HEAD_BYTES = 64 * 1024
#: Files larger than this (or decompressing to more) are refused: graph inputs are parsed in
#: memory.
MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024


@dataclass(slots=True)
class FileResult:
    path: Path
    format: str | None
    #: Nodes and edges the case did not hold yet (0 when the file was added before).
    nodes: int = 0
    edges: int = 0
    #: Nodes and edges the file stated, new or not.
    read_nodes: int = 0
    read_edges: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: Deviations from the format's spec that were read through.
    warnings: list[Problem] = field(default_factory=list)


def reader_named(name: str) -> GraphReader:
    for reader in READERS:
        if reader.name == name:
            return reader
    raise UsageError(
        f"unknown graph format {name!r}; choose one of " + ", ".join(r.name for r in READERS)
    )


def detect(head: bytes) -> GraphReader | None:
    for reader in READERS:
        if reader.sniff(head):
            return reader
    return None


def read_file(
    path: Path, ctx: ReadContext, fmt: str | None = None
) -> tuple[str | None, GraphFacts]:
    """Detect and parse one file; problems come back in the facts, never as exceptions."""
    facts = GraphFacts()
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            facts.problems.append(Problem(str(path), f"file too large ({size} bytes)"))
            return None, facts
        data, _compression = read_input(path, MAX_FILE_BYTES)  # .gz, .bz2, .zst by content
    except OSError as exc:
        facts.problems.append(Problem(str(path), f"cannot read: {exc.strerror or exc}"))
        return None, facts
    except CompressedInputError as exc:
        facts.problems.append(Problem(str(path), str(exc)))
        return None, facts
    reader = reader_named(fmt) if fmt else detect(data[:HEAD_BYTES])
    if reader is None:
        facts.problems.append(Problem(str(path), "unrecognised format (see docs/cascade.md)"))
        return None, facts
    try:
        return reader.name, reader.read(path, data, ctx)
    except RecursionError:
        facts.problems.append(Problem(str(path), "document nested too deeply"))
    except (ValueError, TypeError, KeyError, UnicodeError, csv.Error) as exc:
        facts.problems.append(Problem(str(path), f"cannot parse as {reader.name}: {exc}"))
    return reader.name, facts


def _endpoint_nodes(edges: Iterable[Edge]) -> list[Node]:
    return [Node(ref.kind, ref.key, {}) for e in edges for ref in (e.src, e.dst)]


def write_facts(case: Case, facts: GraphFacts, source: str) -> tuple[int, int]:
    with case.transaction():
        nodes = case.add_nodes([*_endpoint_nodes(facts.edges), *facts.nodes], source=source)
        edges = case.add_edges(facts.edges)
    return nodes, edges


def add_files(
    case: Case, paths: Iterable[Path], *, host: str | None = None, fmt: str | None = None
) -> list[FileResult]:
    ctx = ReadContext(recorded_at=case.now(), host=host)
    results: list[FileResult] = []
    for path in paths:
        name, facts = read_file(path, ctx, fmt)
        result = FileResult(
            path, name, problems=list(facts.problems), warnings=list(facts.warnings)
        )
        result.read_nodes, result.read_edges = len(facts.nodes), len(facts.edges)
        if facts.edges or facts.nodes:
            result.nodes, result.edges = write_facts(case, facts, f"{name}:{path.name}")
        results.append(result)
    return results


def facts_from_findings(case: Case) -> GraphFacts:
    """Turn scan/hunt findings already in the case into graph facts.

    - a finding with an ``evidence.sha256`` of kind ``ioc.hash*``: the artifact node, flagged
      (``attrs.flagged``), and if the finding names a host, ``artifact -installed_on-> host``
      (open start: we only know it was there when scanned);
    - a hunt finding with a host, a time and indicators: ``indicator -observed_on-> host``.
    """
    now = case.now()
    facts = GraphFacts()
    for f in case.findings():
        sha = f.evidence.get("sha256") if isinstance(f.evidence, dict) else None
        if f.kind.startswith("ioc.hash") and isinstance(sha, str) and sha:
            ref = NodeRef(NodeKind.ARTIFACT, sha.lower())
            facts.nodes.append(
                Node(ref.kind, ref.key, {"flagged": True, "finding": f.kind, "subject": f.subject})
            )
            if f.host:
                facts.edges.append(
                    Edge(
                        EdgeKind.INSTALLED_ON,
                        ref,
                        NodeRef(NodeKind.HOST, f.host.lower()),
                        f"finding:{f.fingerprint}",
                        None,
                        None,
                        now,
                        attrs={"observed": str(f.time or ""), "path": f.subject},
                    )
                )
        elif str(f.source) == "hunt" and f.host and f.time and f.indicators:
            for indicator in f.indicators:
                facts.edges.append(
                    Edge(
                        EdgeKind.OBSERVED_ON,
                        NodeRef(NodeKind.INDICATOR, indicator),
                        NodeRef(NodeKind.HOST, f.host.lower()),
                        f"finding:{f.fingerprint}",
                        f.time,
                        f.time,
                        now,
                    )
                )
    return facts
