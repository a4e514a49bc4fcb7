"""``taintline intel``: add, list, show and export threat intel; list campaign packs."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from taintline.case import Case, now_utc
from taintline.cli.common import DEFAULT_CASE, CaseOption, ExitCode, stderr_console, stdout_console
from taintline.errors import UsageError
from taintline.intel.export import EXPORT_FORMATS, export_intel
from taintline.intel.normalize import classify
from taintline.intel.store import (
    FileReport,
    IngestReport,
    context_statements,
    ingest,
    ingest_pack,
    list_packs,
)
from taintline.model import IndicatorType, iso
from taintline.scan.retro import match_stored
from taintline.terminal import printable

intel_app = typer.Typer(
    help="Threat intel: indicators (STIX, MISP, CSV/text), YARA rules, end-of-life data, packs.",
    no_args_is_help=True,
)


#: Problems printed per file unless ``--explain-rejects`` asks for all of them.
PROBLEMS_SHOWN = 10


def _print_file(out: Console, err: Console, report: FileReport, *, explain: bool) -> None:
    shown = report.problems if explain else report.problems[:PROBLEMS_SHOWN]
    for problem in shown:
        err.print(f"error {printable(problem.one_line())}", soft_wrap=True)
    if len(report.problems) > len(shown):
        err.print(
            printable(
                f"{report.path}: {len(report.problems) - len(shown)} more problem(s);"
                " --explain-rejects lists every one"
            ),
            soft_wrap=True,
        )
    for warning in report.warnings:
        err.print(f"warning {printable(warning.one_line())}", soft_wrap=True)
    if report.rejected and not report.failed:
        classes = sorted(report.rejected.items(), key=lambda kv: (-kv[1], kv[0]))
        err.print(
            printable(
                f"{report.path}: rejected "
                + "; ".join(f"{n} value(s): {reason}" for reason, n in classes)
            ),
            soft_wrap=True,
        )
    if report.failed:
        err.print(
            f"{printable(report.path)}: FAILED, not imported:"
            f" {printable(report.failure or 'nothing from this file was kept')}",
            soft_wrap=True,
        )
        return
    counts = ", ".join(f"{n} {t}" for t, n in report.read_by_type.items()) or "no indicators"
    extra = []
    if report.yara_rules:
        names = ", ".join(report.rule_names[:8]) + (" ..." if len(report.rule_names) > 8 else "")
        extra.append(f"{report.yara_rules} YARA rules ({names})")
    if report.eol_records:
        extra.append(f"{report.eol_records} end-of-life records")
    if report.context_only:
        extra.append(f"{report.context_only} kept as context only (never matched)")
    for reason, n in sorted(report.skipped.items()):
        extra.append(f"skipped {n} {reason}")
    out.print(
        printable(f"{report.path} [{report.format}]: {counts}")
        + printable(f"; {report.new} new, {report.duplicates} duplicate")
        + printable(f"; {'; '.join(extra)}" if extra else ""),
        soft_wrap=True,
    )


def _summary(out: Console, err: Console, report: IngestReport) -> int:
    by_type = ", ".join(f"{n} {t}" for t, n in report.read_by_type().items()) or "none"
    rejected = sum(n for f in report.files for n in f.rejected.values())
    out.print(
        printable(
            f"total: {len(report.files)} file(s); read {by_type}; {report.new} new statements"
            f" ({report.new_indicators} new indicators), {report.duplicates} duplicates,"
            f" {rejected} rejected value(s), {len(report.problems)} problem(s)"
        ),
        soft_wrap=True,
    )
    for folder, n in sorted(report.left_out.items()):
        out.print(
            printable(f"{folder}: {n} file(s) left out (not an intel file ending)"), soft_wrap=True
        )
    failed = report.failed_files
    if failed:
        err.print(f"{len(failed)} file(s) failed and were not imported:")
        for f in failed:
            err.print(printable(f"  {f.path}: {f.failure}"), soft_wrap=True)
        return ExitCode.USAGE
    if not report.files:
        err.print("no intel files found in what was given")
        return ExitCode.USAGE
    return ExitCode.CLEAN


def _reader_names() -> str:
    from taintline.intel.readers import READERS

    return ", ".join(r.NAME for r in READERS)


@intel_app.command("add")
def add_cmd(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="STIX 2.1, MISP, CSV/text, YARA or endoflife.date files (API JSON or product"
            " Markdown), or folders of them."
        ),
    ] = None,
    pack: Annotated[
        list[str] | None,
        typer.Option("--pack", help="Load a built-in campaign pack (see `intel packs`)."),
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Attribute every statement to this source name.")
    ] = None,
    reader: Annotated[
        str | None,
        typer.Option("--reader", help="Skip detection, use this reader: " + _reader_names()),
    ] = None,
    legacy_format: Annotated[
        str | None, typer.Option("--format", hidden=True, help="Old name of --reader.")
    ] = None,
    explain_rejects: Annotated[
        bool,
        typer.Option(
            "--explain-rejects", help="List every refused value with its line and reason."
        ),
    ] = False,
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """Add intel to the case; the format is detected from each file's content. A folder is
    read recursively (YARA and indicator file endings), each file reported on its own."""
    if not files and not pack:
        raise UsageError("give intel files or folders to add, or --pack NAME")
    if reader and legacy_format and reader != legacy_format:
        raise UsageError("--format is the old name of --reader: give one of them")
    fmt = reader or legacy_format
    out, err = stdout_console(), stderr_console()
    combined = IngestReport()

    def show(report: FileReport) -> None:
        _print_file(out, err, report, explain=explain_rejects)

    started = now_utc()
    with Case(case) as c:
        for name in pack or ():
            combined.files.extend(ingest_pack(c, name, on_file=show).files)
        if files:
            got = ingest(c, files, source=source, fmt=fmt, on_file=show)
            combined.files.extend(got.files)
            combined.left_out.update(got.left_out)
        # New hash indicators meet every file record already in the case (no file is read).
        retro = match_stored(c, since=started)
        if retro.matched:
            err.print(f"retroactive match: {retro.summary()}", highlight=False)
    return _summary(out, err, combined)


@intel_app.command("list")
def list_cmd(
    type_: Annotated[
        list[str] | None,
        typer.Option("--type", "-t", help="Only these indicator types (repeatable)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many (0 = all).")] = 50,
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """List indicators with their sources."""
    types: list[IndicatorType] | None = None
    if type_:
        try:
            types = [IndicatorType(t.lower()) for t in type_]
        except ValueError:
            choices = ", ".join(t.value for t in IndicatorType)
            raise UsageError(f"unknown indicator type in {type_}; choose from {choices}") from None
    out = stdout_console()
    with Case(case, read_only=True) as c:
        counts = c.indicator_counts_by_type()
        rows = c.indicators(types=types, limit=limit or None)
    table = Table("type", "value", "sources", "campaign", show_lines=False)
    for row in rows:
        table.add_row(
            str(row.type),
            printable(row.value),
            printable("; ".join(row.sources)),
            printable(row.campaign or ""),
        )
    out.print(table)
    shown = sum(counts.get(str(t), 0) for t in types) if types else sum(counts.values())
    out.print(
        f"{len(rows)} of {shown} indicator(s) shown; in the case: "
        + (", ".join(f"{n} {t}" for t, n in counts.items()) or "none")
    )
    return ExitCode.CLEAN


@intel_app.command("show")
def show_cmd(
    value: Annotated[str, typer.Argument(help="An indicator value (defanged forms are fine).")],
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """Show every source's statement about one indicator."""
    candidates = {value.strip()}
    with contextlib.suppress(ValueError):
        candidates.add(classify(value)[1])
    out, err = stdout_console(), stderr_console()
    with Case(case, read_only=True) as c:
        found = [s for v in sorted(candidates) for s in c.indicators(value=v)]
        context = [s for v in sorted(candidates) for s in context_statements(c, v)]
        if not found and not context:
            err.print(f"{value}: not in the case")
            return ExitCode.CLEAN
        for statement in context:
            out.print(
                f"{statement.type} {statement.value}  (context only, never matched)",
                soft_wrap=True,
            )
            out.print(f"  - source: {statement.source}", soft_wrap=True)
            if statement.description:
                out.print(f"    description: {statement.description}", soft_wrap=True)
            for key, shown in sorted(statement.context.items()):
                out.print(f"    {key}: {shown}", soft_wrap=True)
        for summary in found:
            out.print(
                f"{printable(f'{summary.type} {summary.value}')}"
                f"  ({len(summary.sources)} source(s))",
                soft_wrap=True,
            )
            for s in c.indicator_statements(summary.type, summary.value):
                out.print(f"  - source: {s.source}", soft_wrap=True)
                details = {
                    "campaign": s.campaign,
                    "confidence": s.confidence,
                    "valid_from": iso(s.valid_from),
                    "valid_until": iso(s.valid_until),
                    "description": s.description,
                    "labels": ", ".join(s.labels) or None,
                }
                for key, shown in details.items():
                    if shown is not None:
                        out.print(f"    {key}: {shown}", soft_wrap=True)
                for key, shown in sorted(s.context.items()):
                    out.print(f"    {key}: {shown}", soft_wrap=True)
    return ExitCode.CLEAN


@intel_app.command("export")
def export_cmd(
    fmt: Annotated[
        str, typer.Option("--format", help="jsonl, csv or stix (STIX 2.1 bundle).")
    ] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default: stdout).")
    ] = None,
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """Export the case's indicators (STIX output is validated by the stix2 library)."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(
            f"unknown intel export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    with Case(case, read_only=True) as c:
        if output is None:
            count = export_intel(c, fmt, sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as handle:
                count = export_intel(c, fmt, handle)
    stderr_console().print(
        f"exported {count} record(s) as {fmt}" + (f" to {output}" if output else "")
    )
    return ExitCode.CLEAN


@intel_app.command("packs")
def packs_cmd() -> int:
    """List the built-in campaign packs."""
    out = stdout_console()
    table = Table("pack", "files", "description")
    for pack in list_packs():
        table.add_row(
            printable(pack.name), printable(", ".join(pack.files)), printable(pack.description)
        )
    out.print(table)
    return ExitCode.CLEAN


def register(app: typer.Typer) -> None:
    app.add_typer(intel_app, name="intel")
