"""``taintline graph add/show/stats`` and ``taintline cascade``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, TextIO

import orjson
import typer
from rich.console import Console
from rich.table import Table

from taintline.case import Case
from taintline.cli.common import DEFAULT_CASE, CaseOption, ExitCode, stderr_console, stdout_console
from taintline.cli.sparkopts import SparkConf, SparkMaster, SparkRemote, spark_settings
from taintline.errors import UsageError
from taintline.graph.downstream import downstream, write_notices
from taintline.graph.ingest import READERS, add_files, facts_from_findings, write_facts
from taintline.graph.service import ENGINES, cascade_on_cluster, run_cascade, upstream
from taintline.graph.store import (
    Fact,
    Reached,
    explain_path,
    latest_run,
    parse_seed,
    reached_nodes,
    record_notices,
)
from taintline.model import NodeRef, iso
from taintline.terminal import labelled, printable, text

graph_app = typer.Typer(
    help="Build the case graph: SBOMs, inventories, provenance, "
    "distribution and connection records.",
    no_args_is_help=True,
)

OUTPUT_FORMATS = ("table", "jsonl")


def _when(value: object) -> str:
    if value is None:
        return "always"
    return iso(value) or "always"  # type: ignore[arg-type]


@graph_app.command("add")
def add_cmd(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Files to add (format detected).")
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(help="Host for files that do not name one (osqueryi --json output)."),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="Force a reader: " + ", ".join(r.name for r in READERS)),
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
    problems = 0
    with Case(case) as c:
        for result in add_files(c, files or [], host=host, fmt=fmt):
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
            )
        if from_findings:
            facts = facts_from_findings(c)
            nodes, edges = write_facts(c, facts, "findings")
            out.print(f"findings: {nodes} new nodes, {edges} new edges")
    if problems:
        err.print(f"{problems} record(s) or file(s) skipped")
    return ExitCode.USAGE if problems else ExitCode.CLEAN


@graph_app.command("stats")
def stats_cmd(case: CaseOption = DEFAULT_CASE) -> int:
    """Count nodes and edges by kind."""
    out = stdout_console()
    with Case(case, read_only=True) as c:
        table = Table("what", "kind", "count")
        for kind, n in c.con.execute(
            "SELECT kind, count(*) FROM nodes GROUP BY 1 ORDER BY 1"
        ).fetchall():
            table.add_row("node", text(kind), str(n))
        for kind, n in c.con.execute(
            "SELECT kind, count(*) FROM edges GROUP BY 1 ORDER BY 1"
        ).fetchall():
            table.add_row("edge", text(kind), str(n))
    out.print(table)
    return ExitCode.CLEAN


@graph_app.command("show")
def show_cmd(
    node: Annotated[
        str | None, typer.Argument(help="KIND:KEY: show the edges of one node.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Most edges to show.")] = 100,
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """List edges (all, or those of one node) with their times and sources."""
    out = stdout_console()
    sql = (
        "SELECT kind, src_kind || ':' || src_key, dst_kind || ':' || dst_key, valid_from,"
        " valid_until, source FROM edges"
    )
    params: list[object] = []
    if node:
        ref = NodeRef.parse(node)
        sql += " WHERE (src_kind = ? AND src_key = ?) OR (dst_kind = ? AND dst_key = ?)"
        params = [str(ref.kind), ref.key, str(ref.kind), ref.key]
    sql += f" ORDER BY valid_from NULLS FIRST, kind LIMIT {int(limit)}"
    table = Table("edge", "from", "to", "valid from", "valid until", "source")
    with Case(case, read_only=True) as c:
        for row in c.con.execute(sql, params).fetchall():
            table.add_row(
                text(row[0]),
                text(row[1]),
                text(row[2]),
                str(row[3] or "-"),
                str(row[4] or "-"),
                text(row[5]),
            )
    out.print(table)
    return ExitCode.CLEAN


def _render_reached(rows: list[Reached], console: Console, total: int) -> None:
    table = Table(
        "kind",
        "key",
        "earliest compromise (UTC)",
        "confidence",
        "path",
        title=f"{total} node(s) reached",
    )
    for r in rows:
        table.add_row(
            str(r.ref.kind),
            text(r.ref.key),
            _when(r.time),
            f"{r.confidence:.2f}",
            "seed" if r.is_root else str(r.hops),
        )
    console.print(table)


def _fact_line(number: int, fact: Fact) -> str:
    window = (
        f"{_when(fact.valid_from)} .. {_when(fact.valid_until) if fact.valid_until else 'open'}"
    )
    return (
        f"{number}. {fact.frm} --{fact.edge_kind} [{window}]--> {fact.to}: compromised from "
        f"{_when(fact.to_time)} (rule {fact.rule}, confidence {fact.confidence:.2f}, "
        f"source {fact.source})"
    )


def print_explanation(c: Case, run_id: str, ref: NodeRef, console: Console) -> bool:
    path = explain_path(c, run_id, ref)
    if path is None:
        console.print(printable(f"{ref}: not reached by this cascade run"), soft_wrap=True)
        return False
    if not path:
        console.print(printable(f"{ref}: a seed (root of the cascade)"), soft_wrap=True)
        return True
    console.print(printable(f"Why {ref} (root {path[0].frm}):"), soft_wrap=True)
    for number, fact in enumerate(path, start=1):
        console.print("  " + printable(_fact_line(number, fact)), soft_wrap=True)
    return True


def _jsonl_reached(c: Case, run_id: str, out: TextIO) -> None:
    rows = c.con.execute(
        "SELECT kind, key, time, confidence, hops, is_root, parent_kind, parent_key, rule,"
        " edge_kind, edge_valid_from, edge_valid_until, edge_source FROM cascade_reached"
        " WHERE run_id = ? ORDER BY time NULLS FIRST, hops, kind, key",
        [run_id],
    ).fetchall()
    for r in rows:
        record = {
            "record": "cascade_reached",
            "run_id": run_id,
            "node": f"{r[0]}:{r[1]}",
            "time": _iso_naive(r[2]),
            "confidence": r[3],
            "hops": r[4],
            "root": r[5],
            "parent": f"{r[6]}:{r[7]}" if r[6] else None,
            "rule": r[8],
            "edge_kind": r[9],
            "edge_valid_from": _iso_naive(r[10]),
            "edge_valid_until": _iso_naive(r[11]),
            "edge_source": r[12],
        }
        out.write(orjson.dumps(record).decode() + "\n")


def _iso_naive(value: object) -> str | None:
    if value is None:
        return None
    return f"{value.isoformat()}Z"  # type: ignore[attr-defined]


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
    fmt: Annotated[str, typer.Option("--format", help="table or jsonl.")] = "table",
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
    """Earliest possible compromise time of every node, with the facts that explain it."""
    if fmt not in OUTPUT_FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
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
            if fmt == "jsonl":
                _jsonl_reached(c, result.run_id, sys.stdout)
            else:
                _render_reached(reached_nodes(c, result.run_id, limit), out, result.reached)
        return ExitCode.CLEAN
    with Case(case) as c:
        if upstream_of:
            target = parse_seed(upstream_of)
            table = Table(
                "kind",
                "key",
                "latest possible compromise",
                "root candidate",
                "flagged",
                title=printable(f"upstream of {target}"),
            )
            for u in upstream(c, target):
                table.add_row(
                    str(u.ref.kind),
                    text(u.ref.key),
                    _when(u.latest) if u.latest else "any",
                    "yes" if u.root_candidate else "",
                    f"end of life {u.end_of_life}" if u.end_of_life else "yes" if u.flagged else "",
                )
            out.print(table)
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
            row = c.con.execute(
                "SELECT nodes_reached FROM cascade_runs WHERE run_id = ?", [run_id]
            ).fetchone()
            total = int(row[0]) if row else 0
            outcome = None
        if fmt == "jsonl":
            _jsonl_reached(c, run_id, sys.stdout)
        elif not explain:
            _render_reached(reached_nodes(c, run_id, limit), out, total)
        for node in explain or []:
            print_explanation(c, run_id, NodeRef.parse(node), out)
        if show_downstream or notices:
            if outcome is None:
                raise UsageError("--downstream needs seeds (or --from-findings) in the same run")
            recipients = downstream(outcome.graph, outcome.result)
            table = Table(
                "recipient",
                "first tainted delivery",
                "items",
                "artifacts",
                title=f"{len(recipients)} recipient(s) of tainted items",
            )
            for rec in recipients:
                table.add_row(
                    text(rec.ref),
                    _when(rec.first),
                    text(", ".join(sorted({str(d.item) for d in rec.deliveries}))),
                    text(", ".join(a[:12] for a in rec.artifacts)),
                )
            if fmt == "table":
                out.print(table)
            if notices:
                written = write_notices(recipients, notices, sender)
                record_notices(c, run_id, notices, written)
                err.print(f"wrote {len(written)} notice file(s) to {notices}")
    return ExitCode.CLEAN


def register(app: typer.Typer) -> None:
    app.add_typer(graph_app, name="graph")
    app.command("cascade")(cascade_cmd)
