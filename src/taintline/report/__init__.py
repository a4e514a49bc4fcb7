"""Renderers: one module per output format, all reading the same list of findings.

``render_findings(findings, fmt, out, ...)`` is what commands call; formats are listed in
:data:`FORMATS`. Adding a format is adding a module and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TextIO

from taintline.errors import UsageError
from taintline.model import Finding
from taintline.report import csvout, html, jsonl, sarif, stix, table
from taintline.report.context import RenderContext

Renderer = Callable[[Sequence[Finding], TextIO, RenderContext], None]

FORMATS: dict[str, Renderer] = {
    "table": table.render,
    "jsonl": jsonl.render,
    "sarif": sarif.render,
    "csv": csvout.render,
    "stix": stix.render,
    "html": html.render,
}


def render_findings(
    findings: Sequence[Finding],
    fmt: str,
    out: TextIO,
    ctx: RenderContext | None = None,
) -> None:
    """Write ``findings`` to ``out`` in format ``fmt`` (one of :data:`FORMATS`)."""
    try:
        renderer = FORMATS[fmt]
    except KeyError:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
    renderer(findings, out, ctx or RenderContext())


__all__ = ["FORMATS", "RenderContext", "render_findings"]
