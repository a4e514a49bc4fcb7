"""Log readers, one module per format, tried in the order of :data:`READERS`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from taintline.errors import Problem
from taintline.hunt.model import Field, LogSource
from taintline.hunt.readers import csvlog, jsonlog, zeek_tsv
from taintline.hunt.readers.interface import LogReader
from taintline.hunt.readers.textio import head_lines

#: Sniffed in this order: the Zeek header is unambiguous, JSON starts with "{", CSV is last.
READERS: tuple[LogReader, ...] = (zeek_tsv, jsonlog, csvlog)


@dataclass(slots=True)
class Discovery:
    sources: list[LogSource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _expand(paths: Iterable[Path]) -> Iterable[Path]:
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not child.name.startswith("."):
                    yield child
        else:
            yield path


def describe_file(path: Path, field_map: Mapping[Field, str]) -> LogSource | Problem:
    try:
        head = head_lines(path)
    except OSError as exc:
        return Problem(str(path), f"cannot read: {exc.strerror or exc}")
    if not any(line.strip() for line in head):
        return Problem(str(path), "empty file")
    if any(b"\0" in line for line in head[:5]):
        return Problem(str(path), "binary file, not a log")
    for reader in READERS:
        if reader.sniff(head, path):
            return reader.describe(path, head, field_map)
    return Problem(str(path), "not a log format taintline reads (Zeek TSV/JSON, JSON Lines, CSV)")


def discover(paths: Iterable[Path], field_map: Mapping[Field, str] | None = None) -> Discovery:
    """Describe every file under ``paths`` (folders are walked); unreadable ones are Problems."""
    found = Discovery()
    for path in _expand(paths):
        if not path.exists():
            found.problems.append(Problem(str(path), "no such file or folder"))
            continue
        result = describe_file(path, field_map or {})
        if isinstance(result, Problem):
            found.problems.append(result)
        else:
            found.sources.append(result)
    return found


__all__ = ["READERS", "Discovery", "describe_file", "discover"]
