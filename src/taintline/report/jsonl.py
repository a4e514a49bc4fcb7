"""JSON Lines: one finding per line, the same records ``taintline import`` merges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

import orjson

from taintline.interchange import finding_to_dict
from taintline.model import Finding
from taintline.report.context import RenderContext


def render(findings: Sequence[Finding], out: TextIO, ctx: RenderContext) -> None:
    for f in findings:
        out.write(orjson.dumps(finding_to_dict(f), option=orjson.OPT_SORT_KEYS).decode())
        out.write("\n")
