"""CSV: one finding per row, evidence as a JSON column."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from typing import TextIO

import orjson

from taintline.model import Finding, iso
from taintline.report.context import RenderContext

COLUMNS = ("severity", "kind", "subject", "host", "time", "message", "indicators", "evidence")


def render(findings: Sequence[Finding], out: TextIO, ctx: RenderContext) -> None:
    writer = csv.writer(out, lineterminator="\n")
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
