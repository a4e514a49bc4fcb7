""" "What did we pass downstream": every recipient of a tainted release or artifact, and one
notice per recipient (JSON and a STIX 2.1 bundle built and validated with the stix2 library).

A delivery counts only if the item was already tainted when it was delivered
(``arrival[item] <= delivery time``): a customer who downloaded 18.12.407 before the
compromised build existed got a clean copy.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from taintline.graph.cascade import EDGE_CODE, NEVER, Propagation
from taintline.graph.store import CaseGraph, from_us
from taintline.model import EdgeKind, NodeKind, NodeRef, iso

if TYPE_CHECKING:
    import stix2


@dataclass(frozen=True, slots=True)
class Delivery:
    item: NodeRef
    time: datetime | None
    source: str
    artifacts: tuple[str, ...]


@dataclass(slots=True)
class Recipient:
    ref: NodeRef
    first: datetime | None
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def artifacts(self) -> list[str]:
        return sorted({a for d in self.deliveries for a in d.artifacts})


def downstream(graph: CaseGraph, result: Propagation) -> list[Recipient]:
    edges = graph.edges
    arrival = result.arrival
    dist = np.flatnonzero(edges.kind == EDGE_CODE[str(EdgeKind.DISTRIBUTED_TO)])
    a = arrival[edges.src[dist]]
    hit = dist[(a != NEVER) & (a <= edges.valid_from[dist])]
    # tainted artifacts inside each release
    cont = np.flatnonzero(edges.kind == EDGE_CODE[str(EdgeKind.CONTAINS)])
    inner = cont[arrival[edges.dst[cont]] != NEVER]
    contents: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for e in inner.tolist():
        contents[int(edges.src[e])].append((int(edges.dst[e]), int(arrival[edges.dst[e]])))
    sources = graph.edge_table.column("source")
    by_recipient: dict[int, Recipient] = {}
    for e in hit.tolist():
        item, who, when = int(edges.src[e]), int(edges.dst[e]), int(edges.valid_from[e])
        item_ref = graph.ref(item)
        if item_ref.kind is NodeKind.ARTIFACT:
            arts: tuple[str, ...] = (item_ref.key,)
        else:
            arts = tuple(
                sorted(
                    graph.ref(n).key
                    for n, t in contents.get(item, [])
                    if t <= when and graph.ref(n).kind is NodeKind.ARTIFACT
                )
            )
        rec = by_recipient.get(who)
        time = from_us(when)
        if rec is None:
            rec = by_recipient[who] = Recipient(graph.ref(who), time)
        elif time is not None and (rec.first is None or time < rec.first):
            rec.first = time
        rec.deliveries.append(Delivery(item_ref, time, str(sources[e]), arts))
    out = list(by_recipient.values())
    for rec in out:
        rec.deliveries.sort(key=lambda d: (d.time or datetime.min.replace(tzinfo=UTC), str(d.item)))
    out.sort(key=lambda r: (r.first or datetime.min.replace(tzinfo=UTC), str(r.ref)))
    return out


def notice_dict(rec: Recipient, sender: str) -> dict[str, Any]:
    return {
        "notice": "tainted-delivery",
        "recipient": str(rec.ref),
        "sender": sender,
        "first_received": iso(rec.first),
        "deliveries": [
            {
                "item": str(d.item),
                "time": iso(d.time),
                "source": d.source,
                "artifacts_sha256": list(d.artifacts),
            }
            for d in rec.deliveries
        ],
        "artifacts_sha256": rec.artifacts,
        "advice": "Treat hosts that installed these items as compromised from the delivery"
        " time; hunt for the listed hashes and the campaign's network indicators.",
    }


def notice_bundle(rec: Recipient, sender: str, now: datetime | None = None) -> stix2.Bundle:
    import stix2  # 0.3 s to import: only when notices are written

    now = now or datetime.now(UTC)
    identity = stix2.Identity(
        name=rec.ref.key,
        identity_class="organization" if rec.ref.kind is NodeKind.ORG else "system",
        description=f"recipient of tainted items ({rec.ref})",
    )
    indicators = [
        stix2.Indicator(
            name=f"tainted artifact {sha[:16]}",
            pattern=f"[file:hashes.'SHA-256' = '{sha}']",
            pattern_type="stix",
            valid_from=rec.first or now,
            indicator_types=["compromised"],
        )
        for sha in rec.artifacts
    ]
    items = ", ".join(sorted({str(d.item) for d in rec.deliveries}))
    note = stix2.Note(
        abstract=f"{sender}: tainted deliveries to {rec.ref.key}",
        content=f"From {iso(rec.first)} {rec.ref.key} received {items}, which were tainted at"
        " delivery time. Artifact hashes are attached as indicators.",
        object_refs=[identity.id, *[i.id for i in indicators]],
    )
    report = stix2.Report(
        name=f"Supply-chain notice for {rec.ref.key}",
        published=now,
        report_types=["threat-report"],
        object_refs=[identity.id, note.id, *[i.id for i in indicators]],
        description=f"Items delivered by {sender} that were tainted when delivered.",
    )
    return stix2.Bundle(objects=[identity, *indicators, note, report])


def validate_stix(text: str) -> None:
    """Parse what we write with the stix2 library (raises on an invalid bundle)."""
    import stix2

    stix2.parse(text, allow_custom=False)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:100] or "recipient"


def write_notices(recipients: list[Recipient], folder: Path, sender: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for rec in recipients:
        stem = _safe(f"{rec.ref.kind}-{rec.ref.key}")
        json_path = folder / f"{stem}.json"
        json_path.write_bytes(orjson.dumps(notice_dict(rec, sender), option=orjson.OPT_INDENT_2))
        bundle = notice_bundle(rec, sender)
        text = bundle.serialize(pretty=True)
        validate_stix(text)
        stix_path = folder / f"{stem}.stix.json"
        stix_path.write_text(text)
        written += [json_path, stix_path]
    return written
