"""What every command shares: exit codes, the ``--case`` option, consoles, severity parsing,
and the output contract of every verb that emits results: ``--format`` (:class:`OutputFormat`),
``-o/--output`` and ``--fail-on`` (:class:`FailOn`), defined once here."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console

from taintline.case import DEFAULT_CASE_PATH
from taintline.errors import UsageError
from taintline.model import Finding, Severity
from taintline.report import OutputFormat
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


# -- the output contract --------------------------------------------------------------------


class FailOn(StrEnum):
    """``--fail-on``: exit 1 when a finding is at least this severe; ``never``: exit 0."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"
    NEVER = "never"

    def failed(self, findings: Iterable[Finding]) -> bool:
        if self is FailOn.NEVER:
            return False
        threshold = Severity(self.value)
        return any(f.severity.at_least(threshold) for f in findings)


FormatOption = Annotated[
    OutputFormat, typer.Option("--format", help="Output format.", case_sensitive=False)
]
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the results to this file (default: stdout)."),
]
FailOnOption = Annotated[
    FailOn,
    typer.Option(
        "--fail-on",
        help="Exit 1 when a finding is at least this severe (never: exit 0 whatever is found).",
        case_sensitive=False,
    ),
]


def exit_code(findings: Iterable[Finding], fail_on: FailOn) -> ExitCode:
    """The one place results become an exit code."""
    return ExitCode.FINDINGS if fail_on.failed(findings) else ExitCode.CLEAN


@contextmanager
def output_stream(output: Path | None) -> Iterator[TextIO]:
    """``-o FILE`` (written as UTF-8), else stdout (flushed, not closed)."""
    if output is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with output.open("w", encoding="utf-8", newline="") as handle:
        yield handle
