"""A table for people, worst first: rich on a terminal, a plain text table for long lists.

Rich measures and wraps every cell (about 0.3 ms a row on an idle machine, more on a busy
one): fine for the tens of findings of a typical run, a minute and more for 100,000. Above
:data:`RICH_MAX_ROWS` findings the same columns are written by :func:`render_plain`, which
is linear and fast (``benchmarks/bench_renderers.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from rich.table import Table

from taintline.model import Finding, Severity, iso
from taintline.report.context import RenderContext
from taintline.terminal import make_console, printable, text

_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


#: Longer lists are written as a plain text table.
RICH_MAX_ROWS = 2000

_COLUMNS = ("severity", "kind", "subject", "host", "time", "message")
#: Widest a plain-table column grows before its cells are folded over several lines.
_MAX_WIDTH = {"severity": 8, "kind": 28, "subject": 60, "host": 24, "time": 20, "message": 70}
_EXTRA_WIDTH = 40


def _ordered(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-f.severity.rank, f.kind, f.subject))


def _summary(findings: Sequence[Finding]) -> str:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    summary = ", ".join(f"{counts[s]} {s}" for s in reversed(list(Severity)) if s in counts)
    return f"{len(findings)} finding(s): {summary}"


def render(findings: Sequence[Finding], out: TextIO, ctx: RenderContext) -> None:
    if len(findings) > RICH_MAX_ROWS:
        render_plain(findings, out, ctx)
        return
    # Every cell is attacker-controlled text (names from files, logs, SBOMs): never markup.
    console = make_console(out, width=ctx.width or (None if out.isatty() else 160))
    if not findings:
        console.print(printable(f"{ctx.title}: nothing found"), soft_wrap=True)
        return
    table = Table(title=printable(ctx.title), show_lines=False, expand=False)
    table.add_column("severity")
    table.add_column("kind")
    table.add_column("subject", overflow="fold")
    table.add_column("host")
    table.add_column("time")
    table.add_column("message", overflow="fold")
    for key in ctx.extra_columns:
        table.add_column(key, overflow="fold")
    for f in _ordered(findings):
        extra = [text(f.evidence.get(k, "")) for k in ctx.extra_columns]
        table.add_row(
            text(f.severity, _STYLE[f.severity]),
            text(f.kind),
            text(f.subject),
            text(f.host or ""),
            iso(f.time) or "",
            text(f.message),
            *extra,
        )
    console.print(table)
    console.print(_summary(findings))


def render_plain(findings: Sequence[Finding], out: TextIO, ctx: RenderContext) -> None:
    """The same table as plain text: fixed-width columns, long cells folded, every value
    through :func:`~taintline.terminal.printable` (no control or bidi characters)."""
    names = (*_COLUMNS, *ctx.extra_columns)
    limits = [_MAX_WIDTH.get(n, _EXTRA_WIDTH) for n in names]
    rows: list[list[str]] = []
    widths = [len(n) for n in names]
    for f in _ordered(findings):
        row = [
            str(f.severity),
            printable(f.kind),
            printable(f.subject),
            printable(f.host or ""),
            iso(f.time) or "",
            printable(f.message),
            *(printable(f.evidence.get(k, "")) for k in ctx.extra_columns),
        ]
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                widths[i] = min(len(cell), limits[i])
        rows.append(row)
    write = out.write
    write(printable(ctx.title) + "\n")
    write("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip() + "\n")
    write("  ".join("-" * w for w in widths) + "\n")
    for row in rows:
        if all(len(c) <= w for c, w in zip(row, widths, strict=True)):
            write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
            continue
        pieces = [
            [c[i : i + w] for i in range(0, len(c), w)] or [""]
            for c, w in zip(row, widths, strict=True)
        ]
        for k in range(max(len(p) for p in pieces)):
            parts = (p[k] if k < len(p) else "" for p in pieces)
            write("  ".join(c.ljust(w) for c, w in zip(parts, widths, strict=True)).rstrip() + "\n")
    write(_summary(findings) + "\n")
