"""Demo stage: everything the case now knows, as the files a defender hands on."""

from __future__ import annotations

from collections import Counter

from taintline.democontext import DemoContext, StageResult
from taintline.report import render_findings
from taintline.report.context import RenderContext
from taintline.report.html import HtmlExtras, render_html
from taintline.report.sources import cascade_rows


def stage(ctx: DemoContext) -> StageResult:
    findings = ctx.case.findings()
    rctx = RenderContext(command="demo", title="taintline demo: 3CX / X_TRADER")
    outputs = {"report.html": "html", "findings.sarif": "sarif", "findings.stix.json": "stix"}
    # The story's run (seeded at the X_TRADER installer), not the later --from-findings one.
    cascade = cascade_rows(ctx.case, run_id=ctx.shared.get("cascade_run_id"))
    for name, fmt in outputs.items():
        with (ctx.workdir / name).open("w", encoding="utf-8") as out:
            if fmt == "html":
                extras = HtmlExtras(
                    case_path=str(ctx.workdir / "demo-case.duckdb"), cascade=cascade
                )
                render_html(findings, out, rctx, extras)
            else:
                render_findings(findings, fmt, out, rctx)
    by_severity = Counter(str(f.severity) for f in findings)
    lines = [
        f"{len(findings)} finding(s) in the case: "
        + ", ".join(f"{n} {sev}" for sev, n in sorted(by_severity.items())),
        f"cascade section: {len(cascade)} reached node(s) with their explaining paths",
        *(f"wrote {ctx.workdir / name} ({fmt})" for name, fmt in outputs.items()),
    ]
    return StageResult("Report: HTML, SARIF 2.1.0 and STIX 2.1", tuple(lines), len(findings))
