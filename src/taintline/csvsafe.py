"""CSV that a spreadsheet opens safely: one writer for every CSV taintline writes.

File names, SBOM component names, log fields and rule metadata are attacker-controlled. A cell
that starts with ``=``, ``+``, ``-`` or ``@`` is a formula to Excel, LibreOffice and Google
Sheets (``=HYPERLINK(...)`` exfiltrates on a click, ``=cmd|' /C calc'!A0`` runs a program
through DDE); a leading tab or carriage return hides one. Following OWASP's "CSV Injection"
rule, such a cell is written with a leading ``'``, which spreadsheets show as text and do not
evaluate. The ``csv`` module still does the quoting.

One exception, by choice: a cell that is exactly a plain decimal number (``-5``, ``+3.5``,
``-1e-3``) is written as it is, so negative confidences, scores and offsets stay numbers. A
plain number cannot call a function or reach another cell; ``-2+3`` or ``-1e3+A1`` is not a
plain number and is neutralised.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

#: First characters that make a spreadsheet cell a formula (OWASP).
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: object) -> str:
    """``value`` as CSV cell text: ``None`` is empty, a formula-looking text gets a ``'``."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.startswith(TRIGGERS) and _NUMBER.fullmatch(text) is None:
        return "'" + text
    return text


class SafeWriter:
    """``csv.writer`` whose every cell goes through :func:`safe_cell`."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def write_records(records: Sequence[Mapping[str, object]], out: TextIO) -> None:
    """Rows of dicts (the first one's keys are the header), every cell made safe."""
    if not records:
        return
    writer = SafeWriter(out)
    columns = list(records[0])
    writer.writerow(columns)
    for record in records:
        writer.writerow(record.get(c) for c in columns)


__all__ = ["TRIGGERS", "SafeWriter", "safe_cell", "write_records"]
