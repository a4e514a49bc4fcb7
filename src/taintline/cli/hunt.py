"""``taintline hunt LOGS...``: which hosts talked to the indicators in the case, and when."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

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
    progress_enabled,
    stderr_console,
)
from taintline.cli.sparkopts import SparkConf, SparkMaster, SparkRemote, spark_settings
from taintline.errors import UsageError
from taintline.hunt.engines import ENGINE_NAMES
from taintline.hunt.model import (
    Field,
    FileStats,
    HuntOptions,
    LogSource,
    Sighting,
    parse_field_name,
)
from taintline.hunt.render import render_timeline
from taintline.hunt.service import run_hunt, uses_cluster
from taintline.hunt.sightings import findings as to_findings
from taintline.limits import HuntLimits
from taintline.model import parse_time
from taintline.report import OutputFormat, RenderContext, render_findings
from taintline.terminal import labelled, printable, text


def parse_map(text: str | None) -> dict[Field, str]:
    """``query=dns.question.name,src=source.ip`` -> {Field.DOMAIN: ..., Field.SRC: ...}."""
    out: dict[Field, str] = {}
    if not text:
        return out
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not value.strip():
            raise UsageError(f"--map expects FIELD=PATH pairs, got {part!r}")
        try:
            out[parse_field_name(key)] = value.strip()
        except ValueError:
            names = ", ".join(f.value for f in Field)
            raise UsageError(f"--map: unknown field {key!r}; fields are {names}") from None
    return out


def _time(text: str | None, option: str) -> datetime | None:
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise UsageError(f"{option}: not an ISO 8601 time: {text!r}") from None


def hunt_cmd(
    logs: Annotated[
        list[str],
        typer.Argument(
            help="Log files or folders (Zeek TSV/JSON, JSON Lines, CSV; gzip ok). With"
            " --engine spark also URIs Spark reads (file://, hdfs://, s3a://, abfss://),"
            " glob patterns and Parquet tables."
        ),
    ],
    since: Annotated[
        str | None, typer.Option(help="Only records at or after this time (ISO 8601).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only records at or before this time (ISO 8601).")
    ] = None,
    engine: Annotated[str, typer.Option(help="duckdb (default) or spark.")] = "duckdb",
    fmt: FormatOption = OutputFormat.TABLE,
    output: OutputOption = None,
    field_map: Annotated[
        str | None,
        typer.Option(
            "--map",
            help="Field mapping for other sources: query=dns.question.name,src=source.ip,ts=@timestamp",
        ),
    ] = None,
    memory_limit: Annotated[
        str, typer.Option(help="DuckDB memory limit.")
    ] = HuntLimits().memory_limit,
    fail_on: FailOnOption = FailOn.HIGH,
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Do not write results to the case.")
    ] = False,
    full_read: Annotated[
        bool,
        typer.Option(
            "--full-read",
            help="Parse every line of Zeek TSV logs instead of only the lines the literal "
            "pre-filter passes (slower; same sightings).",
        ),
    ] = False,
    spark_master: SparkMaster = None,
    spark_remote: SparkRemote = None,
    spark_conf: SparkConf = None,
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """Hunt stored logs for the case's indicators: every host that contacted them, and when."""
    if engine not in ENGINE_NAMES:
        raise UsageError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINE_NAMES)}")
    options = HuntOptions(
        since=_time(since, "--since"),
        until=_time(until, "--until"),
        engine=engine,
        memory_limit=memory_limit,
        field_map=parse_map(field_map),
        prefilter=not full_read,
        spark=spark_settings(spark_master, spark_remote, spark_conf) if engine == "spark" else None,
    )
    err = stderr_console()
    cluster = uses_cluster(logs, options)
    show = progress_enabled(err)
    with (
        Case(case) as c,
        Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            disable=not show or cluster,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("hunting", total=None)

        def sources_found(sources: list[LogSource]) -> None:
            bar.update(task, total=len(sources))

        def step(src: LogSource, stats: FileStats) -> None:
            bar.update(task, advance=1, description=printable(Path(src.path).name))

        if cluster:
            spark = options.spark
            with err.status(text(f"hunting on Spark at {spark.url if spark else 'local'}")):
                result = run_hunt(c, logs, options, progress=step, record=not no_record)
        else:
            result = run_hunt(
                c, logs, options, progress=step, record=not no_record, on_sources=sources_found
            )
    for problem in result.problems:
        err.print(labelled("skipped", "yellow", problem.one_line()), soft_wrap=True)
    if result.no_input:
        raise UsageError("no readable log file among the inputs")
    if result.intel_loaded:  # a case without intel hunts with the built-in campaign pack
        err.print("the case had no intel: loaded the built-in 3CX / X_TRADER pack")
    if result.nothing_to_match:
        err.print("the case has no network or hash indicators: run `taintline intel` first")
    if result.run_id is not None:
        err.print(printable(f"recorded in {case}: {result.saved.summary()}"), soft_wrap=True)
    return _finish(result.sightings, result.files, logs, fmt, fail_on, output)


def _finish(
    sightings: list[Sighting],
    files: list[FileStats],
    logs: list[str],
    fmt: OutputFormat,
    fail_on: FailOn,
    output: Path | None,
) -> int:
    err = stderr_console()
    for stats in files:
        for problem in stats.problems[:5]:
            err.print(labelled("warning", "yellow", problem.one_line()), soft_wrap=True)
        if stats.garbage:
            err.print(
                text(f"{stats.path}: {stats.garbage} of {stats.lines} line(s) unparsable"),
                soft_wrap=True,
            )
    findings = to_findings(sightings)
    with output_stream(output) as stream:
        if fmt is OutputFormat.TABLE:
            render_timeline(sightings, files, stream)
        else:
            render_findings(
                findings,
                fmt,
                stream,
                RenderContext(
                    command="hunt",
                    title="taintline hunt",
                    inputs=tuple(str(p) for p in logs),
                    extra_columns=("first_seen", "last_seen", "count"),
                ),
            )
    return exit_code(findings, fail_on)


def register(app: typer.Typer) -> None:
    app.command("hunt")(hunt_cmd)
