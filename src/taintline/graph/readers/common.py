"""Helpers every graph reader shares: keys, times, CSV rows."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from taintline.errors import Problem
from taintline.model import NodeKind, NodeRef, parse_time

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def norm(text: str) -> str:
    return text.strip().lower()


def host_ref(name: str) -> NodeRef:
    return NodeRef(NodeKind.HOST, norm(name))


def org_ref(name: str) -> NodeRef:
    return NodeRef(NodeKind.ORG, norm(name))


def software_ref(name: str, version: str | None) -> NodeRef:
    key = norm(name)
    if version and version.strip():
        key = f"{key}@{version.strip().lower()}"
    return NodeRef(NodeKind.SOFTWARE, key)


def release_ref(text: str, version: str | None = None) -> NodeRef:
    key = norm(text)
    if version and version.strip() and "@" not in key:
        key = f"{key}@{version.strip().lower()}"
    return NodeRef(NodeKind.RELEASE, key)


def artifact_ref(sha256: str) -> NodeRef:
    return NodeRef(NodeKind.ARTIFACT, norm(sha256).removeprefix("sha256:"))


def is_sha256(text: str) -> bool:
    return bool(_HEX64.match(text.strip().removeprefix("sha256:")))


def parse_when(value: object) -> datetime | None:
    """ISO 8601, a date, Unix seconds (int/float/str), or osquery's ``YYYYMMDD``; blank -> None.

    Raises ``ValueError`` on anything else so the caller reports the record.
    """
    try:
        return _parse_when(value)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"time out of range: {value!r:.40}") from exc


def _parse_when(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 0:
            return None
        return datetime.fromtimestamp(float(value), UTC)
    text = str(value).strip()
    if not text or text in {"-", "0", "null", "None"}:
        return None
    if re.fullmatch(r"\d{8}", text):
        return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)
    if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), UTC)
    return parse_time(text.replace(" ", "T", 1) if re.match(r"\d{4}-\d\d-\d\d \d", text) else text)


def first_line(head: bytes) -> str:
    text = head.lstrip(b"\xef\xbb\xbf").decode("utf-8", "replace")
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def csv_header(head: bytes) -> set[str]:
    line = first_line(head)
    if line.startswith(("{", "[", "#", "<")):
        return set()
    return {c.strip().strip('"').lower() for c in line.split(",")}


#: Key of the one row :func:`csv_rows` yields for a malformed line (then it stops).
CSV_ERROR = "\x00error"


def csv_rows(data: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row with lower-case keys) for every data row."""
    text = data.decode("utf-8-sig", "replace")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over the csv module's size limit
            yield reader.line_num + 1, {CSV_ERROR: f"malformed CSV ({exc}); rest of file skipped"}
            return
        clean = {
            (k or "").strip().lower(): (v or "").strip() if isinstance(v, str) else ""
            for k, v in row.items()
        }
        yield reader.line_num, clean


def pick(row: Mapping[str, object], *names: str) -> str | None:
    for name in names:
        value = row.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def json_records(data: bytes) -> Iterator[tuple[int, object]]:
    """Records of a JSON array/object file or a JSON Lines file: (record number, value).

    A bad JSON line yields ``(line, ValueError)`` so the reader can report it and go on.
    """
    stripped = data.lstrip()
    if stripped.startswith(b"["):
        try:
            values = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            yield 1, ValueError(f"bad JSON: {exc}")
            return
        yield from enumerate(values if isinstance(values, list) else [values], start=1)
        return
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, ValueError(f"bad JSON: {exc}")


def json_objects(
    path: Path, records: Iterable[tuple[int, object]], problems: list[Problem]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The objects among :func:`json_records`' records; bad JSON and records that are not
    objects go to ``problems`` with their record number."""
    for number, record in records:
        if isinstance(record, ValueError):
            problems.append(Problem(str(path), str(record), number))
        elif not isinstance(record, dict):
            problems.append(Problem(str(path), "record is not an object", number))
        else:
            yield number, record


def first_json(head: bytes) -> object | None:
    """The first JSON record in ``head`` (an array's first element), or None."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"["):
        # the head may be cut: find the first complete object
        depth = 0
        start = None
        for i, ch in enumerate(text[1:], start=1):
            if ch == ord("{"):
                if depth == 0:
                    start = i
                depth += 1
            elif ch == ord("}"):
                depth -= 1
                if depth == 0 and start is not None:
                    try:
                        value: object = orjson.loads(text[start : i + 1])
                        return value
                    except orjson.JSONDecodeError:
                        return None
        return None
    if text.startswith(b"{"):
        line = text.split(b"\n", 1)[0]
        try:
            first: object = orjson.loads(line)
            return first
        except orjson.JSONDecodeError:
            try:
                whole: object = orjson.loads(text)
                return whole
            except orjson.JSONDecodeError:
                return {"_partial": text[:4096].decode("utf-8", "replace")}
    return None
