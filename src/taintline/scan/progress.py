"""The scan's progress arithmetic: files, members and bytes per second, and the time left.

:class:`ScanMeter` is what :func:`taintline.scan.engine.scan_paths` reports to (its
``ScanProgress``): the engine calls :meth:`ScanMeter.start` with the walk's totals, then
:meth:`ScanMeter.advance` for every batch a worker sends back. :meth:`ScanMeter.reading` turns
that into rates and an estimated time left, and :func:`describe` into one line of text; the CLI
draws it on a terminal only (pipes and CI stay quiet).

Rates are averages since the scan started, not over a recent window: results arrive a batch at
a time (a large jar is one result after many seconds), so a short window would swing between
zero and bursts. The time left is estimated from the bytes of top-level files, the only total
known in advance (how many members the containers hold is only known once they are opened):
remaining bytes over bytes per second so far. The engine sends the largest files first, and a
tree of many small files costs more per byte than one of a few large ones, so the estimate
tends to grow near the end; it is an estimate, shown as one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reading:
    """One look at a running scan."""

    files: int
    total_files: int
    members: int
    bytes_done: int
    total_bytes: int
    elapsed: float
    files_per_s: float
    members_per_s: float
    bytes_per_s: float
    #: Seconds left, from the bytes of top-level files; ``None`` until a rate is known.
    eta_s: float | None


class ScanMeter:
    """Counts what the workers sent back; :meth:`reading` gives rates and the time left.

    ``clock`` returns seconds (monotonic); tests pass their own.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.total_files = 0
        self.total_bytes = 0
        self.files = 0
        self.members = 0
        self.bytes_done = 0
        self.started: float | None = None
        #: when the last file came back (the rates stop there)
        self.finished: float | None = None

    def start(self, total_files: int, total_bytes: int) -> None:
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.started = self.clock()

    def advance(self, files: int, members: int, nbytes: int) -> None:
        self.files += files
        self.members += members
        self.bytes_done += nbytes
        if self.files >= self.total_files:
            self.finished = self.clock()

    def reading(self) -> Reading:
        now = self.finished if self.finished is not None else self.clock()
        elapsed = max(now - self.started, 0.0) if self.started is not None else 0.0

        def rate(count: int) -> float:
            return count / elapsed if elapsed > 0 else 0.0

        bytes_per_s = rate(self.bytes_done)
        left = max(self.total_bytes - self.bytes_done, 0)
        eta: float | None
        if self.files >= self.total_files and left == 0:
            eta = 0.0
        elif bytes_per_s > 0:
            eta = left / bytes_per_s
        else:
            eta = None
        return Reading(
            files=self.files,
            total_files=self.total_files,
            members=self.members,
            bytes_done=self.bytes_done,
            total_bytes=self.total_bytes,
            elapsed=elapsed,
            files_per_s=rate(self.files),
            members_per_s=rate(self.members),
            bytes_per_s=bytes_per_s,
            eta_s=eta,
        )


def _size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:.0f}B"


def _clock(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def describe(r: Reading) -> str:
    """``120/15,000 files 40/s | 9,000 members 3,000/s | 31.0MB/1.1GB 10.3MB/s | ETA 0:01:44``
    (``ETA ?`` until a rate is known)."""
    eta = "?" if r.eta_s is None else _clock(r.eta_s)
    return (
        f"{r.files:,}/{r.total_files:,} files {r.files_per_s:,.0f}/s"
        f" | {r.members:,} members {r.members_per_s:,.0f}/s"
        f" | {_size(r.bytes_done)}/{_size(r.total_bytes)} {_size(r.bytes_per_s)}/s"
        f" | ETA {eta}"
    )
