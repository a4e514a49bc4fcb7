"""How an indicator CSV or text file is laid out: which header names which role (value, type,
note, reference), where the type words stand, and whether a file has a header at all, decided
from the first :data:`SAMPLE_ROWS` rows.

Split from :mod:`taintline.intel.csvtext`, which reads the whole file once the layout is known.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from taintline.intel.labels import (
    AUTO_LABELS,
    HASH_LABELS,
    IP_PORT_LABELS,
    REFERENCE_LABELS,
    TYPE_ALIASES,
    UNMATCHED_LABELS,
    label_kind,
)
from taintline.intel.normalize import (
    classify,
)
from taintline.model import IndicatorType

#: Header names, lower-cased, mapped to our column roles. (Header cells that are type words,
#: ``sha256`` or ``domain``, name a value column of that type instead.)
COLUMN_ROLES: dict[str, str] = {
    **dict.fromkeys(
        (
            "value",
            "indicator",
            "indicators",
            "ioc",
            "iocs",
            "observable",
            "data",
            "ioc_value",
            "indicator_value",
        ),
        "value",
    ),
    **dict.fromkeys(
        ("type", "indicator_type", "ioc_type", "kind", "category", "type_of_indicator"), "type"
    ),
    **dict.fromkeys(("source", "publisher", "source_name", "vendor"), "source"),
    **dict.fromkeys(
        ("description", "comment", "comments", "note", "notes", "info", "context", "details"),
        "description",
    ),
    **dict.fromkeys(("campaign", "actor", "threat", "malware", "family"), "campaign"),
    **dict.fromkeys(
        (
            "reference",
            "references",
            "link",
            "links",
            "source_url",
            "report_url",
            "report",
            "url_reference",
        ),
        "reference",
    ),
    "confidence": "confidence",
    **dict.fromkeys(("labels", "tags", "label", "tag"), "labels"),
}


#: Every type word (lower-case) a TYPE,VALUE line may start with.
_LABEL_WORDS = sorted(
    set(TYPE_ALIASES)
    | AUTO_LABELS
    | HASH_LABELS
    | IP_PORT_LABELS
    | REFERENCE_LABELS
    | UNMATCHED_LABELS
)


#: Rows looked at to decide which column holds what.
SAMPLE_ROWS = 200


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a file keeps what: decided once from its first lines."""

    #: ``None``: no header (tokens split on white space, ``,``, ``;``, ``|``).
    delimiter: str | None = None
    #: (column index, type word from the header or ``None``) of each value column.
    value_columns: tuple[tuple[int, str | None], ...] = ()
    type_column: int | None = None
    roles: dict[str, int] = field(default_factory=dict)
    #: LOKI/THOR ``filename-iocs``: ``REGEX;SCORE[;FP-REGEX]`` lines.
    filename_regex: bool = False


def _cell(text: str) -> str:
    return text.strip().strip("\"'").strip().lower()


def _is_indicator(cell: str) -> bool:
    try:
        classify(cell)
    except ValueError:
        return False
    return True


def _split_sample(lines: list[str], delimiter: str) -> list[list[str]]:
    if any('"' in line for line in lines):
        return list(csv.reader(lines, delimiter=delimiter))
    return [line.split(delimiter) for line in lines]


def _layout(lines: pa.Array, name: str) -> tuple[Layout, bool]:
    """The file's layout from its first kept lines; ``True`` when the first is a header."""
    sample = lines.slice(0, SAMPLE_ROWS + 1).to_pylist()
    first = sample[0]
    for delimiter in (",", "\t", ";", "|"):
        if delimiter not in first and delimiter != ",":
            continue
        cells = [_cell(c) for c in _split_sample([first], delimiter)[0]]
        layout = _header_layout(cells, delimiter, _split_sample(sample[1:], delimiter))
        if layout is not None:
            return layout, True
    if _looks_like_filename_iocs(sample, name):
        return Layout(filename_regex=True), False
    return Layout(), False


def _header_layout(cells: list[str], delimiter: str, rows: list[list[str]]) -> Layout | None:
    """The layout a header row names, checked against the rows under it; ``None`` if
    ``cells`` is not a header."""
    roles: dict[str, int] = {}
    typed: list[tuple[int, str]] = []
    untyped: list[int] = []
    for index, cell in enumerate(cells):
        if not cell:
            continue
        role = COLUMN_ROLES.get(cell)
        if role == "value":
            untyped.append(index)
        elif role is not None:
            roles.setdefault(role, index)
        elif label_kind(cell) not in (None, "unmatched", "reference", "auto"):
            typed.append((index, cell))
        elif _is_indicator(cell):
            return None  # a data row, not a header
    if not (roles or typed or untyped):
        return None
    width = max([len(cells), *(len(r) for r in rows)]) if rows else len(cells)
    type_words = [_share(rows, i, _is_type_word) for i in range(width)]
    found = [_share(rows, i, _is_indicator) for i in range(width)]
    type_column = roles.pop("type", None)
    # The content decides which column holds the type words: ``Indicator,Data,Note`` has
    # them under "Indicator", and some files swap "type" and "value".
    best = max(range(width), key=lambda i: type_words[i], default=None)
    if (
        best is not None
        and type_words[best] >= 0.6
        and rows
        and (type_column is None or type_words[type_column] < 0.5)
    ):
        type_column = best
    if (
        type_column is not None
        and rows
        and type_words[type_column] < 0.5
        and found[type_column] > max((found[i] for i in untyped), default=0.0)
    ):
        # A "type" column that holds the values (and no type words): take it as the value.
        untyped, type_column = [type_column], None
    typed = [(i, w) for i, w in typed if i != type_column]
    untyped = [i for i in untyped if i != type_column]
    taken = {*roles.values(), *(i for i, _ in typed)} | ({type_column} - {None})
    if untyped:
        # One column of untyped values: the one whose cells are indicators (``Data``).
        untyped = [max(untyped, key=lambda i: (found[i], -i))]
    elif not typed:
        free = [i for i in range(width) if i not in taken]
        if not free:
            return None
        untyped = [max(free, key=lambda i: (found[i], -i))]
    value_columns = tuple(sorted([(i, None) for i in untyped] + [(i, w) for i, w in typed]))
    return Layout(delimiter, value_columns, type_column, roles)


def _is_type_word(cell: str) -> bool:
    kind = label_kind(cell)
    return (kind is not None and kind != "auto") or cell in ("indicator", "ioc", "c2")


def _share(rows: list[list[str]], index: int, test: Any) -> float:
    cells = [_cell(r[index]) for r in rows if index < len(r) and r[index].strip()]
    if not cells:
        return 0.0
    return sum(1 for c in cells if test(c)) / len(cells)


_LOKI_LINE = re.compile(r"^(?P<regex>[^;]+);(?P<score>-?[0-9]{1,3})(?:;(?P<fp>.*))?$")


def _looks_like_filename_iocs(sample: list[str], name: str) -> bool:
    """``REGEX;SCORE`` on most lines, the regexes not plain indicators (a ``c2;80`` list
    would be), or the LOKI file name and the shape on at least one line."""
    shaped = [m for m in (_LOKI_LINE.match(line) for line in sample) if m]
    if not shaped:
        return False
    plain = sum(1 for m in shaped if _plain_value(m.group("regex")))
    if "filename-ioc" in name.lower() and plain < len(shaped):
        return True
    return len(shaped) >= 0.6 * len(sample) and plain < 0.5 * len(shaped)


def _plain_value(text: str) -> bool:
    try:
        kind, _ = classify(text)
    except ValueError:
        return False
    return kind is not IndicatorType.FILENAME
