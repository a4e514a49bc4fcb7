"""CSV: one finding per row, evidence as a JSON column; cells a spreadsheet would run as a
formula are neutralised (:mod:`taintline.csvsafe`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

import orjson

from taintline.csvsafe import SafeWriter
from taintline.model import Finding, iso
from taintline.report.context import RenderContext

COLUMNS = ("severity", "kind", "subject", "host", "time", "message", "indicators", "evidence")


def render(findings: Sequence[Finding], out: TextIO, ctx: RenderContext) -> None:
    writer = SafeWriter(out)
    writer.writerow(COLUMNS)
    for f in findings:
        writer.writerow(
            (
                f.severity,
                f.kind,
                f.subject,
                f.host or "",
                iso(f.time) or "",
                f.message,
                " ".join(f.indicators),
                orjson.dumps(dict(f.evidence), option=orjson.OPT_SORT_KEYS).decode(),
            )
        )
