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
from taintline.terminal import make_console


class ExitCode(IntEnum):
    """Every exit code taintline uses (the README's table lists them)."""

    #: Nothing found at or above ``--fail-on``.
    CLEAN = 0
    #: Findings at or above ``--fail-on``.
    FINDINGS = 1
    #: Usage error, or an input of which nothing could be understood.
    USAGE = 2
    #: Internal error (a bug): the traceback was written to a file named on stderr.
    INTERNAL = 3
    #: Interrupted (Ctrl-C) or aborted at a prompt.
    INTERRUPTED = 130
    #: The program reading our output closed the pipe early (``| head``).
    PIPE_CLOSED = 141


CaseOption = Annotated[
    Path,
    typer.Option("--case", help="Case file (DuckDB).", envvar="TAINTLINE_CASE"),
]
DEFAULT_CASE = DEFAULT_CASE_PATH


def stdout_console() -> Console:
    """Rich on a terminal, plain text in pipes and CI; strings are text, never markup
    (:mod:`taintline.terminal`)."""
    # In pipes rich would wrap at 80 columns and split paths; 120 keeps tables readable.
    return make_console(width=None if sys.stdout.isatty() else 120)


def stderr_console() -> Console:
    return make_console(stderr=True)


def progress_enabled(console: Console) -> bool:
    """Progress bars only on an interactive terminal."""
    return console.is_terminal and sys.stderr.isatty()


def parse_severity(text: str) -> Severity:
    try:
        return Severity(text.lower())
    except ValueError:
        choices = ", ".join(s.value for s in Severity)
        raise UsageError(f"unknown severity {text!r}; choose one of {choices}") from None
