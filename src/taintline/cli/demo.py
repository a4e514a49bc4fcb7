"""``taintline demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from taintline.cli.common import ExitCode, stdout_console


def demo_cmd(
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Folder for the demo files (default: a new temp folder)."),
    ] = None,
) -> int:
    """Build a synthetic, harmless 3CX / X_TRADER case and run every stage on it."""
    from taintline.demo import run_demo  # every stage's package: imported only when needed

    run_demo(stdout_console(), workdir, keep=workdir is not None)
    return ExitCode.CLEAN


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
