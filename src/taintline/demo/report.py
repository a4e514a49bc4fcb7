"""Demo stage: everything the case now knows, as the files a defender hands on."""

from __future__ import annotations

from taintline.demo.context import DemoContext, StageResult
from taintline.report import casedata, render_findings
from taintline.report.context import RenderContext
from taintline.report.html import render_report
from taintline.report.markdown import render_summary


def stage(ctx: DemoContext) -> StageResult:
    findings = ctx.case.findings()
    title = "taintline demo: 3CX / X_TRADER"
    rctx = RenderContext(command="demo", title=title)
    # The story's run (seeded at the X_TRADER installer), not the later --from-findings one.
    data = casedata.from_case(
        ctx.case,
        title=title,
        case_path=str(ctx.workdir / "demo-case.duckdb"),
        run_id=ctx.shared.get("cascade_run_id"),
    )
    with (ctx.workdir / "report.html").open("w", encoding="utf-8") as out:
        picture = render_report(data, out)
    with (ctx.workdir / "summary.md").open("w", encoding="utf-8") as out:
        render_summary(data, out)
    outputs = {"findings.sarif": "sarif", "findings.stix.json": "stix"}
    for name, fmt in outputs.items():
        with (ctx.workdir / name).open("w", encoding="utf-8") as out:
            render_findings(findings, fmt, out, rctx)
    lines = [f"{a.question} {a.sentence}" for a in data.answers]
    lines += [
        f"cascade picture: {picture.nodes} node(s), {picture.edges} explaining fact(s);"
        f" {len(data.contacts)} indicator contact(s) on the same time axis",
        f"wrote {ctx.workdir / 'report.html'} (open it in a browser)",
        f"wrote {ctx.workdir / 'summary.md'} (Markdown, for a ticket)",
        *(f"wrote {ctx.workdir / name} ({fmt})" for name, fmt in outputs.items()),
    ]
    return StageResult(
        "Report: the four answers, the cascade picture, SARIF 2.1.0 and STIX 2.1",
        tuple(lines),
        len(findings),
    )
