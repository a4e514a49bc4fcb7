"""CSV and plain-text IOC lists, in the shapes published indicator files really have.

* Blank lines and comment lines (``#``, ``//``) are skipped; a UTF-8 BOM, CRLF line ends and
  zero-width or bidi marks (U+200B, U+200E, ...) anywhere in the text are dropped.
* **Header rows** are recognised when their cells name columns (``value``/``indicator``/
  ``ioc``/``data``, ``type``, ``source``, ``description``/``note``, ``campaign``,
  ``reference``/``link``, ``confidence``, ``labels``/``tags``) or indicator types
  (``sha256``, ``md5``, ``domain``, ``url``...: a column of that type); the delimiter is
  ``,``, tab, ``;`` or ``|``. Which column holds the type words and which the values is then
  checked **against the content** of the first rows: in ``Indicator,Data,Note`` the
  ``Indicator`` column holds ``sha256``/``domain``/... and ``Data`` the values.
* Several value columns (``SHA256,SHA1,MD5,Filename``) or several values in one cell
  (space-, comma- or semicolon-joined) each become an indicator, linked by a
  ``together_with`` context entry (the same file).
* Without a header each line's first token (up to white space, ``,``, ``;`` or ``|``) is the
  value and the rest of the line its description; ``TYPE,VALUE`` lines, leading runs of
  hashes (``sha256;sha1;md5;comment``) and LOKI/THOR ``hash;comment`` lists are understood.
  LOKI/THOR ``filename-iocs`` (``REGEX;SCORE[;FALSE-POSITIVE-REGEX]``) become
  ``filename-regex`` indicators, never literal names.
* Type words are read by :func:`taintline.intel.labels.values_for_label`: ``url_path``,
  ``ip_port``/``ip:port``, ``hostname``, ``filename|sha256``... A report link (a
  ``reference`` column, a URL in a note, a ``link``/``report`` row) is kept as the
  statement's ``reference`` context and is never an indicator.
* Every refused value is counted under its reason class (``ReadResult.rejected``) and kept
  as a Problem with its line number; the other lines still count.

The common case runs column-wise in Arrow (see :mod:`taintline.intel.fastpath`); only the rows
the fast path cannot classify go through Python one by one.
"""

from __future__ import annotations

import csv
import re
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from taintline.errors import Problem
from taintline.intel import fastpath
from taintline.intel.interface import ReadResult
from taintline.intel.labels import (
    AUTO_LABELS,
    HASH_LABELS,
    IP_PORT_LABELS,
    REFERENCE_LABELS,
    TYPE_ALIASES,
    UNMATCHED_LABELS,
    Rejected,
    label_kind,
    values_for_label,
)
from taintline.intel.normalize import (
    INVISIBLE,
    classify,
    normalize_filename_regex,
)
from taintline.limits import IntelLimits
from taintline.model import IndicatorType

NAME = "csv"

_TEXT_EXTENSIONS = frozenset({".csv", ".txt", ".tsv", ".ioc", ".list", ".lst"})

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


def sniff(head: bytes, path: Path) -> bool:
    """Any text that no structured reader claimed: this reader is last in ``READERS``.
    JSON is never read as a list (the ``json`` reader refuses what no JSON reader claimed)."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the head is fine.
        if exc.start < len(head) - 4:
            return path.suffix.lower() in _TEXT_EXTENSIONS
    return True


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


def read(path: Path, limits: IntelLimits) -> ReadResult:
    item = str(path)
    size = path.stat().st_size
    if size > limits.max_text_bytes:
        return ReadResult.failure(
            NAME, item, f"{size} bytes is over the {limits.max_text_bytes}-byte limit for IOC lists"
        )
    result = ReadResult(format=NAME)
    layout: Layout | None = None
    first_line = 1
    # Arrow's compute kernels release the GIL: once the layout is known, chunks are
    # classified on worker threads (both cores), a few at a time, merged in file order.
    pending: deque[Future[ReadResult]] = deque()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="taintline-csv") as pool:
        for text in _chunks(path, limits.max_line_bytes):
            start, first_line = first_line, first_line + text.count("\n")
            if layout is not None:
                pending.append(pool.submit(_chunk, text, start, layout, item, path.name, limits))
                while len(pending) > 2:
                    _merge(result, pending.popleft().result())
                continue
            lines, numbers = _lines(text, start, item, limits, result)
            if len(lines) == 0:
                continue
            layout, skip_first = _layout(lines, path.name)
            if layout.filename_regex:
                return _read_filename_iocs(path, item, limits)
            if skip_first:
                lines, numbers = lines[1:], numbers[1:]
            _classify_lines(result, lines, numbers, layout, item, path.name)
        while pending:
            _merge(result, pending.popleft().result())
    return result


def read_text(text: str, item: str, *, default_source: str, limits: IntelLimits) -> ReadResult:
    """Read one in-memory IOC list (the same rules as :func:`read`)."""
    result = ReadResult(format=NAME)
    text = _clean(text.lstrip("\ufeff"))
    lines, numbers = _lines(text, 1, item, limits, result)
    if len(lines) == 0:
        return result
    layout, skip_first = _layout(lines, item)
    if layout.filename_regex:
        return _filename_iocs(text.splitlines(), item, default_source, ReadResult(format=NAME))
    if skip_first:
        lines, numbers = lines[1:], numbers[1:]
    _classify_lines(result, lines, numbers, layout, item, default_source)
    return result


def _chunk(
    text: str, first_line: int, layout: Layout, item: str, source: str, limits: IntelLimits
) -> ReadResult:
    part = ReadResult(format=NAME)
    lines, numbers = _lines(text, first_line, item, limits, part)
    if len(lines):
        _classify_lines(part, lines, numbers, layout, item, source)
    return part


def _merge(result: ReadResult, part: ReadResult) -> None:
    result.tables.extend(part.tables)
    result.indicators.extend(part.indicators)
    result.problems.extend(part.problems)
    result.warnings.extend(part.warnings)
    for reason, count in part.skipped.items():
        result.skip(reason, count)
    for reason, count in part.rejected.items():
        result.rejected[reason] = result.rejected.get(reason, 0) + count


#: Lines are processed column-wise in chunks of about this many bytes: big enough for Arrow's
#: kernels to run at full speed, small enough that a 1 GB list never needs 10 GB of memory.
CHUNK_BYTES = 8 * 1024 * 1024


def _clean(text: str) -> str:
    """Drop zero-width and bidi marks (one scan of the chunk when there are none; none at
    all for ASCII text, which ``str.isascii`` knows without a scan)."""
    if text.isascii():
        return text
    return INVISIBLE.sub("", text) if INVISIBLE.search(text) else text


def _chunks(path: Path, max_line: int) -> Iterator[str]:
    """The file as text chunks that each end at a line boundary (BOM and invisible marks
    removed).

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
            yield _clean(text)
        if skipping:
            yield placeholder
        elif carry:
            text = carry.decode("utf-8", errors="replace")
            yield _clean(text.lstrip("\ufeff") if first else text)


def _lines(
    text: str, first_line: int, item: str, limits: IntelLimits, result: ReadResult
) -> tuple[pa.Array, pa.Array]:
    """The kept lines of ``text`` (trimmed, no blanks, no comments) and their line numbers."""
    if text.endswith("\n"):
        text = text[:-1]
    raw_lines = pc.list_flatten(pc.split_pattern(pa.array([text], pa.large_string()), "\n"))
    # Only spaces are trimmed on the left: a leading tab is an empty first cell of a TSV row.
    lines = pc.utf8_ltrim(pc.utf8_rtrim_whitespace(raw_lines.cast(pa.string())), " ")
    numbers = pa.array(np.arange(first_line, first_line + len(lines), dtype=np.int64))
    # A comment starts with "#" or "//", after optional white space: the regex runs only
    # when some line starts with white space the trim above left (a tab, \f, \r).
    comment = pc.or_(pc.starts_with(lines, "#"), pc.starts_with(lines, "//"))
    indented = pc.or_(pc.starts_with(lines, "\t"), pc.starts_with(lines, "\r"))
    if pc.any(pc.or_(indented, pc.starts_with(lines, "\f"))).as_py():
        comment = pc.or_(comment, pc.match_substring_regex(lines, r"^\s*(?:#|//)"))
    keep = pc.and_(pc.greater(pc.binary_length(lines), 0), pc.invert(comment))
    too_long = pc.greater(pc.binary_length(lines), limits.max_line_bytes)
    if pc.any(too_long).as_py():
        for number in pc.filter(numbers, too_long).to_pylist():
            result.reject(item, "line too long", "skipped", number)
        keep = pc.and_(keep, pc.invert(too_long))
    return pc.filter(lines, keep), pc.filter(numbers, keep)


# -- layout ----------------------------------------------------------------------------------


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


# -- classification ----------------------------------------------------------------------------


def _classify_lines(
    result: ReadResult,
    lines: pa.Array,
    numbers: pa.Array,
    layout: Layout,
    item: str,
    source: str,
) -> None:
    if layout.delimiter is None:
        _classify_columns(result, _headerless(lines), numbers, item, source)
        return
    columns = _split_columns(lines, layout)
    if len(layout.value_columns) == 1:
        index, word = layout.value_columns[0]
        cols = {role: columns[f"c{i}"] for role, i in layout.roles.items()}
        cols["value"] = columns[f"c{index}"]
        if layout.type_column is not None:
            cols["type"] = columns[f"c{layout.type_column}"]
        elif word is not None:
            cols["type"] = pa.array(np.full(len(lines), word, dtype=object), pa.string())
        _classify_columns(result, cols, numbers, item, source)
        return
    _classify_rows(result, columns, numbers, layout, item, source)


def _split_columns(lines: pa.Array, layout: Layout) -> dict[str, pa.Array]:
    """Column ``c<i>`` for every column the layout uses (null where a short row ends)."""
    delimiter = layout.delimiter or ","
    used: set[int] = {*layout.roles.values(), *(i for i, _ in layout.value_columns)}
    if layout.type_column is not None:
        used.add(layout.type_column)
    wanted = sorted(used)
    width = max(wanted) + 1
    out: dict[str, pa.Array] = {}
    if pc.any(pc.match_substring(lines, '"')).as_py():
        # Quoted fields (maybe with delimiters inside): the csv module parses these correctly.
        rows = list(csv.reader(lines.to_pylist(), delimiter=delimiter))
        for index in wanted:
            out[f"c{index}"] = pa.array(
                [(r[index].strip() or None) if index < len(r) else None for r in rows], pa.string()
            )
        return out
    padded = pc.binary_join_element_wise(lines, pa.scalar(delimiter * width), "")
    parts = pc.split_pattern(padded, delimiter)
    for index in wanted:
        column = pc.utf8_trim_whitespace(pc.list_element(parts, index))
        out[f"c{index}"] = pc.if_else(pc.equal(pc.binary_length(column), 0), None, column)
    return out


_TOKEN = r"[^\s,;|]+"  # noqa: S105 - a regex, not a password
_SEP = r"[\s,;|]+"
_HASH_TOKEN = r"[0-9A-Fa-f]{32}(?:[0-9A-Fa-f]{8}(?:[0-9A-Fa-f]{24})?)?"  # noqa: S105


def _headerless(lines: pa.Array) -> dict[str, pa.Array]:
    lines = pc.utf8_ltrim_whitespace(lines)
    parts = pc.extract_regex(
        lines, rf"^(?P<a>{_TOKEN})(?:{_SEP}(?P<b>{_TOKEN}))?(?:{_SEP}(?P<rest>.*))?$"
    )
    first = pc.struct_field(parts, "a")
    second = pc.struct_field(parts, "b")
    rest_all = pc.struct_field(pc.extract_regex(lines, rf"^{_TOKEN}{_SEP}(?P<rest>.*)$"), "rest")
    rest_all = pc.utf8_trim(rest_all, "#/ \t")
    typed = pc.and_(
        pc.is_in(pc.utf8_lower(first), value_set=pa.array(_LABEL_WORDS)),
        pc.is_valid(second),
    )
    typed = pc.fill_null(typed, False)
    rest_after_two = pc.utf8_trim(pc.struct_field(parts, "rest"), "#/ \t")
    value = pc.if_else(typed, second, first)
    hint = pc.if_else(typed, first, pa.scalar(None, pa.string()))
    description = pc.if_else(typed, rest_after_two, rest_all)
    # A leading run of hashes (``sha256;sha1;md5;comment``): one file, several values.
    runs = pc.extract_regex(
        lines, rf"^(?P<v>{_HASH_TOKEN}(?:{_SEP}{_HASH_TOKEN})+)(?:{_SEP}(?P<rest>.*))?$"
    )
    run = pc.struct_field(runs, "v")
    is_run = pc.fill_null(pc.and_(pc.invert(typed), pc.is_valid(run)), False)
    if pc.any(is_run).as_py():
        value = pc.if_else(is_run, run, value)
        description = pc.if_else(
            is_run, pc.utf8_trim(pc.struct_field(runs, "rest"), "#/ \t"), description
        )
    description = pc.if_else(pc.equal(pc.binary_length(description), 0), None, description)
    return {"value": value, "type": hint, "description": description}


def _hint_types(hints: pa.Array) -> pa.Array:
    """Stated type words mapped to our plain types (null for no word or any other word:
    those rows take the per-value path)."""
    unique = [u for u in pc.unique(pc.utf8_lower(hints)).to_pylist() if u is not None]
    mapping = {u: TYPE_ALIASES.get(u.strip()) for u in unique}
    keys = pa.array(list(mapping), pa.string())
    mapped = pa.array([str(t) if t else None for t in mapping.values()], pa.string())
    index = pc.index_in(pc.utf8_lower(hints), value_set=keys)
    return pc.take(mapped, index)


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
    plain = pa.array(np.ones(n, dtype=bool))
    if stated is not None:
        hints = _hint_types(stated)
        # A stated word that is not one plain type (``ip:port``, ``hash``, ``mutex``) sends
        # its row the per-value way.
        plain = pc.or_(pc.is_null(stated), pc.is_valid(hints))
    classified = fastpath.classify_array(value)
    fast = pc.and_(fastpath.agree_with_hint(classified.types, hints), plain)
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
    all_fast = pc.all(fast).as_py()
    table: dict[str, Any] = {
        "type": classified.types if all_fast else pc.filter(classified.types, fast),
        "value": classified.values if all_fast else pc.filter(classified.values, fast),
        "source": sources if all_fast else pc.filter(sources, fast),
    }
    table.update(_extra_columns(extra, None if all_fast else fast))
    if len(table["type"]):
        result.tables.append(pa.table(table))
    if all_fast:
        return

    slow = pc.invert(fast)
    slow_value = pc.filter(value, slow).to_pylist()
    slow_stated = pc.filter(stated, slow).to_pylist() if stated is not None else None
    slow_line = pc.filter(numbers, slow).to_pylist()
    slow_source = pc.filter(sources, slow).to_pylist()
    slow_extra = {role: pc.filter(col, slow).to_pylist() for role, col in extra.items()}
    out_rows: dict[str, list[Any]] = {"type": [], "value": [], "source": [], "context": []}
    out_extra: dict[str, list[Any]] = {role: [] for role in slow_extra if role != "reference"}
    for i, raw in enumerate(slow_value):
        line = slow_line[i]
        word = slow_stated[i] if slow_stated is not None else None
        if raw is None:
            result.reject(item, "no value on this line", "", line)
            continue
        try:
            found = values_for_label(word, raw)
        except Rejected as exc:
            result.reject(item, exc.reason, exc.detail, line)
            continue
        reference = slow_extra["reference"][i] if "reference" in slow_extra else None
        if reference is None and "description" in slow_extra:
            reference = _url_in(slow_extra["description"][i])
        for kind, norm, context in found:
            if context.get("retyped_from"):
                result.warn(item, f"{norm} stated as a domain is an IP address: re-typed", line)
            if reference:
                context = {**context, "reference": reference}
            out_rows["type"].append(str(kind))
            out_rows["value"].append(norm)
            out_rows["source"].append(slow_source[i])
            out_rows["context"].append(orjson.dumps(context).decode() if context else None)
            for role, kept in out_extra.items():
                kept.append(slow_extra[role][i])
    _append_rows(result, out_rows, out_extra)


def _append_rows(
    result: ReadResult, out_rows: dict[str, list[Any]], out_extra: dict[str, list[Any]]
) -> None:
    if not out_rows["type"]:
        return
    slow_table: dict[str, Any] = {k: pa.array(v, pa.string()) for k, v in out_rows.items()}
    extra_arrays = {role: pa.array(v, pa.string()) for role, v in out_extra.items()}
    slow_table.update(_extra_columns(extra_arrays, None, with_reference=False))
    result.tables.append(pa.table(slow_table))


def _classify_rows(
    result: ReadResult,
    columns: dict[str, pa.Array],
    numbers: pa.Array,
    layout: Layout,
    item: str,
    source: str,
) -> None:
    """Files with several value columns (``SHA256,SHA1,MD5,Filename``): row by row, the
    values of one row linked as one file."""
    cols = {name: col.to_pylist() for name, col in columns.items()}
    line_numbers = numbers.to_pylist()
    roles = layout.roles
    out_rows: dict[str, list[Any]] = {"type": [], "value": [], "source": [], "context": []}
    extra_roles = [r for r in ("description", "campaign", "confidence", "labels") if r in roles]
    out_extra: dict[str, list[Any]] = {role: [] for role in extra_roles}
    for row, line in enumerate(line_numbers):
        found: list[tuple[IndicatorType, str, dict[str, Any]]] = []
        for index, word in layout.value_columns:
            raw = cols[f"c{index}"][row]
            if raw is None:
                continue
            if layout.type_column is not None and word is None:
                word = cols[f"c{layout.type_column}"][row]
            try:
                found.extend(values_for_label(word, raw))
            except Rejected as exc:
                result.reject(item, exc.reason, exc.detail, line)
        if not found:
            if all(cols[f"c{i}"][row] is None for i, _ in layout.value_columns):
                result.reject(item, "no value on this line", "", line)
            continue
        together = [f"{t}:{v}" for t, v, _ in found]
        reference = cols[f"c{roles['reference']}"][row] if "reference" in roles else None
        if reference is None and "description" in roles:
            reference = _url_in(cols[f"c{roles['description']}"][row])
        for kind, norm, context in found:
            context = dict(context)
            if len(found) > 1:
                context["together_with"] = together
            if reference:
                context["reference"] = reference
            out_rows["type"].append(str(kind))
            out_rows["value"].append(norm)
            out_rows["source"].append(
                cols[f"c{roles['source']}"][row] if "source" in roles else None
            )
            out_rows["context"].append(orjson.dumps(context).decode() if context else None)
            for role in extra_roles:
                out_extra[role].append(cols[f"c{roles[role]}"][row])
    out_rows["source"] = [s or source for s in out_rows["source"]]
    _append_rows(result, out_rows, out_extra)


_URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)


def _url_in(text: str | None) -> str | None:
    """A report link written in a note (kept as the statement's reference)."""
    if not text or "http" not in text.lower():
        return None
    match = _URL_IN_TEXT.search(text)
    return match.group(0).rstrip(".,;)") if match else None


_DIGITS = r"^[0-9]{1,3}$"


def _extra_columns(
    extra: dict[str, pa.Array], mask: pa.Array | None, *, with_reference: bool = True
) -> dict[str, pa.Array]:
    def pick(column: pa.Array) -> pa.Array:
        return column if mask is None else pc.filter(column, mask)

    out: dict[str, pa.Array] = {}
    if "description" in extra:
        out["description"] = pick(extra["description"])
    if "campaign" in extra:
        out["campaign"] = pick(extra["campaign"])
    if "confidence" in extra:
        conf = pick(extra["confidence"])
        ok = pc.fill_null(pc.match_substring_regex(conf, _DIGITS), False)
        out["confidence"] = pc.cast(pc.if_else(ok, conf, None), pa.int32())
    if "labels" in extra:
        labels = pick(extra["labels"])
        out["labels"] = pc.split_pattern_regex(pc.fill_null(labels, ""), r"\s*[;|]\s*")
        out["labels"] = pc.if_else(pc.is_null(labels), None, out["labels"])
    if not with_reference:
        return out
    refs: list[str | None] | None = None
    if "reference" in extra:
        refs = pick(extra["reference"]).to_pylist()
    if (
        "description" in extra
        and pc.any(pc.match_substring(out["description"], "http", ignore_case=True)).as_py()
    ):
        notes = out["description"].to_pylist()
        refs = [
            (refs[i] if refs is not None and refs[i] else None) or _url_in(note)
            for i, note in enumerate(notes)
        ]
    if refs is not None:
        out["context"] = pa.array(
            [orjson.dumps({"reference": r}).decode() if r else None for r in refs], pa.string()
        )
    return out


# -- LOKI / THOR filename IOCs -----------------------------------------------------------------

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


def _read_filename_iocs(path: Path, item: str, limits: IntelLimits) -> ReadResult:
    text = _clean(path.read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff"))
    result = ReadResult(format=NAME)
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if len(line) > limits.max_line_bytes:
            result.reject(item, "line too long", "skipped", number)
            lines[number - 1] = ""
    return _filename_iocs(lines, item, path.name, result)


def _filename_iocs(lines: list[str], item: str, source: str, result: ReadResult) -> ReadResult:
    """``REGEX;SCORE[;FP-REGEX]`` lines; the comment line above a block is its description
    (as LOKI reads these files)."""
    rows: dict[str, list[Any]] = {"type": [], "value": [], "source": [], "context": []}
    descriptions: list[str | None] = []
    comment: str | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            comment = line.lstrip("#").strip() or comment
            continue
        match = _LOKI_LINE.match(line)
        if match is None:
            result.reject(item, "not a REGEX;SCORE line", line[:80], number)
            continue
        try:
            regex = normalize_filename_regex(match.group("regex"))
            fp = match.group("fp")
            if fp:
                normalize_filename_regex(fp)
        except ValueError as exc:
            result.reject(item, "regex RE2 cannot compile", str(exc), number)
            continue
        context: dict[str, Any] = {"score": int(match.group("score"))}
        if fp:
            context["false_positive_regex"] = fp
        reference = _url_in(comment)
        if reference:
            context["reference"] = reference
        rows["type"].append(str(IndicatorType.FILENAME_REGEX))
        rows["value"].append(regex)
        rows["source"].append(source)
        rows["context"].append(orjson.dumps(context).decode())
        descriptions.append(comment)
    if rows["type"]:
        _append_rows(result, rows, {"description": descriptions})
    return result


__all__ = ["NAME", "Problem", "read", "read_text", "sniff"]
