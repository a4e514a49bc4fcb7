"""``taintline report``: render what the case knows, in any output format."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from taintline.case import Case
from taintline.cli.common import DEFAULT_CASE, CaseOption, ExitCode, parse_severity, stdout_console
from taintline.errors import UsageError
from taintline.report import FORMATS, RenderContext, render_findings
from taintline.report.html import HtmlExtras, render_html
from taintline.report.sources import cascade_rows


def report_cmd(
    fmt: Annotated[str, typer.Option("--format", help=f"One of: {', '.join(FORMATS)}.")] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
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
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    with Case(case, read_only=True) as c:
        findings = c.findings(kind_prefix=kind, min_severity=severity)
        ctx = RenderContext(command="report", title=title)
        stream = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            if fmt == "html":
                render_html(
                    findings, stream, ctx, HtmlExtras(case_path=str(case), cascade=cascade_rows(c))
                )
            else:
                render_findings(findings, fmt, stream, ctx)
        finally:
            if output:
                stream.close()
    if output:
        stdout_console().print(f"wrote {len(findings)} finding(s) to {output}", soft_wrap=True)
    return ExitCode.CLEAN


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
