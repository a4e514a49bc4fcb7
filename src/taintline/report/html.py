"""A self-contained HTML report a person reads: the four answers first, the cascade as a
picture, indicator contacts on the same time axis, then findings, inputs and indicators.

One file, no network at view time, no third-party JavaScript: the picture is inline SVG drawn
in :mod:`taintline.report.picture`, and the page's own small script and style sheet are inlined
and allowed by their SHA-256 hashes in a strict Content-Security-Policy (computed here, when
rendering). Rendered through Jinja2 with auto-escaping: every value comes from hostile input
(file names, log fields, SBOM names), so nothing is inserted unescaped, and the node data the
script reads is JSON with ``<``, ``>`` and ``&`` escaped, shown with ``textContent``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, TextIO

import jinja2
import orjson
from markupsafe import Markup

from taintline.model import Finding, iso
from taintline.report import casedata
from taintline.report.casedata import PicNode, ReportData
from taintline.report.context import RenderContext
from taintline.report.picture import LANES, Picture, draw

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("taintline.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True, slots=True)
class HtmlExtras:
    """What only the case knows (kept for callers of :func:`render_html`)."""

    case_path: str = ""
    generated: datetime = field(default_factory=lambda: datetime.now(UTC))


@cache
def _asset(name: str) -> str:
    return resources.files("taintline.report").joinpath("templates", name).read_text("utf-8")


def csp_hash(text: str) -> str:
    """The CSP source expression allowing exactly this inline script or style."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def content_security_policy(script: str, style: str) -> str:
    return (
        "default-src 'none'; "
        f"script-src {csp_hash(script)}; "
        f"style-src {csp_hash(style)}; "
        "img-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
    )


def json_for_script(value: Any) -> Markup:
    """JSON safe inside a ``<script type="application/json">`` element."""
    text = orjson.dumps(value).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704  (no '<', '>' or '&' left: cannot close the element)


def _node_json(nodes: Sequence[PicNode]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n in nodes:
        fact = None
        if n.fact is not None:
            fact = {
                "kind": n.fact.edge_kind,
                "src": n.fact.src,
                "dst": n.fact.dst,
                "from": iso(n.fact.valid_from),
                "until": iso(n.fact.valid_until),
                "rec": iso(n.fact.recorded_at),
                "source": n.fact.source,
                "rule": n.fact.rule,
            }
        out.append(
            {
                "k": n.kind,
                "key": n.key,
                "t": iso(n.time),
                "c": round(n.confidence, 4),
                "h": n.hops,
                "r": n.is_root,
                "p": n.parent,
                "pr": n.parent_ref,
                "f": fact,
            }
        )
    return out


def _evidence(f: Finding) -> str:
    return orjson.dumps(
        dict(f.evidence), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str
    ).decode()


def picture_of(data: ReportData) -> Picture:
    view = data.cascade
    return draw(
        view.nodes if view else (),
        data.contacts,
        view.buckets if view else (),
    )


def render_report(data: ReportData, out: TextIO) -> Picture:
    """Write the page for ``data``; returns the picture drawn (its node and edge counts)."""
    script = _asset("report.js")
    style = _asset("report.css")
    picture = picture_of(data)
    view = data.cascade
    kinds = {n.kind for n in view.nodes} if view else set()
    out.write(
        _ENV.get_template("report.html.j2").render(
            d=data,
            generated=iso(data.generated),
            csp=content_security_policy(script, style),
            script=Markup(script),  # noqa: S704  (our own file, allowed by its hash)
            css=Markup(style),  # noqa: S704  (our own file, allowed by its hash)
            cascade=view,
            picture=picture,
            lanes=[k for k in LANES if k in kinds],
            nodes_json=json_for_script(_node_json(view.nodes) if view else []),
            iso=iso,
            evidence=_evidence,
        )
    )
    return picture


def render_html(
    findings: Sequence[Finding],
    out: TextIO,
    ctx: RenderContext,
    extras: HtmlExtras | None = None,
) -> None:
    """A page of findings alone (no case at hand)."""
    extras = extras or HtmlExtras()
    data = casedata.from_findings(findings, title=ctx.title, generated=extras.generated)
    data.case_path = extras.case_path
    render_report(data, out)


def render(findings: Sequence[Finding], out: TextIO, ctx: RenderContext) -> None:
    render_html(findings, out, ctx)
