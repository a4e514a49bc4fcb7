"""``taintline eol [INVENTORY|SBOM...]``: which hosts and releases run retired software."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from taintline.case import Case
from taintline.cli.common import (
    DEFAULT_CASE,
    CaseOption,
    ExitCode,
    FailOn,
    FailOnOption,
    FormatOption,
    OutputOption,
    exit_code,
    output_stream,
    stderr_console,
)
from taintline.eol import table
from taintline.eol.service import EolOptions, run_eol
from taintline.errors import UsageError
from taintline.report import OutputFormat, RenderContext, render_findings
from taintline.terminal import labelled


def eol_cmd(
    inventories: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Inventories and SBOMs to add first (inventory CSV, osquery results,"
            " CycloneDX, SPDX); without any, the software already in the case is checked."
        ),
    ] = None,
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            help="End-of-life data to add first: endoflife.date API JSON (classic or v1),"
            " product Markdown files, or a folder of them (repeatable).",
        ),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Day to judge on (YYYY-MM-DD; default today).")
    ] = None,
    fmt: FormatOption = OutputFormat.TABLE,
    output: OutputOption = None,
    fail_on: FailOnOption = FailOn.HIGH,
    reader: Annotated[
        str | None,
        typer.Option("--reader", help="Force the inventory/SBOM reader (see `graph add`)."),
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Host of inventories that do not name one.")
    ] = None,
    show_supported: Annotated[
        bool, typer.Option("--all", help="Table: also list cycles that are still supported.")
    ] = False,
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """End-of-life exposure: which hosts run retired software, since when, and what was
    installed after its end."""
    day: date | None = None
    if as_of is not None:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            raise UsageError(f"--as-of {as_of!r}: expected YYYY-MM-DD") from None
    missing = [str(p) for p in [*(inventories or ()), *(data or ())] if not p.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    err = stderr_console()
    options = EolOptions(
        as_of=day,
        inventories=tuple(inventories or ()),
        data=tuple(data or ()),
        host=host,
        reader=reader,
    )
    with Case(case) as c:
        outcome = run_eol(c, options)
    for problem in outcome.problems:
        err.print(labelled("warning", "yellow", problem.one_line()), soft_wrap=True)
    if outcome.pack_loaded:
        err.print("no end-of-life data in the case: using the built-in campaign pack", markup=False)
    failed_data = [f.path for f in outcome.data.failed_files]
    unread = [str(r.path) for r in outcome.inventories if not (r.read_nodes or r.read_edges)]
    if failed_data:
        err.print(f"not read (end-of-life data): {', '.join(failed_data)}", markup=False)
    if unread:
        err.print(f"nothing read from: {', '.join(unread)}", markup=False)
    if outcome.observed == 0:
        err.print(
            "no installed software or SBOM components in the case: nothing to check"
            " (give inventories or SBOMs, or `taintline graph add` them)",
            markup=False,
        )
        return ExitCode.USAGE
    with output_stream(output) as stream:
        if fmt is OutputFormat.TABLE:
            table.render(
                outcome.summary, stream, as_of=outcome.as_of, show_supported=show_supported
            )
        else:
            ctx = RenderContext(
                command="eol",
                title=f"taintline eol (as of {outcome.as_of.isoformat()})",
                inputs=tuple(str(p) for p in options.inventories),
            )
            render_findings(outcome.findings, fmt, stream, ctx)
    err.print(
        f"{outcome.observed} installed program(s) and SBOM component(s) checked against"
        f" {outcome.products} product(s), {outcome.cycles} cycle(s): {len(outcome.findings)}"
        " finding(s)",
        markup=False,
        soft_wrap=True,
    )
    if failed_data and len(failed_data) == len(outcome.data.files):
        return ExitCode.USAGE  # none of the end-of-life data given could be used
    if unread and len(unread) == len(outcome.inventories):
        return ExitCode.USAGE  # none of the inventories given could be used
    return exit_code(outcome.findings, fail_on)


def register(app: typer.Typer) -> None:
    app.command("eol")(eol_cmd)
