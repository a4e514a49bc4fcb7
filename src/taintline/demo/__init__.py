"""``taintline demo``: a small, synthetic, harmless 3CX / X_TRADER case, end to end.

Every generated file is made here from scratch (no malware, no network). Each stage is the
``stage`` function of one module of this package; they run in the order of the story.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from taintline.case import Case
from taintline.demo import eol as eol_demo
from taintline.demo import graph as graph_demo
from taintline.demo import hunt as hunt_demo
from taintline.demo import intel as intel_demo
from taintline.demo import release as release_demo
from taintline.demo import report as report_demo
from taintline.demo import scan as scan_demo
from taintline.demo.context import DemoContext, StageResult

Stage = Callable[[DemoContext], StageResult]

#: The story, in order. Each later capability adds its stage here.
STAGES: tuple[Stage, ...] = (
    intel_demo.stage,
    scan_demo.stage,
    hunt_demo.stage,
    eol_demo.stage,
    graph_demo.stage,
    release_demo.stage,
    report_demo.stage,
)


@dataclass(frozen=True, slots=True)
class DemoResult:
    workdir: Path
    case_path: Path
    stages: tuple[StageResult, ...]


def run_demo(console: Console, workdir: Path | None = None, keep: bool = False) -> DemoResult:
    """Build the synthetic case in ``workdir`` (a new temporary folder by default) and run
    every stage, printing what each found."""
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="taintline-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    case_path = workdir / "demo-case.duckdb"
    results: list[StageResult] = []
    with Case(case_path) as case:
        ctx = DemoContext(workdir=workdir, case=case, console=console)
        for number, stage in enumerate(STAGES, start=1):
            result = stage(ctx)
            results.append(result)
            body = "\n".join(result.lines)
            console.print(Panel(body, title=f"[bold]{number}. {result.title}[/bold]", expand=True))
    console.print(
        f"case file: {case_path}" + ("" if keep else " (temporary folder)"), soft_wrap=True
    )
    return DemoResult(workdir=workdir, case_path=case_path, stages=tuple(results))
