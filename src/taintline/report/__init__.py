"""Renderers: one module per output format, all reading the same list of findings.

``render_findings(findings, fmt, out, ...)`` is what commands call; formats are listed in
:data:`FORMATS`. Adding a format is adding a module and one entry here. A renderer's module is
imported when its format is first used (STIX pulls in the stix2 library, a quarter of a second
that a scan writing JSON Lines should not pay).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TextIO, cast

from taintline.errors import UsageError
from taintline.model import Finding
from taintline.report.context import RenderContext

Renderer = Callable[[Sequence[Finding], TextIO, RenderContext], None]

#: format name -> the module of ``taintline.report`` whose ``render`` writes it
FORMATS: dict[str, str] = {
    "table": "table",
    "jsonl": "jsonl",
    "sarif": "sarif",
    "csv": "csvout",
    "stix": "stix",
    "html": "html",
    "markdown": "markdown",
}


def renderer(fmt: str) -> Renderer:
    """The ``render`` function of format ``fmt``."""
    try:
        module = FORMATS[fmt]
    except KeyError:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
    return cast(Renderer, importlib.import_module(f"taintline.report.{module}").render)


def render_findings(
    findings: Sequence[Finding],
    fmt: str,
    out: TextIO,
    ctx: RenderContext | None = None,
) -> None:
    """Write ``findings`` to ``out`` in format ``fmt`` (one of :data:`FORMATS`)."""
    renderer(fmt)(findings, out, ctx or RenderContext())


__all__ = ["FORMATS", "RenderContext", "render_findings", "renderer"]
