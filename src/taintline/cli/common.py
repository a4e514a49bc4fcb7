"""What every command shares: exit codes, the ``--case`` option, consoles, severity parsing."""

from __future__ import annotations

import sys
from enum import IntEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from taintline.case import DEFAULT_CASE_PATH
from taintline.errors import UsageError
from taintline.model import Severity


class ExitCode(IntEnum):
    CLEAN = 0
    FINDINGS = 1
    USAGE = 2


CaseOption = Annotated[
    Path,
    typer.Option("--case", help="Case file (DuckDB).", envvar="TAINTLINE_CASE"),
]
DEFAULT_CASE = DEFAULT_CASE_PATH


def stdout_console() -> Console:
    """Rich on a terminal, plain text in pipes and CI."""
    # In pipes rich would wrap at 80 columns and split paths; 120 keeps tables readable.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def progress_enabled(console: Console) -> bool:
    """Progress bars only on an interactive terminal."""
    return console.is_terminal and sys.stderr.isatty()


def parse_severity(text: str) -> Severity:
    try:
        return Severity(text.lower())
    except ValueError:
        choices = ", ".join(s.value for s in Severity)
        raise UsageError(f"unknown severity {text!r}; choose one of {choices}") from None
