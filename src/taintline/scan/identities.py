"""What the case remembers of the files on disk (``scan_identities``), read once per scan.

The walk gives each file's identity (size, mtime, ctime, device, inode; see
:mod:`taintline.scan.cache` for why ctime is part of it). One query reads the identities this
host's case remembers under the scanned inputs, and they are compared here: the walk's tasks
need not go to DuckDB as a table, so a re-scan that reads nothing never converts anything to
Arrow (pyarrow is not even imported, :mod:`taintline.lazy`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from taintline.case import Case
from taintline.scan.walk import FileTask
from taintline.terminal import storable


def under(root: str) -> str:
    """The prefix of every path inside the folder ``root`` (a real path)."""
    return root if root.endswith(os.sep) else root + os.sep


class _Known(NamedTuple):
    """What the case remembers of a path on this host."""

    size: int
    mtime_ns: int
    ctime_ns: int
    dev: int
    ino: int
    sha256: str
    display: str | None
    run_id: str | None
    analysis_key: str | None


class Identities:
    """The identities the case remembers on ``host`` under the scanned inputs, read once per
    scan (one query, compared here: the walk's tasks need not go to DuckDB, so a re-scan that
    reads nothing never builds an Arrow table)."""

    def __init__(self, case: Case, host: str, paths: Sequence[str | Path]) -> None:
        self.case = case
        self.host = host
        self.roots: list[str] = []
        for p in paths:
            with contextlib.suppress(OSError):
                self.roots.append(storable(os.path.realpath(p, strict=True)))
        self._rows: dict[str, _Known] | None = None
        self._known: tuple[int, dict[int, _Known]] | None = None

    def under_roots(self, roots: Sequence[str]) -> tuple[str, list[str]]:
        """A condition on ``i.path`` (and its parameters): the path is one of ``roots`` or
        lies under one."""
        if not roots:
            return "FALSE", []
        params: list[str] = []
        for root in roots:
            params += [root, under(root)]
        condition = " OR ".join(["(i.path = ? OR starts_with(i.path, ?))"] * len(roots))
        return f"({condition})", params

    def exist(self) -> bool:
        """Does the case remember any file under the inputs (without reading them all)?"""
        if self._rows is not None:
            return bool(self._rows)
        condition, params = self.under_roots(self.roots)
        sql = f"SELECT 1 FROM scan_identities i WHERE i.host = ? AND {condition} LIMIT 1"  # noqa: S608
        return self.case.con.execute(sql, [self.host, *params]).fetchone() is not None

    def count(self) -> int:
        """How many files the case remembers under the inputs."""
        if self._rows is not None:
            return len(self._rows)
        condition, params = self.under_roots(self.roots)
        sql = f"SELECT count(*) FROM scan_identities i WHERE i.host = ? AND {condition}"  # noqa: S608
        row = self.case.con.execute(sql, [self.host, *params]).fetchone()
        return int(row[0]) if row else 0

    def rows(self) -> dict[str, _Known]:
        if self._rows is None:
            condition, params = self.under_roots(self.roots)
            sql = f"""SELECT i.path, i.size, i.mtime_ns, i.ctime_ns, i.dev, i.ino, i.sha256,
                i.display, i.run_id, i.analysis_key FROM scan_identities i
                WHERE i.host = ? AND {condition}"""  # noqa: S608  (placeholders only)
            found = self.case.con.execute(sql, [self.host, *params]).fetchall()
            self._rows = {str(r[0]): _Known(*r[1:]) for r in found}
        return self._rows

    def known(self, tasks: Sequence[FileTask]) -> dict[int, _Known]:
        """Task index -> what the case remembers of the files whose identity (size, mtime,
        ctime, device, inode) is unchanged since they were last read on this host."""
        if self._known is not None and self._known[0] == len(tasks):
            return self._known[1]
        rows = self.rows()
        out: dict[int, _Known] = {}
        if rows:
            for i, t in enumerate(tasks):
                r = rows.get(storable(t.path))
                if (
                    r is not None
                    and r.size == t.size
                    and r.mtime_ns == t.mtime_ns
                    and r.ctime_ns == t.ctime_ns
                    and r.dev == t.dev
                    and r.ino == t.ino
                ):
                    out[i] = r
        self._known = (len(tasks), out)
        return out


def known_identities(identities: Identities, tasks: Sequence[FileTask]) -> dict[int, str]:
    """Task index -> SHA-256 of the files whose identity is unchanged since they were last
    read (:meth:`ScanCache.unchanged` also checks the results)."""
    return {i: r.sha256 for i, r in identities.known(tasks).items()}
