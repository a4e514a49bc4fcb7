"""``taintline match``: the case's indicators against every stored file record, again."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from taintline.case import Case
from taintline.cli.common import (
    DEFAULT_CASE,
    CaseOption,
    ExitCode,
    parse_severity,
    stderr_console,
)
from taintline.errors import UsageError
from taintline.report import FORMATS, RenderContext, render_findings
from taintline.scan.retro import match_stored


def match_cmd(
    fmt: Annotated[
        str, typer.Option("--format", help="table, jsonl, csv, sarif or stix.")
    ] = "table",
    fail_on: Annotated[
        str, typer.Option(help="Exit 1 when a match is at least this severe.")
    ] = "high",
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """Match every hash and filename-regex indicator in the case against every file record
    earlier scans stored (all hosts, imported ones too) without reading any file; new matches
    become findings."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    threshold = parse_severity(fail_on)
    with Case(case) as c:
        result = match_stored(c)
    stderr_console().print(result.summary(), markup=False, highlight=False)
    render_findings(
        result.findings,
        fmt,
        sys.stdout,
        RenderContext(command="match", title="taintline match", inputs=(str(case),)),
    )
    if any(f.severity.at_least(threshold) for f in result.findings):
        return ExitCode.FINDINGS
    return ExitCode.CLEAN


def register(app: typer.Typer) -> None:
    app.command("match")(match_cmd)
