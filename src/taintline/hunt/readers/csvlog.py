"""CSV logs with a header line: proxy and firewall exports (Squid/W3C-style names, vendor CSV).

Columns are named by the header and mapped onto the common fields by name (see
:mod:`taintline.hunt.readers.fields`), or explicitly with ``--map``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

from taintline.errors import Problem
from taintline.hunt.model import Field, LogFormat, LogSource
from taintline.hunt.readers.fields import GENERIC_FIELDS, kind_from_fields, pick_columns
from taintline.hunt.readers.textio import compression_of_path

FORMAT = LogFormat.CSV


def _dialect(line: str) -> str:
    counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
    return max(counts, key=lambda d: counts[d])


def _header(first: str, delimiter: str) -> list[str] | None:
    try:
        return [n.strip() for n in next(csv.reader(io.StringIO(first), delimiter=delimiter))]
    except (csv.Error, StopIteration):
        return None


def sniff(head: list[bytes], path: Path) -> bool:
    if not head or b"\0" in head[0]:
        return False
    first = head[0].decode("utf-8", "replace").lstrip("\ufeff")
    if not first or first.startswith(("#", "{")):
        return False
    delimiter = _dialect(first)
    if first.count(delimiter) < 1:
        return False
    names = _header(first, delimiter)
    if names is None:
        return False
    known = {n for names_ in GENERIC_FIELDS.values() for n in names_}
    return any(n.strip().lower() in known for n in names)


def describe(path: Path, head: list[bytes], field_map: Mapping[Field, str]) -> LogSource | Problem:
    if not head:
        return Problem(str(path), "empty CSV file")
    first = head[0].decode("utf-8", "replace").lstrip("\ufeff")
    delimiter = _dialect(first)
    names = _header(first, delimiter)
    if names is None:
        return Problem(str(path), "unreadable CSV header", line=1)
    if len(set(names)) != len(names) or not all(names):
        return Problem(str(path), "CSV header has empty or repeated column names", line=1)
    chosen = pick_columns(names, GENERIC_FIELDS, field_map)
    return LogSource(
        path=str(path),
        format=FORMAT,
        kind=kind_from_fields(names),
        fields={f: (c,) for f, c in chosen.items()},
        columns=tuple(names),
        delimiter=delimiter,
        null_values=("", "-"),
        header_lines=1,
        compression=compression_of_path(path),
    )
