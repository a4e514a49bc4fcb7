"""``taintline import`` and ``taintline export``: move findings between machines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from taintline.case import Case
from taintline.cli.common import DEFAULT_CASE, CaseOption, ExitCode, stderr_console, stdout_console
from taintline.errors import UsageError
from taintline.interchange import EXPORT_FORMATS, export_case, import_jsonl, plural
from taintline.scan.retro import match_stored
from taintline.terminal import labelled, printable


def import_cmd(
    files: Annotated[list[Path], typer.Argument(help="JSON Lines files exported by taintline.")],
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """Merge case exports (every table) and scan results from other machines; rows the case
    already holds are not added again."""
    out, err = stdout_console(), stderr_console()
    problems = 0
    with Case(case) as c:
        for path in files:
            result = import_jsonl(c, path)
            for problem in result.problems:
                err.print(labelled("error", "red", problem.one_line()), soft_wrap=True)
            problems += len(result.problems)
            counts = ", ".join(f"{n} new {plural(k)}" for k, n in sorted(result.counts.items()))
            out.print(printable(f"{path}: {counts or 'nothing'}"), soft_wrap=True)
        # Imported indicators meet every stored file record, and imported records meet every
        # indicator: match all against all (no file is read).
        retro = match_stored(c)
        if retro.matched:
            err.print(printable(f"retroactive match: {retro.summary()}"), soft_wrap=True)
    if problems:
        err.print(f"{problems} bad record(s) skipped")
    return ExitCode.USAGE if problems else ExitCode.CLEAN


def export_cmd(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="File (jsonl) or folder (parquet).")
    ],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or parquet.")] = "jsonl",
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """Export the case as JSON Lines (one file) or Parquet (one file per table)."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(
            f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    with Case(case, read_only=True) as c:
        counts = export_case(c, fmt, output)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    stdout_console().print(printable(f"exported to {output}: {summary}"), soft_wrap=True)
    return ExitCode.CLEAN


def register(app: typer.Typer) -> None:
    app.command("import")(import_cmd)
    app.command("export")(export_cmd)
