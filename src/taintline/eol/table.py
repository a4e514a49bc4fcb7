"""The ``eol`` table for people: one line per product cycle and status, with host counts.

Product names, cycles and reasons come from input files: they are rich ``Text`` (never markup).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TextIO

from rich.table import Table

from taintline.eol.findings import ProductRow, ago
from taintline.terminal import make_console, text

_STYLE = {"end-of-life": "red", "end-of-support": "yellow", "unknown": "cyan", "supported": "dim"}


def render(
    rows: Sequence[ProductRow],
    out: TextIO,
    *,
    as_of: date,
    title: str = "taintline eol",
    show_supported: bool = False,
    width: int | None = None,
) -> None:
    console = make_console(out, width=width or (None if out.isatty() else 160))
    shown = [r for r in rows if show_supported or r.status != "supported"]
    table = Table(title=f"{title} (as of {as_of.isoformat()})", show_lines=False, expand=False)
    for column in ("product", "cycle", "status", "ended", "hosts", "installed after end"):
        table.add_column(column, overflow="fold")
    table.add_column("releases")
    table.add_column("matched by / note", overflow="fold")
    for r in shown:
        end = r.eol_date if r.status == "end-of-life" else r.eoas_date
        ended = f"{end.isoformat()} ({ago(end, as_of)} ago)" if end else ""
        if r.status == "end-of-life" and end is None:
            ended = "date not published"
        table.add_row(
            text(r.product),
            text(r.cycle or "?"),
            text(r.status, _STYLE.get(r.status, "")),
            ended,
            str(r.hosts),
            text(r.hosts_installed_after, "bold red" if r.hosts_installed_after else ""),
            str(r.releases),
            text(", ".join(r.matched_by) + (f"; {r.reason}" if r.reason else "")),
        )
    if shown:
        console.print(table)
    hidden = [r for r in rows if r not in shown]
    if hidden:
        console.print(
            f"{sum(r.rows for r in hidden)} matched install(s) of {len(hidden)} supported"
            " cycle(s) not shown"
        )
    if not rows:
        console.print(f"{title}: no installed software matched a product with end-of-life data")
