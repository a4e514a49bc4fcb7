"""A rich table for people: worst first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from taintline.model import Finding, Severity, iso
from taintline.report.context import RenderContext

_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def render(findings: Sequence[Finding], out: TextIO, ctx: RenderContext) -> None:
    console = Console(file=out, width=ctx.width or (None if out.isatty() else 160), highlight=False)
    if not findings:
        console.print(Text(f"{ctx.title}: nothing found"))
        return
    table = Table(title=Text(ctx.title), show_lines=False, expand=False)
    table.add_column("severity")
    table.add_column("kind")
    table.add_column("subject", overflow="fold")
    table.add_column("host")
    table.add_column("time")
    table.add_column("message", overflow="fold")
    for key in ctx.extra_columns:
        table.add_column(key, overflow="fold")
    ordered = sorted(findings, key=lambda f: (-f.severity.rank, f.kind, f.subject))
    for f in ordered:
        # Everything but the severity comes from inputs: Text, never rich markup.
        extra = [Text(str(f.evidence.get(k, ""))) for k in ctx.extra_columns]
        table.add_row(
            Text(str(f.severity), style=_STYLE[f.severity]),
            Text(f.kind),
            Text(f.subject),
            Text(f.host or ""),
            iso(f.time) or "",
            Text(f.message),
            *extra,
        )
    console.print(table)
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    summary = ", ".join(f"{counts[s]} {s}" for s in reversed(list(Severity)) if s in counts)
    console.print(f"{len(findings)} finding(s): {summary}")
