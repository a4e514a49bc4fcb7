"""One error base with a user-facing diagnosis, caught once at the top (``cli.main``).

Errors about a *single item* (one file, one log line, one indicator) are not exceptions that
end a run: readers return them as :class:`Problem` values (or ``error.*`` findings) and go on.
"""

from __future__ import annotations

from dataclasses import dataclass


class TaintlineError(Exception):
    """Base of every error taintline raises on purpose."""

    def diagnostics(self) -> str:
        """One or more lines a user can act on."""
        return str(self)


class UsageError(TaintlineError):
    """Bad arguments or options (exit code 2)."""


class InputError(TaintlineError):
    """An input that cannot be used at all (exit code 2)."""

    def __init__(self, item: str, message: str) -> None:
        super().__init__(f"{item}: {message}")
        self.item = item
        self.message = message


class CaseError(TaintlineError):
    """The case store cannot be opened, migrated or written."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem with one item of input; the run goes on.

    ``item`` names the file (and container path), ``line`` the line or record number when
    known, ``message`` says what is wrong in one line.
    """

    item: str
    message: str
    line: int | None = None

    def one_line(self) -> str:
        where = f"{self.item}:{self.line}" if self.line is not None else self.item
        return f"{where}: {self.message}"
