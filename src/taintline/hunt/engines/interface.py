"""The engine contract: read the described log files, match them against the indicator
tables, and give back :class:`~taintline.hunt.model.HitGroup` rows and per-file counts.

Both engines implement the same rules (documented in ``docs/hunt.md``) and are tested to give
identical sightings on the same data:

* a record is a candidate when one of its fields can match (cheap pre-filter);
* domains match exactly or as a parent (``a.b.evil.com`` matches ``evil.com``), compared
  lower-case without a trailing dot, over DNS queries, HTTP Host, TLS SNI, certificate
  subject CN and SAN names, and the host of full URLs;
* URLs match on ``host/path?query`` with and without the query string, or under a prefix;
* IPs match either side of a connection; CIDR networks likewise;
* file hashes match Zeek ``files.log`` (and mapped) md5/sha1/sha256 columns;
* the host is the explicit host field, else the originator, or the responder when the
  indicator matched the originator;
* ``--since``/``--until`` keep records whose time falls inside (records without a readable
  time are then left out).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from taintline.hunt.indicators import IndicatorSet
from taintline.hunt.model import FileStats, HitGroup, HuntOptions, LogSource
from taintline.model import utc

Progress = Callable[[LogSource, FileStats], None]


def time_window_sql(opts: HuntOptions) -> str:
    """The SQL condition on the hit rows' ``us`` column (microseconds UTC) for
    ``--since``/``--until``; the same text for DuckDB and Spark SQL."""
    where = []
    if opts.since is not None:
        where.append(f"us >= {int(utc(opts.since).timestamp() * 1_000_000)}")
    if opts.until is not None:
        where.append(f"us <= {int(utc(opts.until).timestamp() * 1_000_000)}")
    return " AND ".join(where) or "true"


def count_records(stats: FileStats, header_lines: int) -> None:
    """A file's records: its lines less blank, comment, garbage and header lines."""
    stats.records = max(
        0, stats.lines - stats.blank - stats.comments - stats.garbage - header_lines
    )


@dataclass(slots=True)
class EngineResult:
    groups: list[HitGroup] = field(default_factory=list)
    stats: list[FileStats] = field(default_factory=list)


class Engine(Protocol):
    NAME: str

    def run(
        self,
        sources: Sequence[LogSource],
        indicators: IndicatorSet,
        options: HuntOptions,
        progress: Progress | None = None,
    ) -> EngineResult: ...
