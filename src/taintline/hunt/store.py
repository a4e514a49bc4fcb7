"""Writes a hunt into the case: the sightings table, findings, and ``observed_on`` edges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from taintline.case import Case, naive_utc
from taintline.hunt.certs import NO_HOST
from taintline.hunt.model import FileStats, Sighting
from taintline.hunt.sightings import findings, to_edge
from taintline.model import Node, NodeKind


@dataclass(frozen=True, slots=True)
class Saved:
    """How many of a hunt's facts were new to the case (a re-run over the same logs: all 0)."""

    sightings: int = 0
    files: int = 0
    findings: int = 0
    edges: int = 0

    def summary(self) -> str:
        return (
            f"{self.sightings} new sightings, {self.findings} new findings, {self.edges} new edges"
        )


def save(
    case: Case, sightings: Sequence[Sighting], stats: Sequence[FileStats], run_id: str | None
) -> Saved:
    """Record everything in one transaction; facts the case already holds (same natural key,
    see ``NATURAL_KEYS``) are kept once."""
    now = case.now_naive()
    rows = pa.table(
        {
            "run_id": pa.array([run_id] * len(sightings), pa.string()),
            "host": pa.array([s.host for s in sightings], pa.string()),
            "indicator_type": pa.array([str(s.indicator_type) for s in sightings], pa.string()),
            "indicator_value": pa.array([s.indicator_value for s in sightings], pa.string()),
            "first_seen": pa.array(
                [naive_utc(s.first_seen) for s in sightings], pa.timestamp("us")
            ),
            "last_seen": pa.array([naive_utc(s.last_seen) for s in sightings], pa.timestamp("us")),
            "count": pa.array([s.count for s in sightings], pa.int64()),
            "sources": pa.array([list(s.sources) for s in sightings], pa.list_(pa.string())),
            "campaign": pa.array([s.campaign for s in sightings], pa.string()),
            "fields": pa.array([list(s.fields) for s in sightings], pa.list_(pa.string())),
            "locations": pa.array(
                [[loc.text() for loc in s.locations] for s in sightings], pa.list_(pa.string())
            ),
        }
    )
    files = pa.table(
        {
            "run_id": pa.array([run_id] * len(stats), pa.string()),
            "path": pa.array([f.path for f in stats], pa.string()),
            "format": pa.array([f.format for f in stats], pa.string()),
            "kind": pa.array([f.kind for f in stats], pa.string()),
            "lines": pa.array([f.lines for f in stats], pa.int64()),
            "records": pa.array([f.records for f in stats], pa.int64()),
            "comments": pa.array([f.comments for f in stats], pa.int64()),
            "blank": pa.array([f.blank for f in stats], pa.int64()),
            "garbage": pa.array([f.garbage for f in stats], pa.int64()),
            "hits": pa.array([f.hits for f in stats], pa.int64()),
            "problems": pa.array(
                [[p.one_line() for p in f.problems] for f in stats], pa.list_(pa.string())
            ),
        }
    )
    with case.transaction():
        new_sightings = case.insert_new(
            "hunt_sightings",
            "SELECT *, ?::TIMESTAMP AS recorded_at FROM rows",
            [now],
            inputs={"rows": rows},
        )
        new_files = case.insert_new(
            "hunt_files",
            "SELECT *, ?::TIMESTAMP AS recorded_at FROM files",
            [now],
            inputs={"files": files},
        )
        new_findings = case.add_findings(findings(sightings), run_id=run_id, origin="hunt")
        # A certificate tied to no host is a finding, not a graph fact about a host.
        known = [s for s in sightings if s.host != NO_HOST]
        case.add_nodes(Node(NodeKind.HOST, s.host) for s in known)
        new_edges = case.add_edges(to_edge(s) for s in known)
    return Saved(new_sightings, new_files, new_findings, new_edges)
