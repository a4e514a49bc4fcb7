"""CSV and plain-text IOC lists.

* Blank lines and comment lines (``#``, ``//``) are skipped.
* A header row is recognised when one of its cells names a known column (``value``/
  ``indicator``/``ioc``, ``type``, ``source``, ``description``/``comment``, ``campaign``,
  ``reference``/``url``, ``confidence``, ``labels``/``tags``); the delimiter is ``,``, tab,
  ``;`` or ``|``, whichever the header uses. Quoted CSV is parsed with the ``csv`` module.
* Without a header each line's first token (up to white space, ``,``, ``;`` or ``|``) is the
  value and the rest of the line its description; ``TYPE,VALUE`` lines (``sha256,ab12..``)
  are understood too.
* The type of each value is detected (or taken from a ``type`` column and checked), defanged
  values are refanged, and every value is normalised. A value that is not a valid indicator is
  a :class:`~taintline.errors.Problem` with its line number; the other lines still count.

The common case runs column-wise in Arrow (see :mod:`taintline.intel.fastpath`); only the rows
the fast path cannot classify go through Python one by one.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from taintline.errors import Problem
from taintline.intel import fastpath
from taintline.intel.interface import ReadResult
from taintline.intel.normalize import (
    TYPE_ALIASES,
    classify,
    normalize_with_hint,
    refang,
    type_from_name,
)
from taintline.limits import IntelLimits
from taintline.model import IndicatorType

NAME = "csv"

_TEXT_EXTENSIONS = frozenset({".csv", ".txt", ".tsv", ".ioc", ".list", ".lst"})

#: Header names, lower-cased, mapped to our column roles.
COLUMN_ROLES: dict[str, str] = {
    **dict.fromkeys(
        ("value", "indicator", "ioc", "observable", "hash", "domain", "url", "ip", "data"),
        "value",
    ),
    **dict.fromkeys(("type", "indicator_type", "ioc_type", "kind"), "type"),
    **dict.fromkeys(("source", "report", "publisher", "source_name"), "source"),
    **dict.fromkeys(("description", "comment", "comments", "note", "notes", "info"), "description"),
    **dict.fromkeys(("campaign", "actor", "threat", "malware"), "campaign"),
    **dict.fromkeys(("reference", "references", "link", "source_url", "report_url"), "reference"),
    "confidence": "confidence",
    **dict.fromkeys(("labels", "tags", "label", "tag"), "labels"),
}


def sniff(head: bytes, path: Path) -> bool:
    """Any text that no structured reader claimed: this reader is last in ``READERS``."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the head is fine.
        if exc.start < len(head) - 4:
            return path.suffix.lower() in _TEXT_EXTENSIONS
    return True


def read(path: Path, limits: IntelLimits) -> ReadResult:
    item = str(path)
    size = path.stat().st_size
    if size > limits.max_text_bytes:
        return ReadResult.failure(
            NAME, item, f"{size} bytes is over the {limits.max_text_bytes}-byte limit for IOC lists"
        )
    result = ReadResult(format=NAME)
    header: tuple[str, dict[str, int]] | None = None
    header_seen = False
    first_line = 1
    # Arrow's compute kernels release the GIL: once the header is known, chunks are
    # classified on worker threads (both cores), a few at a time, merged in file order.
    pending: deque[Future[ReadResult]] = deque()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="taintline-csv") as pool:
        for text in _chunks(path, limits.max_line_bytes):
            start, first_line = first_line, first_line + text.count("\n")
            if header_seen:
                pending.append(pool.submit(_chunk, text, start, header, item, path.name, limits))
                while len(pending) > 2:
                    _merge(result, pending.popleft().result())
                continue
            lines, numbers = _lines(text, start, item, limits, result)
            if len(lines) == 0:
                continue
            header_seen = True
            header = _header(lines[0].as_py())
            if header is not None:
                lines, numbers = lines[1:], numbers[1:]
            _classify_lines(result, lines, numbers, header, item, path.name)
        while pending:
            _merge(result, pending.popleft().result())
    return result


def _chunk(
    text: str,
    first_line: int,
    header: tuple[str, dict[str, int]] | None,
    item: str,
    source: str,
    limits: IntelLimits,
) -> ReadResult:
    part = ReadResult(format=NAME)
    lines, numbers = _lines(text, first_line, item, limits, part)
    if len(lines):
        _classify_lines(part, lines, numbers, header, item, source)
    return part


def _classify_lines(
    result: ReadResult,
    lines: pa.Array,
    numbers: pa.Array,
    header: tuple[str, dict[str, int]] | None,
    item: str,
    source: str,
) -> None:
    if header is not None:
        delimiter, roles = header
        columns = _split_columns(lines, delimiter, roles, item, numbers.to_pylist())
    else:
        columns = _headerless(lines)
    _classify_columns(result, columns, numbers, item, source)


def _merge(result: ReadResult, part: ReadResult) -> None:
    result.tables.extend(part.tables)
    result.indicators.extend(part.indicators)
    result.problems.extend(part.problems)
    for reason, count in part.skipped.items():
        result.skip(reason, count)


#: Lines are processed column-wise in chunks of about this many bytes: big enough for Arrow's
#: kernels to run at full speed, small enough that a 1 GB list never needs 10 GB of memory.
CHUNK_BYTES = 8 * 1024 * 1024


def _chunks(path: Path, max_line: int) -> Iterator[str]:
    """The file as text chunks that each end at a line boundary (the BOM removed).

    A line longer than ``max_line`` is never held whole: it is skipped as it streams by and
    stands in the chunk as an over-long placeholder line, so that it is reported (with its
    line number) like any other over-long line."""
    placeholder = "\x00" * (max_line + 1) + "\n"
    with path.open("rb") as handle:
        carry = b""
        skipping = False
        first = True
        while True:
            block = handle.read(CHUNK_BYTES)
            if not block:
                break
            if skipping:
                cut = block.find(b"\n")
                if cut < 0:
                    continue
                block, skipping = block[cut + 1 :], False
                prefix = placeholder
            else:
                prefix = ""
            block = carry + block
            cut = block.rfind(b"\n")
            if cut < 0:
                carry = block
                if len(carry) > max_line:
                    carry, skipping = b"", True
                if prefix:
                    yield prefix
                continue
            carry = block[cut + 1 :]
            text = prefix + block[: cut + 1].decode("utf-8", errors="replace")
            if first:
                text, first = text.lstrip("\ufeff"), False
            yield text
        if skipping:
            yield placeholder
        elif carry:
            text = carry.decode("utf-8", errors="replace")
            yield text.lstrip("\ufeff") if first else text


def read_text(text: str, item: str, *, default_source: str, limits: IntelLimits) -> ReadResult:
    """Read one in-memory IOC list (the same rules as :func:`read`)."""
    result = ReadResult(format=NAME)
    lines, numbers = _lines(text, 1, item, limits, result)
    if len(lines) == 0:
        return result
    header = _header(lines[0].as_py())
    if header is not None:
        delimiter, roles = header
        columns = _split_columns(lines[1:], delimiter, roles, item, numbers[1:].to_pylist())
        numbers = numbers[1:]
    else:
        columns = _headerless(lines)
    _classify_columns(result, columns, numbers, item, default_source)
    return result


def _lines(
    text: str, first_line: int, item: str, limits: IntelLimits, result: ReadResult
) -> tuple[pa.Array, pa.Array]:
    """The kept lines of ``text`` (trimmed, no blanks, no comments) and their line numbers."""
    if text.endswith("\n"):
        text = text[:-1]
    raw_lines = pc.list_flatten(pc.split_pattern(pa.array([text], pa.large_string()), "\n"))
    lines = pc.utf8_trim_whitespace(raw_lines.cast(pa.string()))
    numbers = pa.array(np.arange(first_line, first_line + len(lines), dtype=np.int64))
    keep = pc.and_(
        pc.greater(pc.binary_length(lines), 0),
        pc.invert(pc.match_substring_regex(lines, r"^(?:#|//)")),
    )
    too_long = pc.greater(pc.binary_length(lines), limits.max_line_bytes)
    if pc.any(too_long).as_py():
        for number in pc.filter(numbers, too_long).to_pylist():
            result.problems.append(Problem(item, "line too long; skipped", number))
        keep = pc.and_(keep, pc.invert(too_long))
    return pc.filter(lines, keep), pc.filter(numbers, keep)


def _header(first: str) -> tuple[str, dict[str, int]] | None:
    for delimiter in (",", "\t", ";", "|"):
        if delimiter not in first and delimiter != ",":
            continue
        cells = [c.strip().strip("\"'").lower() for c in first.split(delimiter)]
        if any(_is_indicator(c) for c in cells):
            continue
        roles: dict[str, int] = {}
        for index, cell in enumerate(cells):
            role = COLUMN_ROLES.get(cell)
            if role is not None and role not in roles:
                roles[role] = index
        if "value" in roles:
            return delimiter, roles
        if roles and len(cells) > 1:
            # A header that names e.g. type and source but calls the value column something
            # else: take the first column with no role as the value.
            free = [i for i in range(len(cells)) if i not in roles.values()]
            if free:
                roles["value"] = free[0]
                return delimiter, roles
    return None


def _is_indicator(cell: str) -> bool:
    try:
        classify(cell)
    except ValueError:
        return False
    return True


def _split_columns(
    lines: pa.Array, delimiter: str, roles: dict[str, int], item: str, numbers: list[int]
) -> dict[str, pa.Array]:
    width = max(roles.values()) + 1
    if pc.any(pc.match_substring(lines, '"')).as_py():
        # Quoted fields (maybe with delimiters inside): the csv module parses these correctly.
        rows = list(csv.reader(lines.to_pylist(), delimiter=delimiter))
        out: dict[str, pa.Array] = {}
        for role, index in roles.items():
            out[role] = pa.array(
                [(r[index].strip() or None) if index < len(r) else None for r in rows], pa.string()
            )
        return out
    padded = pc.binary_join_element_wise(lines, pa.scalar(delimiter * width), "")
    parts = pc.split_pattern(padded, delimiter)
    out = {}
    for role, index in roles.items():
        column = pc.utf8_trim_whitespace(pc.list_element(parts, index))
        out[role] = pc.if_else(pc.equal(pc.binary_length(column), 0), None, column)
    return out


_TOKEN = r"[^\s,;|]+"  # noqa: S105 - a regex, not a password
_SEP = r"[\s,;|]+"


def _headerless(lines: pa.Array) -> dict[str, pa.Array]:
    parts = pc.extract_regex(
        lines, rf"^(?P<a>{_TOKEN})(?:{_SEP}(?P<b>{_TOKEN}))?(?:{_SEP}(?P<rest>.*))?$"
    )
    first = pc.struct_field(parts, "a")
    second = pc.struct_field(parts, "b")
    rest_all = pc.struct_field(pc.extract_regex(lines, rf"^{_TOKEN}{_SEP}(?P<rest>.*)$"), "rest")
    rest_all = pc.utf8_trim(rest_all, "#/ \t")
    typed = pc.and_(
        pc.is_in(pc.utf8_lower(first), value_set=pa.array(sorted(TYPE_ALIASES))),
        pc.is_valid(second),
    )
    typed = pc.fill_null(typed, False)
    rest_after_two = pc.utf8_trim(pc.struct_field(parts, "rest"), "#/ \t")
    value = pc.if_else(typed, second, first)
    hint = pc.if_else(typed, first, pa.scalar(None, pa.string()))
    description = pc.if_else(typed, rest_after_two, rest_all)
    description = pc.if_else(pc.equal(pc.binary_length(description), 0), None, description)
    return {"value": value, "type": hint, "description": description}


def _hint_types(hints: pa.Array) -> tuple[pa.Array, list[str]]:
    """Map stated type names to ours (null when none); returns also the unknown names."""
    unique = [u for u in pc.unique(pc.utf8_lower(hints)).to_pylist() if u is not None]
    mapping = {u: type_from_name(u) for u in unique}
    unknown = sorted(u for u, t in mapping.items() if t is None)
    keys = pa.array(list(mapping), pa.string())
    mapped = pa.array([str(t) if t else None for t in mapping.values()], pa.string())
    index = pc.index_in(pc.utf8_lower(hints), value_set=keys)
    return pc.take(mapped, index), unknown


def _classify_columns(
    result: ReadResult,
    columns: dict[str, pa.Array],
    numbers: pa.Array,
    item: str,
    default_source: str,
) -> None:
    value = columns["value"]
    n = len(value)
    stated = columns.get("type")
    hints: pa.Array = pa.nulls(n, pa.string())
    unknown_hint = pa.array(np.zeros(n, dtype=bool))
    if stated is not None:
        hints, unknown = _hint_types(stated)
        if unknown:
            unknown_hint = pc.fill_null(
                pc.is_in(pc.utf8_lower(stated), value_set=pa.array(unknown)), False
            )
    classified = fastpath.classify_array(value)
    fast = pc.and_(fastpath.agree_with_hint(classified.types, hints), pc.invert(unknown_hint))
    fast = pc.fill_null(fast, False)
    sources = columns.get("source")
    if sources is None:
        sources = pa.nulls(n, pa.string())
    sources = pc.fill_null(sources, default_source)
    extra: dict[str, pa.Array] = {
        role: columns[role]
        for role in ("description", "campaign", "reference", "confidence", "labels")
        if role in columns
    }
    table: dict[str, Any] = {
        "type": pc.filter(classified.types, fast),
        "value": pc.filter(classified.values, fast),
        "source": pc.filter(sources, fast),
    }
    table.update(_extra_columns(extra, fast))
    if len(table["type"]):
        result.tables.append(pa.table(table))

    slow = pc.invert(fast)
    if not pc.any(slow).as_py():
        return
    slow_cols = {
        "value": pc.filter(value, slow).to_pylist(),
        "hint": pc.filter(hints, slow).to_pylist(),
        "stated": pc.filter(stated, slow).to_pylist() if stated is not None else None,
        "line": pc.filter(numbers, slow).to_pylist(),
        "source": pc.filter(sources, slow).to_pylist(),
    }
    slow_extra = {role: pc.filter(col, slow).to_pylist() for role, col in extra.items()}
    out_rows: dict[str, list[Any]] = {"type": [], "value": [], "source": []}
    out_extra: dict[str, list[Any]] = {role: [] for role in slow_extra}
    for i, raw in enumerate(slow_cols["value"]):
        line = slow_cols["line"][i]
        if raw is None:
            result.problems.append(Problem(item, "no value on this line", line))
            continue
        hint_name = slow_cols["hint"][i]
        stated_name = slow_cols["stated"][i] if slow_cols["stated"] is not None else None
        try:
            if hint_name is not None:
                kind, norm = normalize_with_hint(IndicatorType(hint_name), refang(raw).strip("\"'"))
            elif stated_name:
                raise ValueError(f"unknown indicator type {stated_name!r}")
            else:
                kind, norm = classify(raw)
        except ValueError as exc:
            result.problems.append(Problem(item, str(exc), line))
            continue
        out_rows["type"].append(str(kind))
        out_rows["value"].append(norm)
        out_rows["source"].append(slow_cols["source"][i])
        for role, col in slow_extra.items():
            out_extra[role].append(col[i])
    if out_rows["type"]:
        slow_table: dict[str, Any] = {k: pa.array(v, pa.string()) for k, v in out_rows.items()}
        extra_arrays = {role: pa.array(v, pa.string()) for role, v in out_extra.items()}
        mask = pa.array(np.ones(len(out_rows["type"]), dtype=bool))
        slow_table.update(_extra_columns(extra_arrays, mask))
        result.tables.append(pa.table(slow_table))


_DIGITS = r"^[0-9]{1,3}$"


def _extra_columns(extra: dict[str, pa.Array], mask: pa.Array) -> dict[str, pa.Array]:
    out: dict[str, pa.Array] = {}
    if "description" in extra:
        out["description"] = pc.filter(extra["description"], mask)
    if "campaign" in extra:
        out["campaign"] = pc.filter(extra["campaign"], mask)
    if "confidence" in extra:
        conf = pc.filter(extra["confidence"], mask)
        ok = pc.fill_null(pc.match_substring_regex(conf, _DIGITS), False)
        out["confidence"] = pc.cast(pc.if_else(ok, conf, None), pa.int32())
    if "labels" in extra:
        labels = pc.filter(extra["labels"], mask)
        out["labels"] = pc.split_pattern_regex(pc.fill_null(labels, ""), r"\s*[;|]\s*")
        out["labels"] = pc.if_else(pc.is_null(labels), None, out["labels"])
    if "reference" in extra:
        refs = pc.filter(extra["reference"], mask).to_pylist()
        out["context"] = pa.array(
            [orjson.dumps({"reference": r}).decode() if r else None for r in refs], pa.string()
        )
    return out
