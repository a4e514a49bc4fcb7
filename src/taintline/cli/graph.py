"""``taintline graph add/show/stats`` and ``taintline cascade``: parse, one library call, render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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
    stdout_console,
)
from taintline.cli.sparkopts import SparkConf, SparkMaster, SparkRemote, spark_settings
from taintline.errors import UsageError
from taintline.graph.downstream import downstream, write_notices
from taintline.graph.ingest import READERS, add_files, facts_from_findings, write_facts
from taintline.graph.service import (
    ENGINES,
    cascade_on_cluster,
    edges_of,
    graph_counts,
    reached_records,
    run_cascade,
    run_findings,
    run_size,
    upstream,
)
from taintline.graph.store import (
    explain_path,
    latest_run,
    parse_seed,
    reached_nodes,
    record_notices,
)
from taintline.model import NodeRef
from taintline.report import OutputFormat, RenderContext, RowFormat, render_findings
from taintline.report import graph as view
from taintline.terminal import labelled, printable

graph_app = typer.Typer(
    help="Build the case graph: SBOMs, inventories, provenance, "
    "distribution and connection records.",
    no_args_is_help=True,
)

RowFormatOption = Annotated[
    RowFormat, typer.Option("--format", help="Output format.", case_sensitive=False)
]


def _reader_names() -> str:
    return ", ".join(r.name for r in READERS)


@graph_app.command("add")
def add_cmd(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Files to add (format detected).")
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(help="Host for files that do not name one (osqueryi --json output)."),
    ] = None,
    reader: Annotated[
        str | None,
        typer.Option("--reader", help="Skip detection, use this reader: " + _reader_names()),
    ] = None,
    legacy_format: Annotated[
        str | None, typer.Option("--format", hidden=True, help="Old name of --reader.")
    ] = None,
    from_findings: Annotated[
        bool,
        typer.Option(
            "--from-findings", help="Also turn scan/hunt findings in the case into graph facts."
        ),
    ] = False,
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """Add graph facts from files to the case."""
    out, err = stdout_console(), stderr_console()
    if not files and not from_findings:
        raise UsageError("give files to add, or --from-findings")
    if reader and legacy_format and reader != legacy_format:
        raise UsageError("--format is the old name of --reader: give one of them")
    problems = 0
    with Case(case) as c:
        for result in add_files(c, files or [], host=host, fmt=reader or legacy_format):
            for problem in result.problems:
                err.print(labelled("error", "red", problem.one_line()), soft_wrap=True)
            for warning in result.warnings:
                err.print(labelled("warning", "yellow", warning.one_line()), soft_wrap=True)
            problems += len(result.problems)
            out.print(
                printable(
                    f"{result.path}: {result.format or 'unrecognised'}: {result.nodes} new "
                    f"nodes, {result.edges} new edges"
                ),
                soft_wrap=True,
                markup=False,
            )
        if from_findings:
            facts = facts_from_findings(c)
            nodes, edges = write_facts(c, facts, "findings")
            out.print(f"findings: {nodes} new nodes, {edges} new edges")
    if problems:
        err.print(f"{problems} record(s) or file(s) skipped")
    return ExitCode.USAGE if problems else ExitCode.CLEAN


def _write_rows(
    fmt: RowFormat, output: Path | None, records: list[dict[str, object]], table: object
) -> None:
    with output_stream(output) as stream:
        if fmt is RowFormat.JSONL:
            view.write_rows_jsonl(records, stream)
        elif fmt is RowFormat.CSV:
            view.write_rows_csv(records, stream)
        else:
            Console(file=stream, highlight=False, width=stdout_console().width).print(table)


@graph_app.command("stats")
def stats_cmd(
    fmt: RowFormatOption = RowFormat.TABLE,
    output: OutputOption = None,
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """Count nodes and edges by kind."""
    with Case(case, read_only=True) as c:
        rows = graph_counts(c)
    records: list[dict[str, object]] = [{"what": w, "kind": k, "count": n} for w, k, n in rows]
    _write_rows(fmt, output, records, view.counts_table(rows))
    return ExitCode.CLEAN


@graph_app.command("show")
def show_cmd(
    node: Annotated[
        str | None, typer.Argument(help="KIND:KEY: show the edges of one node.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Most edges to show.")] = 100,
    fmt: RowFormatOption = RowFormat.TABLE,
    output: OutputOption = None,
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """List edges (all, or those of one node) with their times and sources."""
    ref = NodeRef.parse(node) if node else None
    with Case(case, read_only=True) as c:
        rows = edges_of(c, ref, limit)
    records: list[dict[str, object]] = [
        {
            "edge": r.kind,
            "from": r.src,
            "to": r.dst,
            "valid_from": view.when(r.valid_from) if r.valid_from else None,
            "valid_until": view.when(r.valid_until) if r.valid_until else None,
            "source": r.source,
        }
        for r in rows
    ]
    _write_rows(fmt, output, records, view.edges_table(rows))
    return ExitCode.CLEAN


def cascade_cmd(
    seed: Annotated[
        list[str] | None,
        typer.Option(
            "--seed", help="KIND:KEY@TIME (repeatable); TIME may be left out (since always)."
        ),
    ] = None,
    from_findings: Annotated[
        bool,
        typer.Option(
            "--from-findings", help="Seed from ioc.hash findings, flagged nodes and hunt sightings."
        ),
    ] = False,
    engine: Annotated[str, typer.Option(help="numpy (default) or spark.")] = "numpy",
    explain: Annotated[
        list[str] | None,
        typer.Option("--explain", help="KIND:KEY: print the chain of facts that explains it."),
    ] = None,
    upstream_of: Annotated[
        str | None,
        typer.Option(
            "--upstream", help="KIND:KEY[@TIME]: list root-cause candidates upstream of it."
        ),
    ] = None,
    show_downstream: Annotated[
        bool,
        typer.Option("--downstream", help="List every recipient of a tainted release/artifact."),
    ] = False,
    notices: Annotated[
        Path | None,
        typer.Option(help="Write one notice per recipient (JSON and STIX 2.1) into this folder."),
    ] = None,
    sender: Annotated[str, typer.Option(help="Who sends the notices.")] = "taintline",
    fmt: FormatOption = OutputFormat.TABLE,
    output: OutputOption = None,
    fail_on: FailOnOption = FailOn.NEVER,
    limit: Annotated[int, typer.Option(help="Most rows in the table.")] = 50,
    graph_parquet: Annotated[
        str | None,
        typer.Option(
            "--graph-parquet",
            help="With --engine spark: read the edges on the cluster from this Parquet table"
            " (taintline export --format parquet writes edges.parquet) instead of the case.",
            show_default=False,
        ),
    ] = None,
    output_parquet: Annotated[
        str | None,
        typer.Option(
            "--output-parquet",
            help="With --graph-parquet: also write the reached nodes there (a URI Spark writes).",
            show_default=False,
        ),
    ] = None,
    spark_master: SparkMaster = None,
    spark_remote: SparkRemote = None,
    spark_conf: SparkConf = None,
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """Earliest possible compromise time of every node, with the facts that explain it.

    --format table shows the reached nodes, jsonl one cascade_reached record per node with the
    fact that reached it; csv, sarif, stix and html render the run's cascade.compromised
    findings.
    """
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    out, err = stdout_console(), stderr_console()
    seeds = [parse_seed(s) for s in seed or []]
    spark = spark_settings(spark_master, spark_remote, spark_conf) if engine == "spark" else None
    if graph_parquet or output_parquet:
        if engine != "spark" or not graph_parquet:
            raise UsageError("--graph-parquet/--output-parquet go with --engine spark")
        if not seeds:
            raise UsageError("--graph-parquet needs --seed KIND:KEY@TIME")
        with Case(case) as c:
            result = cascade_on_cluster(c, graph_parquet, seeds, spark, output_parquet, err)
            with output_stream(output) as stream:
                if fmt is OutputFormat.JSONL:
                    view.write_rows_jsonl(reached_records(c, result.run_id), stream)
                elif fmt is OutputFormat.TABLE:
                    table = view.reached_table(
                        reached_nodes(c, result.run_id, limit), result.reached
                    )
                    Console(file=stream, highlight=False).print(table)
                else:
                    ctx = RenderContext(command="cascade", title="taintline cascade")
                    render_findings(run_findings(c, result.run_id), fmt, stream, ctx)
            return exit_code(run_findings(c, result.run_id), fail_on)
    with Case(case) as c:
        if upstream_of:
            target = parse_seed(upstream_of)
            out.print(view.upstream_table(target, upstream(c, target)))
            if not seeds and not from_findings:
                return ExitCode.CLEAN
        if seeds or from_findings:
            outcome = run_cascade(c, seeds, from_findings=from_findings, engine=engine, spark=spark)
            for message in outcome.missing:
                err.print(labelled("warning", "yellow", message), soft_wrap=True)
            run_id = outcome.run_id
            total = int(outcome.result.reached.shape[0])
        else:
            found = latest_run(c)
            if found is None:
                raise UsageError("no seeds and no earlier cascade run in this case")
            run_id = found
            total = run_size(c, run_id)
            outcome = None
        findings = run_findings(c, run_id)
        with output_stream(output) as stream:
            console = out if output is None else Console(file=stream, highlight=False)
            if fmt is OutputFormat.JSONL:
                view.write_rows_jsonl(reached_records(c, run_id), stream)
            elif fmt is not OutputFormat.TABLE:
                ctx = RenderContext(command="cascade", title="taintline cascade")
                render_findings(findings, fmt, stream, ctx)
            elif not explain:
                console.print(view.reached_table(reached_nodes(c, run_id, limit), total))
            for node in explain or []:
                ref = NodeRef.parse(node)
                view.print_explanation(ref, explain_path(c, run_id, ref), console)
        if show_downstream or notices:
            if outcome is None:
                raise UsageError("--downstream needs seeds (or --from-findings) in the same run")
            recipients = downstream(outcome.graph, outcome.result)
            if fmt is OutputFormat.TABLE:
                out.print(view.downstream_table(recipients))
            if notices:
                written = write_notices(recipients, notices, sender)
                record_notices(c, run_id, notices, written)
                err.print(f"wrote {len(written)} notice file(s) to {notices}", markup=False)
    return exit_code(findings, fail_on)


def register(app: typer.Typer) -> None:
    app.add_typer(graph_app, name="graph")
    app.command("cascade")(cascade_cmd)
