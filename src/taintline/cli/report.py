"""``taintline report``: render what the case knows, in any output format."""

from __future__ import annotations

from typing import Annotated

import typer

from taintline.case import Case
from taintline.cli.common import (
    DEFAULT_CASE,
    CaseOption,
    FailOn,
    FailOnOption,
    FormatOption,
    OutputOption,
    exit_code,
    output_stream,
    parse_severity,
    stdout_console,
)
from taintline.report import OutputFormat, RenderContext, render_findings
from taintline.report.html import HtmlExtras, render_html
from taintline.report.sources import cascade_rows


def report_cmd(
    fmt: FormatOption = OutputFormat.TABLE,
    output: OutputOption = None,
    fail_on: FailOnOption = FailOn.NEVER,
    min_severity: Annotated[
        str, typer.Option("--min-severity", help="Leave out less severe findings.")
    ] = "info",
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only kinds starting with this.")
    ] = None,
    title: Annotated[str, typer.Option("--title")] = "taintline report",
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """Render the case's findings as a table, JSON Lines, CSV, SARIF, STIX 2.1 or HTML."""
    severity = parse_severity(min_severity)
    with Case(case, read_only=True) as c:
        findings = c.findings(kind_prefix=kind, min_severity=severity)
        ctx = RenderContext(command="report", title=title)
        with output_stream(output) as stream:
            if fmt is OutputFormat.HTML:
                render_html(
                    findings, stream, ctx, HtmlExtras(case_path=str(case), cascade=cascade_rows(c))
                )
            else:
                render_findings(findings, fmt, stream, ctx)
    if output:
        stdout_console().print(f"wrote {len(findings)} finding(s) to {output}", soft_wrap=True)
    return exit_code(findings, fail_on)


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
