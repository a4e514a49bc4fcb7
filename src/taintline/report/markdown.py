"""A Markdown summary for tickets: the four answers and the top findings.

Every value from the case is escaped for CommonMark (backslash before ASCII punctuation, line
breaks folded), so a file named ``<script>…`` or ``[x](javascript:…)`` is shown as text and
makes no link, HTML or table cell break.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TextIO

from taintline.model import Finding, iso
from taintline.report import casedata
from taintline.report.casedata import ReportData
from taintline.report.context import RenderContext

#: Findings listed in the summary (all are counted).
TOP = 20
# CommonMark's specials, '&' (entities) and ':' (GFM autolinks of https://...).
_PUNCT = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~&:])")


def md(text: object) -> str:
    """``text`` as literal Markdown inline text (safe inside a table cell too)."""
    flat = " ".join(str(text).split())
    return _PUNCT.sub(r"\\\1", flat)


def render_summary(data: ReportData, out: TextIO) -> None:
    w = out.write
    w(f"# {md(data.title)}\n\n")
    for a in data.answers:
        w(f"- **{md(a.question)}** **{md(a.verdict)}**: {md(a.sentence)}\n")
        for e in a.evidence[:5]:
            w(f"  - {md(e.text)}\n")
    w("\n")
    if data.cascade is not None:
        v = data.cascade
        kinds = ", ".join(f"{n:,} {md(k)}" for k, n in v.by_kind)
        w(f"Cascade run `{md(v.run_id)}`: {v.total:,} node(s) reached ({kinds}).\n\n")
    if data.recipients:
        w("## Passed downstream\n\n| recipient | first tainted delivery | items |\n|---|---|---|\n")
        for r in data.recipients[:TOP]:
            items = ", ".join(md(i) for i in r.items)
            w(f"| {md(r.ref)} | {md(iso(r.first) or 'any time')} | {items} |\n")
        w("\n")
    counts = ", ".join(f"{n:,} {md(s)}" for s, n in data.severity_counts) or "none"
    w(f"## Top findings\n\n{data.findings_total:,} finding(s): {counts}.\n\n")
    if data.findings:
        w("| severity | kind | subject | host | time | message |\n|---|---|---|---|---|---|\n")
        for f in data.findings[:TOP]:
            w(
                f"| {md(f.severity)} | {md(f.kind)} | {md(f.subject)} | {md(f.host or '')}"
                f" | {md(iso(f.time) or '')} | {md(f.message)} |\n"
            )
        if data.findings_total > TOP:
            w(f"\n{data.findings_total - TOP:,} more in the full report.\n")
    for line in data.aggregated:
        w(f"\n_{md(line)}_\n")
    w(f"\ntaintline {md(data.version)}, {md(iso(data.generated))}\n")


def render(findings: Sequence[Finding], out: TextIO, ctx: RenderContext) -> None:
    render_summary(casedata.from_findings(findings, title=ctx.title), out)
