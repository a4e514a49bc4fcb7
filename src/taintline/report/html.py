"""A self-contained HTML report: one file, inline CSS/JS, no external requests.

Rendered through Jinja2 with auto-escaping: every value comes from hostile input (file names,
log lines), so nothing is inserted unescaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import jinja2
import orjson

from taintline import __version__
from taintline.model import Finding, Severity, iso
from taintline.report.context import RenderContext

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("taintline.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True, slots=True)
class CascadeRow:
    node: str
    time: str
    confidence: str
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HtmlExtras:
    """Sections beyond the findings table, filled by the ``report`` command from the case."""

    case_path: str = ""
    cascade: tuple[CascadeRow, ...] = ()
    generated: datetime = field(default_factory=lambda: datetime.now(UTC))


def _timeline(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    hosts: dict[str, dict[str, Any]] = {}
    for f in findings:
        if not f.host or not f.indicators:
            continue
        row = hosts.setdefault(f.host, {"host": f.host, "first": None, "last": None, "ind": set()})
        first = f.time
        last_text = f.evidence.get("last_seen")
        last = (
            datetime.fromisoformat(last_text.replace("Z", "+00:00"))
            if isinstance(last_text, str)
            else f.time
        )
        if first and (row["first"] is None or first < row["first"]):
            row["first"] = first
        if last and (row["last"] is None or last > row["last"]):
            row["last"] = last
        row["ind"].update(f.indicators)
    return [
        {
            "host": r["host"],
            "first": iso(r["first"]) or "",
            "last": iso(r["last"]) or "",
            "indicators": sorted(r["ind"]),
        }
        for r in sorted(
            hosts.values(), key=lambda r: r["first"] or datetime.max.replace(tzinfo=UTC)
        )
    ]


def render_html(
    findings: Sequence[Finding], out: TextIO, ctx: RenderContext, extras: HtmlExtras
) -> None:
    ordered = sorted(findings, key=lambda f: (-f.severity.rank, f.kind, f.subject))
    counts: dict[str, int] = {}
    for f in findings:
        counts[str(f.severity)] = counts.get(str(f.severity), 0) + 1
    template = _ENV.get_template("report.html.j2")
    out.write(
        template.render(
            title=ctx.title,
            generated=iso(extras.generated),
            version=__version__,
            case_path=extras.case_path,
            counts=[(str(s), counts[str(s)]) for s in reversed(list(Severity)) if str(s) in counts],
            timeline=_timeline(findings),
            cascade=extras.cascade,
            findings=[
                {
                    "severity": str(f.severity),
                    "rank": f"{9 - f.severity.rank}",
                    "kind": f.kind,
                    "subject": f.subject,
                    "host": f.host or "",
                    "time": iso(f.time) or "",
                    "message": f.message,
                    "evidence": orjson.dumps(
                        dict(f.evidence), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
                    ).decode()
                    if f.evidence
                    else "",
                }
                for f in ordered
            ],
        )
    )


def render(findings: Sequence[Finding], out: TextIO, ctx: RenderContext) -> None:
    render_html(findings, out, ctx, HtmlExtras())
