"""The one small interface every log reader speaks.

A reader is a module with three names, listed in the explicit tuple ``readers.READERS``:

* ``FORMAT``: the :class:`~taintline.hunt.model.LogFormat` it reads;
* ``sniff(head: list[bytes], path: Path) -> bool``: whether the file is in its format, from
  its first lines;
* ``describe(path, head, field_map) -> LogSource | Problem``: the file's columns, its log
  kind and which columns carry the common fields.

Readers never read the data itself: the engines (DuckDB, Spark) read it straight from the
files with the layout a :class:`~taintline.hunt.model.LogSource` gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from taintline.errors import Problem
from taintline.hunt.model import Field, LogFormat, LogSource


class LogReader(Protocol):
    FORMAT: LogFormat

    def sniff(self, head: list[bytes], path: Path) -> bool: ...

    def describe(
        self, path: Path, head: list[bytes], field_map: Mapping[Field, str]
    ) -> LogSource | Problem: ...
