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

#: Formats that read the whole case (answers, cascade, contacts), not only the findings.
CASE_FORMATS = ("html", "markdown")


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
    cascade_run: Annotated[
        str | None,
        typer.Option(
            "--cascade-run", help="The cascade run to show (html, markdown; default: newest)."
        ),
    ] = None,
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """Render the case as a table, JSON Lines, CSV, SARIF, STIX 2.1, Markdown or HTML.

    HTML and Markdown answer the four questions first (are we affected, where, since when,
    what did we pass downstream); HTML draws the cascade and the indicator contacts."""
    severity = parse_severity(min_severity)
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    with Case(case, read_only=True) as c:
        stream = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            if fmt in CASE_FORMATS:
                from taintline.report import casedata

                if cascade_run is not None:
                    found = c.con.execute(
                        "SELECT count(*) FROM cascade_runs WHERE run_id = ?", [cascade_run]
                    ).fetchone()
                    if not found or not found[0]:
                        raise UsageError(f"no cascade run {cascade_run!r} in this case")
                data = casedata.from_case(
                    c,
                    title=title,
                    case_path=str(case),
                    run_id=cascade_run,
                    kind_prefix=kind,
                    min_severity=severity,
                )
                if fmt == "html":
                    from taintline.report.html import render_report

                    render_report(data, stream)
                else:
                    from taintline.report.markdown import render_summary

                    render_summary(data, stream)
                count = data.findings_total
            else:
                findings = c.findings(kind_prefix=kind, min_severity=severity)
                render_findings(findings, fmt, stream, RenderContext(command="report", title=title))
                count = len(findings)
        finally:
            if output:
                stream.close()
    if output:
        stdout_console().print(
            f"wrote {count} finding(s) to {output}", soft_wrap=True, markup=False
        )
    return ExitCode.CLEAN


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
