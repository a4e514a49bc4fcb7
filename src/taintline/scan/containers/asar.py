"""Electron ``app.asar`` archives."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

import orjson

from taintline.kinds import error_finding
from taintline.limits import MiB
from taintline.model import Finding
from taintline.scan.containers.interface import (
    SEP,
    Budget,
    ContainerKind,
    Member,
    Produced,
    Ranges,
    unsafe_member_name,
)
from taintline.scan.magic import FileType

NAME = "asar"
OPENS = {FileType.ASAR: ContainerKind.ASAR}

# No maintained Python reader for asar exists (the format lives in @electron/asar, JavaScript),
# so it is parsed here: a Chromium Pickle holding a JSON index, then the files' bytes.
_ASAR_MAX_HEADER = 64 * MiB


def asar_index(data: bytes) -> tuple[dict[str, object], int]:
    """The JSON index of an asar archive and where the files' data starts."""
    if len(data) < 16:
        raise EOFError("asar header truncated")
    pickle_size, header_size, _payload, json_len = struct.unpack_from("<IIII", data, 0)
    if pickle_size != 4 or json_len > header_size or json_len > _ASAR_MAX_HEADER:
        raise ValueError("bad asar header")
    if 16 + json_len > len(data):
        raise EOFError("asar index truncated")
    index = orjson.loads(data[16 : 16 + json_len])
    if not isinstance(index, dict) or not isinstance(index.get("files"), dict):
        raise ValueError("asar index has no files")
    return index, 8 + header_size


def _entries(index: dict[str, object], subject: str) -> Iterator[Finding | tuple[str, int, int]]:
    """The packed files of an asar index: (path, offset from the data start, size), or a
    finding for an entry that cannot be read (unpacked files and links are skipped)."""
    # iterative walk; nesting in the index is bounded by the index size we accepted
    stack: list[tuple[str, dict[str, object]]] = [("", index)]
    while stack:
        prefix, node = stack.pop()
        files = node.get("files")
        if not isinstance(files, dict):
            continue
        for entry_name in sorted(files, reverse=True):
            entry = files[entry_name]
            if not isinstance(entry, dict) or not isinstance(entry_name, str):
                continue
            path = f"{prefix}{entry_name}"
            if "/" in entry_name or unsafe_member_name(path) or entry_name in ("", ".", ".."):
                yield error_finding(
                    "error.path-traversal",
                    f"{subject}{SEP}{path}",
                    "asar entry name escapes the archive (path traversal); not extracted",
                    member=path,
                )
                continue
            if "files" in entry:
                stack.append((path + "/", entry))
                continue
            if "link" in entry or entry.get("unpacked"):
                # unpacked files live in app.asar.unpacked/ beside the archive (scanned as
                # files on disk); links are not followed
                continue
            try:
                size = int(entry.get("size", 0))  # type: ignore[call-overload]
                offset = int(entry.get("offset", 0))  # type: ignore[call-overload]
            except (TypeError, ValueError):
                yield error_finding(
                    "error.malformed", f"{subject}{SEP}{path}", "asar entry with bad size/offset"
                )
                continue
            yield path, offset, size


def members(data: bytes, subject: str, name: str, budget: Budget) -> Iterator[Produced]:
    index, base = asar_index(data)
    limits = budget.limits
    for found in _entries(index, subject):
        if isinstance(found, Finding):
            yield found
            continue
        path, offset, size = found
        budget.take_file()
        where = f"{subject}{SEP}{path}"
        if size < 0 or offset < 0 or base + offset + size > len(data):
            yield error_finding(
                "error.truncated-archive", where, "asar entry points past the end of the archive"
            )
            continue
        if size > limits.max_file_bytes:
            yield error_finding(
                "error.too-large", where, "member larger than --max-file-size; skipped"
            )
            continue
        budget.take_bytes(size)
        yield Member(path, data[base + offset : base + offset + size])


def file_members(fd: int, file_size: int, subject: str) -> Iterator[Finding | tuple[str, Ranges]]:
    """The packed files of an asar archive too big to read whole (``fd``): each member's name
    and where its bytes lie in the file, to be hashed by streaming."""
    head = os.pread(fd, 16, 0)
    if len(head) < 16:
        raise EOFError("asar header truncated")
    _pickle, header_size, _payload, json_len = struct.unpack_from("<IIII", head, 0)
    if json_len > header_size or json_len > _ASAR_MAX_HEADER:
        raise ValueError("bad asar header")
    index, base = asar_index(head + os.pread(fd, json_len, 16))
    for found in _entries(index, subject):
        if isinstance(found, Finding):
            yield found
            continue
        path, offset, size = found
        if size < 0 or offset < 0 or base + offset + size > file_size:
            yield error_finding(
                "error.truncated-archive",
                f"{subject}{SEP}{path}",
                "asar entry points past the end of the archive",
            )
            continue
        yield path, [(base + offset, size)]
