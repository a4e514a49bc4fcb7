"""Terminal and JSON Lines views of the case graph and of cascade runs.

The CLI hands these the library's results (:mod:`taintline.graph.service`,
:mod:`taintline.graph.downstream`); findings of a run go through the shared renderers instead.
Node keys and sources come from inputs: rich tables show cell text as text, and free lines are
printed with markup off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from taintline.csvsafe import write_records
from taintline.model import iso
from taintline.terminal import text

if TYPE_CHECKING:
    from taintline.graph.downstream import Recipient
    from taintline.graph.service import EdgeRow, UpstreamNode
    from taintline.graph.store import Fact, Reached


def when(value: object) -> str:
    """A time for people: ISO 8601 UTC, or ``always`` for an unbounded one."""
    if value is None:
        return "always"
    return iso(value) or "always"  # type: ignore[arg-type]


def _t(value: object) -> Text:
    return text(value)


def counts_table(rows: Sequence[tuple[str, str, int]]) -> Table:
    table = Table("what", "kind", "count")
    for what, kind, n in rows:
        table.add_row(_t(what), _t(kind), _t(n))
    return table


def edges_table(rows: Sequence[EdgeRow]) -> Table:
    table = Table("edge", "from", "to", "valid from", "valid until", "source")
    for r in rows:
        table.add_row(
            _t(r.kind),
            _t(r.src),
            _t(r.dst),
            _t(r.valid_from or "-"),
            _t(r.valid_until or "-"),
            _t(r.source),
        )
    return table


def write_rows_jsonl(records: Sequence[dict[str, object]], out: TextIO) -> None:
    for record in records:
        out.write(orjson.dumps(record, default=str).decode() + "\n")


def write_rows_csv(records: Sequence[dict[str, object]], out: TextIO) -> None:
    write_records(records, out)


def reached_table(rows: Sequence[Reached], total: int) -> Table:
    table = Table(
        "kind",
        "key",
        "earliest compromise (UTC)",
        "confidence",
        "path",
        title=f"{total} node(s) reached",
    )
    for r in rows:
        table.add_row(
            _t(r.ref.kind),
            _t(r.ref.key),
            _t(when(r.time)),
            _t(f"{r.confidence:.2f}"),
            _t("seed" if r.is_root else r.hops),
        )
    return table


def fact_line(number: int, fact: Fact) -> str:
    window = f"{when(fact.valid_from)} .. {when(fact.valid_until) if fact.valid_until else 'open'}"
    return (
        f"{number}. {fact.frm} --{fact.edge_kind} [{window}]--> {fact.to}: compromised from "
        f"{when(fact.to_time)} (rule {fact.rule}, confidence {fact.confidence:.2f}, "
        f"source {fact.source})"
    )


def print_explanation(ref: object, path: list[Fact] | None, console: Console) -> bool:
    """The chain of facts that explains why ``ref`` was reached (``path`` from the store)."""
    if path is None:
        console.print(f"{ref}: not reached by this cascade run", markup=False)
        return False
    if not path:
        console.print(f"{ref}: a seed (root of the cascade)", markup=False)
        return True
    console.print(f"Why {ref} (root {path[0].frm}):", soft_wrap=True, markup=False)
    for number, fact in enumerate(path, start=1):
        console.print("  " + fact_line(number, fact), soft_wrap=True, markup=False)
    return True


def upstream_table(target: object, rows: Sequence[UpstreamNode]) -> Table:
    table = Table(
        "kind",
        "key",
        "latest possible compromise",
        "root candidate",
        "flagged",
        title=Text(f"upstream of {target}"),
    )
    for u in rows:
        table.add_row(
            _t(u.ref.kind),
            _t(u.ref.key),
            _t(when(u.latest) if u.latest else "any"),
            _t("yes" if u.root_candidate else ""),
            _t(f"end of life {u.end_of_life}" if u.end_of_life else "yes" if u.flagged else ""),
        )
    return table


def downstream_table(recipients: Sequence[Recipient]) -> Table:
    table = Table(
        "recipient",
        "first tainted delivery",
        "items",
        "artifacts",
        title=f"{len(recipients)} recipient(s) of tainted items",
    )
    for rec in recipients:
        table.add_row(
            _t(rec.ref),
            _t(when(rec.first)),
            _t(", ".join(sorted({str(d.item) for d in rec.deliveries}))),
            _t(", ".join(a[:12] for a in rec.artifacts)),
        )
    return table
