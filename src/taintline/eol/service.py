"""``taintline eol`` as a library call: :func:`run_eol` (the CLI, the demo and the tests call it).

1. End-of-life data: files given (endoflife.date JSON, product Markdown, folders of them) are
   added as intel; a case without any gets the built-in campaign pack's facts.
2. Inventories and SBOMs given are added to the case graph with the graph readers (one reader
   vocabulary for ``graph add`` and ``eol``).
3. Every installed program and SBOM component in the case is matched (columnar), the findings
   are recorded, and the matched graph nodes get ``end_of_life`` (so the cascade's root-cause
   candidates list them first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa

from taintline.case import Case
from taintline.eol import findings as eol_findings
from taintline.eol.findings import ProductRow
from taintline.eol.match import Catalogue, Matches, connect, match
from taintline.eol.observe import observations
from taintline.errors import Problem
from taintline.graph.ingest import FileResult, add_files
from taintline.intel.store import (
    DEFAULT_PACK,
    IngestReport,
    eol_products,
    eol_records,
    ingest,
    ingest_pack,
)
from taintline.model import Finding, Node, NodeKind


@dataclass(frozen=True, slots=True)
class EolOptions:
    #: The day statuses are computed for (default: today, UTC).
    as_of: date | None = None
    #: Inventories and SBOMs to add to the case first.
    inventories: Sequence[Path] = ()
    #: End-of-life data files or folders to add first.
    data: Sequence[Path] = ()
    #: Host for inventories that do not name one (``osqueryi --json``).
    host: str | None = None
    #: Force the graph reader of the inventories (``--reader``).
    reader: str | None = None
    #: Record findings and mark graph nodes in the case.
    record: bool = True


@dataclass(slots=True)
class EolOutcome:
    as_of: date
    matches: pa.Table
    findings: list[Finding]
    summary: list[ProductRow]
    #: rows considered (installed programs and SBOM components in the case)
    observed: int
    products: int
    cycles: int
    data: IngestReport = field(default_factory=IngestReport)
    inventories: list[FileResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: the built-in pack was loaded because the case had no end-of-life data
    pack_loaded: bool = False
    marked_nodes: int = 0


def _has_eol_data(case: Case) -> bool:
    row = case.con.execute("SELECT count(*) FROM eol_cycles").fetchone()
    return bool(row and row[0])


def run_eol(case: Case, options: EolOptions | None = None) -> EolOutcome:
    options = options or EolOptions()
    as_of = options.as_of or case.now().date()
    problems: list[Problem] = []
    data = IngestReport()
    if options.data:
        data = ingest(case, options.data)
        problems += data.problems
    pack_loaded = False
    if not _has_eol_data(case):
        ingest_pack(case, DEFAULT_PACK)
        pack_loaded = True
    added: list[FileResult] = []
    if options.inventories:
        added = add_files(case, options.inventories, host=options.host, fmt=options.reader)
        for result in added:
            problems += result.problems
    catalogue = Catalogue.build(eol_products(case), eol_records(case))
    seen = observations(case)
    con = connect()
    try:
        matches = match(seen, catalogue, as_of, con=con)
        found = eol_findings.findings(matches, as_of)
        rows = eol_findings.summary(matches)
        nodes = _eol_nodes(matches)
        table = matches.to_arrow()
    finally:
        con.close()
    marked = 0
    if options.record:
        case.add_findings(found, origin="eol")
        if nodes:
            case.add_nodes(nodes, source="eol")
        marked = len(nodes)
    return EolOutcome(
        as_of=as_of,
        matches=table,
        findings=found,
        summary=rows,
        observed=seen.num_rows,
        products=catalogue.products,
        cycles=catalogue.cycles.num_rows,
        data=data,
        inventories=added,
        problems=problems,
        pack_loaded=pack_loaded,
        marked_nodes=marked,
    )


def _eol_nodes(matches: Matches) -> list[Node]:
    """Every graph node matched to an ended cycle, with its end-of-life facts (``end_of_life``
    is what the cascade's upstream listing sorts on)."""
    rows = matches.con.execute(
        """
        SELECT node, any_value(product), any_value(cycle), min(eol_date)
        FROM tl_matches
        WHERE status = 'end-of-life' AND node IS NOT NULL
        GROUP BY node ORDER BY node
        """
    ).fetchall()
    nodes: list[Node] = []
    for ref, product, cycle, eol in rows:
        kind, _, key = str(ref).partition(":")
        if kind not in (NodeKind.SOFTWARE, NodeKind.ARTIFACT):
            continue
        attrs = {"end_of_life": eol.isoformat() if eol else "yes", "eol_product": product}
        nodes.append(Node(NodeKind(kind), key, {**attrs, "eol_cycle": cycle}))
    return nodes
