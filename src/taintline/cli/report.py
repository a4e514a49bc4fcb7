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
from taintline.report import OutputFormat
from taintline.report.service import report_case


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
    with Case(case, read_only=True) as c, output_stream(output) as stream:
        outcome = report_case(
            c,
            fmt,
            stream,
            title=title,
            case_path=str(case),
            cascade_run=cascade_run,
            kind_prefix=kind,
            min_severity=parse_severity(min_severity),
        )
    if output:
        stdout_console().print(
            f"wrote {outcome.written} finding(s) to {output}", soft_wrap=True, markup=False
        )
    return exit_code(outcome.findings, fail_on)


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
