"""Zeek's tab-separated logs: ``#separator``/``#fields``/``#types`` header, ``-`` for unset and
``(empty)`` for empty values, gzip-compressed and rotated (``dns.2023-03-29-10-00-00.log.gz``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from taintline.errors import Problem
from taintline.hunt.model import Field, LogFormat, LogSource
from taintline.hunt.readers.fields import (
    ZEEK_FIELDS,
    cert_fields,
    kind_from_fields,
    kind_from_path,
    pick_columns,
)
from taintline.hunt.readers.textio import compression_of_path

FORMAT = LogFormat.ZEEK_TSV


def sniff(head: list[bytes], path: Path) -> bool:
    return bool(head) and head[0].startswith(b"#separator")


def _unescape(value: str) -> str:
    """Zeek writes the separator as ``\\x09``; hand-made and converted logs write ``\\t``
    (or a real tab). Decode such backslash escapes; anything else stays as written."""
    if "\\" not in value:
        return value
    try:
        return value.encode("ascii", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        return value


def describe(path: Path, head: list[bytes], field_map: Mapping[Field, str]) -> LogSource | Problem:
    meta: dict[str, str] = {}
    separator = "\t"
    fields: list[str] = []
    for raw in head:
        if not raw.startswith(b"#"):
            break
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith("#separator"):
            declared = line[len("#separator") :].lstrip(" ")
            separator = _unescape(declared) if declared else "\t"
            continue
        key, _, value = line[1:].partition(separator)
        if key != "fields" and line.startswith("#fields\t") and separator != "\t":
            # The header declared a separator its own lines do not use: trust the lines.
            separator = "\t"
            key, _, value = line[1:].partition(separator)
        if key == "fields":
            fields = value.split(separator)
        else:
            meta[key] = value
    if not fields:
        return Problem(str(path), "Zeek log without a #fields header line")
    if len(separator) != 1:
        return Problem(str(path), f"unsupported Zeek separator {separator!r}")
    kind = kind_from_path(meta.get("path")) or kind_from_path(path.name.split(".", 1)[0])
    if kind is None:
        kind = kind_from_fields(fields)
    chosen = cert_fields(pick_columns(fields, ZEEK_FIELDS, field_map), kind)
    return LogSource(
        path=str(path),
        format=FORMAT,
        kind=kind,
        fields={f: (c,) for f, c in chosen.items()},
        columns=tuple(fields),
        delimiter=separator,
        null_values=(meta.get("unset_field", "-"), meta.get("empty_field", "(empty)")),
        set_separator=_unescape(meta.get("set_separator", ",")) or ",",
        compression=compression_of_path(path),
    )
