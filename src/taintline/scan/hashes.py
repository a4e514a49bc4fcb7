"""MD5, SHA-1 and SHA-256 of each buffer, and matching against hash indicators.

hashlib uses OpenSSL (SHA-256 and SHA-1 with the CPU's SHA instructions, about 1.1 GB/s each
here; MD5 is the slowest at about 0.45 GB/s). :func:`hash_bytes` hashes a buffer in one pass,
the three hashes fed the same chunk in turn while it is in cache. When the caller has a core
to spare, :func:`start_hashes` hashes a large buffer on three threads instead, one per hash,
each with a single ``update`` over the whole buffer: hashlib releases the GIL for the whole
call, so the hashes run while the calling thread scans the same bytes with YARA (yara-x holds
the GIL for a whole scan).

The scan workers import this module: it must stay free of DuckDB and pyarrow (those are
imported where the parent matches hashes against the case).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from taintline.model import Finding, Severity

if TYPE_CHECKING:
    from taintline.case import Case

#: Chunk fed to the three hashes in turn (fits in L2 cache).
HASH_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class Hashes:
    md5: str
    sha1: str
    sha256: str
    size: int


def hash_bytes(data: bytes | memoryview) -> Hashes:
    """The three hashes of ``data`` in one pass."""
    md5, sha1, sha256 = hashlib.md5(), hashlib.sha1(), hashlib.sha256()
    view = memoryview(data)
    for start in range(0, len(view), HASH_CHUNK):
        chunk = view[start : start + HASH_CHUNK]
        md5.update(chunk)
        sha1.update(chunk)
        sha256.update(chunk)
    return Hashes(md5.hexdigest(), sha1.hexdigest(), sha256.hexdigest(), len(view))


#: Buffers at least this large are hashed on threads by :func:`start_hashes`.
THREADED_MIN = 512 * 1024

_CONSTRUCTORS: tuple[Callable[[], Any], ...] = (hashlib.md5, hashlib.sha1, hashlib.sha256)


def _digest(index: int, data: bytes | memoryview, started: threading.Semaphore) -> str:
    h = _CONSTRUCTORS[index]()
    started.release()
    h.update(data)  # one call: the GIL is released for all of it
    return str(h.hexdigest())


class HashJob:
    """The three hashes of one buffer, being computed; :meth:`result` waits for them."""

    __slots__ = ("_done", "_futures", "_size")

    def __init__(
        self, size: int, futures: Sequence[Future[str]] = (), done: Hashes | None = None
    ) -> None:
        self._size = size
        self._futures = tuple(futures)
        self._done = done

    def ready(self) -> Hashes | None:
        """The hashes if already computed (small buffers are hashed at once), else ``None``."""
        return self._done

    def result(self) -> Hashes:
        if self._done is None:
            md5, sha1, sha256 = (f.result() for f in self._futures)
            self._done = Hashes(md5, sha1, sha256, self._size)
            self._futures = ()
        return self._done


def start_hashes(data: bytes | memoryview, executor: Executor | None) -> HashJob:
    """Start hashing ``data``: on ``executor`` (three threads) when it is large, else here."""
    if executor is None or len(data) < THREADED_MIN:
        return HashJob(len(data), done=hash_bytes(data))
    started = threading.Semaphore(0)
    futures = [executor.submit(_digest, i, data, started) for i in range(len(_CONSTRUCTORS))]
    # Wait until every thread is inside (or just before) its update: a thread that has not
    # started yet needs the GIL to start, and yara-x would hold it for the whole scan.
    for _ in futures:
        started.acquire()
    return HashJob(len(data), futures)


def hash_stream(stream: BinaryIO, chunk_size: int = 4 * 1024 * 1024) -> Hashes:
    """The three hashes of everything ``stream`` yields, in bounded memory."""
    md5, sha1, sha256 = hashlib.md5(), hashlib.sha1(), hashlib.sha256()
    size = 0
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    while True:
        n = stream.readinto(view)  # type: ignore[attr-defined]
        if not n:
            break
        size += n
        for start in range(0, n, HASH_CHUNK):
            chunk = view[start : min(start + HASH_CHUNK, n)]
            md5.update(chunk)
            sha1.update(chunk)
            sha256.update(chunk)
    return Hashes(md5.hexdigest(), sha1.hexdigest(), sha256.hexdigest(), size)


@dataclass(frozen=True, slots=True)
class HashedFile:
    """What the matcher needs of a scanned file."""

    path: str
    md5: str
    sha1: str
    sha256: str
    size: int


_LABELS = {"sha256": "SHA-256", "sha1": "SHA-1", "md5": "MD5"}


def match_hashes(case: Case, files: Sequence[HashedFile]) -> list[Finding]:
    """``ioc.hash`` findings (critical) for files whose MD5, SHA-1 or SHA-256 is a hash
    indicator in ``case``; one finding per file naming every indicator and its sources.

    The join runs in DuckDB against ``indicator_sources`` (a hash join on type and value), so
    millions of indicators cost no Python memory.
    """
    if not files:
        return []
    import pyarrow as pa

    batch = pa.table(  # noqa: F841  (read by DuckDB's replacement scan)
        {
            "idx": pa.array(range(len(files)), pa.int64()),
            "md5": pa.array([f.md5 for f in files], pa.string()),
            "sha1": pa.array([f.sha1 for f in files], pa.string()),
            "sha256": pa.array([f.sha256 for f in files], pa.string()),
        }
    )
    rows = case.con.execute(
        """
        WITH h AS (
            SELECT idx, 'sha256' AS type, sha256 AS value FROM batch
            UNION ALL SELECT idx, 'sha1', sha1 FROM batch
            UNION ALL SELECT idx, 'md5', md5 FROM batch
        )
        SELECT h.idx, s.type, s.value,
               list(DISTINCT s.source ORDER BY s.source),
               any_value(s.campaign) FILTER (WHERE s.campaign IS NOT NULL),
               any_value(s.description) FILTER (WHERE s.description IS NOT NULL)
        FROM h JOIN indicator_sources s ON s.type = h.type AND s.value = h.value
        GROUP BY h.idx, s.type, s.value
        ORDER BY h.idx, s.type
        """
    ).fetchall()
    by_file: dict[int, list[tuple[str, str, list[str], str | None, str | None]]] = {}
    for idx, type_, value, sources, campaign, description in rows:
        by_file.setdefault(int(idx), []).append(
            (type_, value, list(sources), campaign, description)
        )
    findings: list[Finding] = []
    for idx, matches in sorted(by_file.items()):
        f = files[idx]
        sources = sorted({s for m in matches for s in m[2]})
        campaigns = sorted({m[3] for m in matches if m[3]})
        which = ", ".join(_LABELS.get(m[0], m[0]) for m in matches)
        message = f"{which} matches a known-bad file indicator (sources: {', '.join(sources)})"
        if campaigns:
            message += f"; campaign: {', '.join(campaigns)}"
        findings.append(
            Finding(
                kind="ioc.hash",
                severity=Severity.CRITICAL,
                subject=f.path,
                message=message,
                evidence={
                    "md5": f.md5,
                    "sha1": f.sha1,
                    "sha256": f.sha256,
                    "size": f.size,
                    "matches": [
                        {
                            "indicator": f"{m[0]}:{m[1]}",
                            "sources": m[2],
                            "campaign": m[3],
                            "description": m[4],
                        }
                        for m in matches
                    ],
                },
                indicators=tuple(f"{m[0]}:{m[1]}" for m in matches),
            )
        )
    return findings
